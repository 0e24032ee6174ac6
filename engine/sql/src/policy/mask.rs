//! The masking functions a data policy puts over a source's columns.
//!
//! Each keeps its column's type, so a query that compiles without the policy
//! compiles with it (except `drop`, which removes the column). NULL stays NULL.
//! - `redact`: every character becomes `*`, except the first `keep.first` and the
//!   last `keep.last`; a value with no more characters than those kept is
//!   redacted whole, so that a rule never shows a short value in full.
//! - `hmac`: HMAC-SHA256 under the policy's key. A string becomes the token's 64
//!   lowercase hex digits; an integer becomes the token's first 8 bytes (big
//!   endian) as a signed number, narrowed to the column's width. The same value
//!   under the same key gives the same token in every process and after every
//!   restart, so tokens still join and group.
//! - `truncate`: a string keeps its first `keep.first` characters; a timestamp
//!   (in UTC) or a date is cut down to the start of its `unit`.
//!
//! The key is never printed: the function's `Debug` and its name leave it out,
//! so plans, `explain` and errors cannot show it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, PrimitiveArray, StringArray};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion_common::{DataFusionError, Result};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What a masking function does to each value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Masking {
    Redact { first: usize, last: usize },
    Hmac(Key),
    TruncateChars(usize),
    TruncateTime(Unit),
}

/// An hmac key; its bytes never reach `Debug`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key(pub Arc<[u8]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

pub use sluice_api::policy::TruncateUnit as Unit;

impl Masking {
    /// Whether the function applies to a column of type `t`; otherwise what to use instead.
    pub fn check_type(&self, t: &DataType) -> Result<(), String> {
        let ok = match self {
            Masking::Redact { .. } | Masking::TruncateChars(_) => matches!(t, DataType::Utf8),
            Masking::Hmac(_) => matches!(t, DataType::Utf8) || t.is_integer(),
            Masking::TruncateTime(u) => match t {
                DataType::Timestamp(_, _) => true,
                DataType::Date32 => matches!(u, Unit::Day | Unit::Month | Unit::Year),
                _ => false,
            },
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            Masking::Redact { .. } => "redact applies to STRING columns; use null or hmac".into(),
            Masking::TruncateChars(_) => {
                "truncate with keep.first applies to STRING columns; give a unit for a timestamp or a date".into()
            }
            Masking::Hmac(_) => "hmac applies to STRING and integer columns; use null or truncate".into(),
            Masking::TruncateTime(_) => {
                "truncate with a unit applies to TIMESTAMP columns, and to DATE columns with the unit day, month or year"
                    .into()
            }
        })
    }
}

/// The scalar function of one masking.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskFn {
    name: String,
    masking: Masking,
    signature: Signature,
}

impl MaskFn {
    pub fn new(masking: Masking) -> MaskFn {
        let name = match &masking {
            Masking::Redact { first, last } => format!("mask_redact_{first}_{last}"),
            Masking::Hmac(_) => "mask_hmac".into(),
            Masking::TruncateChars(n) => format!("mask_truncate_{n}"),
            Masking::TruncateTime(u) => format!("mask_truncate_{}", format!("{u:?}").to_lowercase()),
        };
        MaskFn { name, masking, signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for MaskFn {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let array = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(mask(&self.masking, &array)?))
    }
}

/// Masks every value of `a`.
pub fn mask(m: &Masking, a: &ArrayRef) -> Result<ArrayRef> {
    let out: ArrayRef = match (m, a.data_type()) {
        (Masking::Redact { first, last }, DataType::Utf8) => redact_strings(a, *first, *last),
        (Masking::TruncateChars(n), DataType::Utf8) => strings(a, |s, out| truncate_chars(s, *n, out)),
        (Masking::Hmac(k), DataType::Utf8) => hmac_strings(&keyed(k), a),
        (Masking::Hmac(k), t) if t.is_integer() => hmac_integers(&keyed(k), a)?,
        (Masking::TruncateTime(u), DataType::Timestamp(unit, tz)) => {
            use arrow::datatypes::{
                TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
            };
            let u = *u;
            match unit {
                TimeUnit::Second => times::<TimestampSecondType>(a, 1, u, tz),
                TimeUnit::Millisecond => times::<TimestampMillisecondType>(a, 1_000, u, tz),
                TimeUnit::Microsecond => times::<TimestampMicrosecondType>(a, 1_000_000, u, tz),
                TimeUnit::Nanosecond => times::<TimestampNanosecondType>(a, 1_000_000_000, u, tz),
            }
        }
        (Masking::TruncateTime(u), DataType::Date32) => {
            let days: &Date32Array = a.as_primitive();
            Arc::new(days.unary::<_, arrow::datatypes::Date32Type>(|d| truncate_date(d, *u)))
        }
        (m, t) => {
            return Err(DataFusionError::Internal(format!("masking {m:?} cannot apply to {t}")));
        }
    };
    Ok(out)
}

fn times<T: arrow::datatypes::ArrowTimestampType>(
    a: &ArrayRef,
    per_sec: i64,
    u: Unit,
    tz: &Option<Arc<str>>,
) -> ArrayRef {
    let p: &PrimitiveArray<T> = a.as_primitive();
    Arc::new(p.unary::<_, T>(|v| truncate_epoch(v, per_sec, u)).with_timezone_opt(tz.clone()))
}

/// Each value of a string array through `f`, which writes the result into a
/// buffer reused across values (no allocation per value).
fn strings(a: &ArrayRef, f: impl Fn(&str, &mut String)) -> ArrayRef {
    let s: &StringArray = a.as_string();
    let n = arrow::array::Array::len(s);
    let mut out = arrow::array::StringBuilder::with_capacity(n, s.values().len());
    let mut buf = String::new();
    for v in s.iter() {
        match v {
            None => out.append_null(),
            Some(v) => {
                buf.clear();
                f(v, &mut buf);
                out.append_value(&buf);
            }
        }
    }
    Arc::new(out.finish())
}

/// `redact` over a whole array. When every byte is ASCII, each character is one
/// byte and keeps its length: the offsets stay, and the values are the input's
/// bytes with the redacted ones overwritten (no per-value work beyond a fill).
/// The bytes under NULL slots are starred too, so no raw byte survives in the buffer.
fn redact_strings(a: &ArrayRef, first: usize, last: usize) -> ArrayRef {
    let per_value = || strings(a, |v, out| redact(v, first, last, out));
    let s: &StringArray = a.as_string();
    let offsets = s.value_offsets();
    let (Some(&base), Some(&end)) = (offsets.first(), offsets.last()) else {
        return per_value();
    };
    let (start, end) = (base as usize, end as usize);
    let bytes = &s.values()[start..end];
    if !bytes.is_ascii() {
        return per_value();
    }
    let mut values = bytes.to_vec();
    let nulls = s.nulls().filter(|n| n.null_count() > 0);
    for (i, w) in offsets.windows(2).enumerate() {
        let (b, e) = (w[0] as usize - start, w[1] as usize - start);
        let hidden = nulls.is_some_and(|n| n.is_null(i)) || e - b <= first + last;
        if let Some(starred) = values.get_mut(if hidden { b..e } else { b + first..e - last }) {
            starred.fill(b'*');
        }
    }
    let rebased = arrow::buffer::OffsetBuffer::new(offsets.iter().map(|o| o - base).collect::<Vec<i32>>().into());
    match StringArray::try_new(rebased, values.into(), s.nulls().cloned()) {
        Ok(out) => Arc::new(out),
        Err(_) => per_value(),
    }
}

fn redact(s: &str, first: usize, last: usize, out: &mut String) {
    if s.is_ascii() {
        // One byte per character.
        let n = s.len();
        if n <= first + last {
            out.extend(std::iter::repeat_n('*', n));
            return;
        }
        out.push_str(&s[..first]);
        out.extend(std::iter::repeat_n('*', n - first - last));
        out.push_str(&s[n - last..]);
        return;
    }
    let n = s.chars().count();
    if n <= first + last {
        out.extend(std::iter::repeat_n('*', n));
        return;
    }
    out.extend(s.chars().enumerate().map(|(i, c)| if i < first || i >= n - last { c } else { '*' }));
}

fn truncate_chars(s: &str, n: usize, out: &mut String) {
    match s.char_indices().nth(n) {
        Some((end, _)) => out.push_str(&s[..end]),
        None => out.push_str(s),
    }
}

/// The MAC keyed once per batch: each value then costs a clone of its state.
fn keyed(k: &Key) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    HmacSha256::new_from_slice(&k.0).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn hmac(base: &HmacSha256, bytes: &[u8]) -> [u8; 32] {
    let mut mac = base.clone();
    mac.update(bytes);
    mac.finalize().into_bytes().into()
}

fn hmac_strings(base: &HmacSha256, a: &ArrayRef) -> ArrayRef {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let s: &StringArray = a.as_string();
    let n = arrow::array::Array::len(s);
    let mut out = arrow::array::StringBuilder::with_capacity(n, n * 64);
    let mut text = [0u8; 64];
    for v in s.iter() {
        match v {
            None => out.append_null(),
            Some(v) => {
                for (i, b) in hmac(base, v.as_bytes()).iter().enumerate() {
                    text[2 * i] = HEX[usize::from(b >> 4)];
                    text[2 * i + 1] = HEX[usize::from(b & 0xf)];
                }
                // Hex digits are ASCII.
                out.append_value(std::str::from_utf8(&text).unwrap_or_default());
            }
        }
    }
    Arc::new(out.finish())
}

/// The token of an integer: the HMAC of its decimal text, so that the same
/// number gives the same token whatever its column's width.
fn int_token(base: &HmacSha256, v: i128) -> i64 {
    use std::io::Write;
    let mut text = [0u8; 40];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    let _ = write!(cursor, "{v}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    let mac = hmac(base, &text[..len]);
    i64::from_be_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7]])
}

fn hmac_integers(k: &HmacSha256, a: &ArrayRef) -> Result<ArrayRef> {
    use arrow::datatypes::*;
    fn each<T: arrow::datatypes::ArrowPrimitiveType>(a: &ArrayRef, f: impl Fn(T::Native) -> T::Native) -> ArrayRef {
        let p: &PrimitiveArray<T> = a.as_primitive();
        Arc::new(p.unary::<_, T>(f))
    }
    // Narrowing keeps the token's low bits: `as` wraps, by design.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(match a.data_type() {
        DataType::Int8 => each::<Int8Type>(a, |v| int_token(k, v.into()) as i8),
        DataType::Int16 => each::<Int16Type>(a, |v| int_token(k, v.into()) as i16),
        DataType::Int32 => each::<Int32Type>(a, |v| int_token(k, v.into()) as i32),
        DataType::Int64 => each::<Int64Type>(a, |v| int_token(k, v.into())),
        DataType::UInt8 => each::<UInt8Type>(a, |v| int_token(k, v.into()) as u8),
        DataType::UInt16 => each::<UInt16Type>(a, |v| int_token(k, v.into()) as u16),
        DataType::UInt32 => each::<UInt32Type>(a, |v| int_token(k, v.into()) as u32),
        DataType::UInt64 => each::<UInt64Type>(a, |v| int_token(k, v.into()) as u64),
        t => return Err(DataFusionError::Internal(format!("hmac of {t}"))),
    })
}

fn truncate_epoch(v: i64, per_sec: i64, u: Unit) -> i64 {
    let secs = v.div_euclid(per_sec);
    let Some(t) = DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()) else {
        return v;
    };
    let cut = truncate_datetime(t, u);
    cut.and_utc().timestamp() * per_sec
}

fn truncate_datetime(t: NaiveDateTime, u: Unit) -> NaiveDateTime {
    let d = t.date();
    let day = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or(t);
    match u {
        Unit::Second => t.with_nanosecond(0).unwrap_or(t),
        Unit::Minute => d.and_hms_opt(t.hour(), t.minute(), 0).unwrap_or(t),
        Unit::Hour => d.and_hms_opt(t.hour(), 0, 0).unwrap_or(t),
        Unit::Day => day(d),
        Unit::Month => day(d.with_day(1).unwrap_or(d)),
        Unit::Year => day(NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d)),
    }
}

fn truncate_date(days: i32, u: Unit) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let Some(d) = epoch.checked_add_signed(chrono::Duration::days(days.into())) else {
        return days;
    };
    let cut = match u {
        Unit::Month => d.with_day(1).unwrap_or(d),
        Unit::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
        _ => d,
    };
    i32::try_from((cut - epoch).num_days()).unwrap_or(days)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Date32Array, Int32Array, Int64Array, TimestampMillisecondArray};

    use super::*;

    fn key(s: &str) -> Key {
        Key(Arc::from(s.as_bytes()))
    }

    fn strs(a: &ArrayRef) -> Vec<Option<String>> {
        a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    }

    fn input(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(v.iter().copied().collect::<StringArray>())
    }

    #[test]
    fn redact_counts_characters_not_bytes_and_never_shows_a_short_value() {
        let a = input(&[Some("4111111111111111"), Some("ünïcødé✓"), Some("1234"), Some(""), None]);
        let out = mask(&Masking::Redact { first: 0, last: 4 }, &a).unwrap();
        assert_eq!(
            strs(&out),
            [Some("************1111".into()), Some("****ødé✓".into()), Some("****".into()), Some("".into()), None]
        );
        let out = mask(&Masking::Redact { first: 1, last: 1 }, &input(&[Some("ab🙂cd")])).unwrap();
        assert_eq!(strs(&out), [Some("a***d".into())]);
        let out = mask(&Masking::Redact { first: 2, last: 2 }, &input(&[Some("abcdefg"), Some("abcd")])).unwrap();
        assert_eq!(strs(&out), [Some("ab***fg".into()), Some("****".into())]);
    }

    #[test]
    fn redact_of_ascii_keeps_the_offsets_and_stars_every_byte_under_a_null() {
        let a = input(&[Some("x4111111111111111"), Some("secret"), Some("42"), Some(""), Some("abcdef")]);
        // A slice (offsets not from 0) with a NULL whose bytes are still raw in the buffer.
        let sliced = a.slice(1, 4);
        let nulls = arrow::buffer::NullBuffer::from(vec![false, true, true, true]);
        let s = sliced.as_string::<i32>();
        let with_null: ArrayRef = Arc::new(StringArray::new(s.offsets().clone(), s.values().clone(), Some(nulls)));
        let out = mask(&Masking::Redact { first: 1, last: 1 }, &with_null).unwrap();
        assert_eq!(strs(&out), [None, Some("**".into()), Some("".into()), Some("a****f".into())]);
        let raw = out.as_string::<i32>().values().to_vec();
        assert!(!String::from_utf8_lossy(&raw).contains("ecre"), "the NULL's bytes are starred: {raw:?}");
        let out = mask(&Masking::Redact { first: 0, last: 4 }, &a.slice(0, 1)).unwrap();
        assert_eq!(strs(&out), [Some("*************1111".into())]);
    }

    #[test]
    fn hmac_tokens_are_stable_keyed_and_typed() {
        // RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
        let a = input(&[Some("what do ya want for nothing?"), None]);
        let out = mask(&Masking::Hmac(key("Jefe")), &a).unwrap();
        assert_eq!(strs(&out)[0].as_deref(), Some("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
        assert_eq!(strs(&out)[1], None);
        let other = mask(&Masking::Hmac(key("other")), &a).unwrap();
        assert_ne!(strs(&out)[0], strs(&other)[0]);
        let longs: ArrayRef = Arc::new(Int64Array::from(vec![Some(42), None, Some(42)]));
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(42)]));
        let l = mask(&Masking::Hmac(key("k")), &longs).unwrap();
        let l = l.as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(l.value(0), l.value(2));
        assert!(l.is_null(1) && l.value(0) != 42);
        let i = mask(&Masking::Hmac(key("k")), &ints).unwrap();
        // The same number has the same token, narrowed, whatever the column's width.
        #[allow(clippy::cast_possible_truncation)]
        let narrowed = l.value(0) as i32;
        assert_eq!(i.as_primitive::<arrow::datatypes::Int32Type>().value(0), narrowed);
        assert_eq!(format!("{:?}", Masking::Hmac(key("secret"))), "Hmac(Key(<redacted>))");
    }

    #[test]
    fn truncate_cuts_strings_and_times() {
        let out = mask(&Masking::TruncateChars(3), &input(&[Some("Zürich"), Some("ab"), None])).unwrap();
        assert_eq!(strs(&out), [Some("Zür".into()), Some("ab".into()), None]);
        // 2024-03-15 13:45:30.250 UTC
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![Some(1_710_510_330_250), None]));
        let at = |u| {
            mask(&Masking::TruncateTime(u), &ts)
                .unwrap()
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .value(0)
        };
        assert_eq!(at(Unit::Second), 1_710_510_330_000);
        assert_eq!(at(Unit::Hour), 1_710_507_600_000);
        assert_eq!(at(Unit::Day), 1_710_460_800_000);
        assert_eq!(at(Unit::Month), 1_709_251_200_000);
        assert_eq!(at(Unit::Year), 1_704_067_200_000);
        let before_epoch: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![-1]));
        let out = mask(&Masking::TruncateTime(Unit::Day), &before_epoch).unwrap();
        assert_eq!(out.as_primitive::<arrow::datatypes::TimestampMillisecondType>().value(0), -86_400_000);
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![Some(19_797), None])); // 2024-03-15
        let out = mask(&Masking::TruncateTime(Unit::Month), &dates).unwrap();
        assert_eq!(out.as_primitive::<arrow::datatypes::Date32Type>().value(0), 19_783);
        assert!(out.is_null(1));
    }

    #[test]
    fn each_masking_names_the_types_it_takes() {
        assert!(Masking::Redact { first: 0, last: 0 }.check_type(&DataType::Int64).unwrap_err().contains("STRING"));
        assert!(Masking::Hmac(key("k")).check_type(&DataType::Float64).is_err());
        assert!(Masking::Hmac(key("k")).check_type(&DataType::Int16).is_ok());
        assert!(Masking::TruncateTime(Unit::Hour).check_type(&DataType::Date32).is_err());
        assert!(Masking::TruncateTime(Unit::Year).check_type(&DataType::Date32).is_ok());
    }
}
