//! Flink's hash functions: the lowercase hex digest of a string's UTF-8 bytes,
//! NULL for NULL. `SHA2(str, bits)` takes 224, 256, 384 or 512 and answers
//! NULL for any other length.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use datafusion_common::{Result, ScalarValue};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::udf::{Ctx, Def, is_integer, is_string, long_at, longs, str_at, strings};

const fn hash_def(name: &'static str, eval: super::udf::Kernel) -> Def {
    Def { name, usage: "(string)", min_args: 1, max_args: 1, volatile: false, ret: ret_hash, eval }
}

pub const DEFS: &[Def] = &[
    hash_def("md5", |_, a, _| digest_all(a, hex::<Md5>)),
    hash_def("sha1", |_, a, _| digest_all(a, hex::<Sha1>)),
    hash_def("sha224", |_, a, _| digest_all(a, hex::<Sha224>)),
    hash_def("sha256", |_, a, _| digest_all(a, hex::<Sha256>)),
    hash_def("sha384", |_, a, _| digest_all(a, hex::<Sha384>)),
    hash_def("sha512", |_, a, _| digest_all(a, hex::<Sha512>)),
    Def {
        name: "sha2",
        usage: "(string, bit length)",
        min_args: 2,
        max_args: 2,
        volatile: false,
        ret: ret_sha2,
        eval: sha2,
    },
];

fn ret_hash(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a STRING", is_string)?;
    Ok(DataType::Utf8)
}

fn ret_sha2(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a STRING", is_string)?;
    d.expect(args, 1, "an integer bit length (224, 256, 384, 512)", is_integer)?;
    Ok(DataType::Utf8)
}

fn hex<D: Digest>(s: &str) -> String {
    D::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_all(args: &[ArrayRef], f: fn(&str) -> String) -> Result<ArrayRef> {
    let s = strings(&args[0])?;
    let out: StringArray = s.iter().map(|v| v.map(f)).collect();
    Ok(Arc::new(out))
}

fn sha2(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (s, bits) = (strings(&args[0])?, longs(&args[1])?);
    let out: StringArray = (0..s.len())
        .map(|i| {
            let text = str_at(&s, i)?;
            match long_at(&bits, i)? {
                224 => Some(hex::<Sha224>(text)),
                256 => Some(hex::<Sha256>(text)),
                384 => Some(hex::<Sha384>(text)),
                512 => Some(hex::<Sha512>(text)),
                _ => None,
            }
        })
        .collect();
    Ok(Arc::new(out))
}
