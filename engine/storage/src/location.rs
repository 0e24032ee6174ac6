//! Parsing storage URIs and building object keys. This module owns every key: callers pass
//! relative paths (`chk-3/_metadata`), and keys are always `/`-separated without leading or
//! trailing slashes.

use std::path::{Path, PathBuf};

use crate::StorageError;

/// Where a [`crate::Storage`] points, as parsed from its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An absolute local directory.
    File(PathBuf),
    /// A bucket and a key prefix (possibly empty).
    S3 { bucket: String, prefix: String },
}

/// Parses `file:///abs/dir`, a plain path (relative paths are made absolute against the current
/// directory), or `s3://bucket/prefix` (also `s3a://` and `s3p://`, as Flink accepts). No I/O.
pub(crate) fn parse(uri: &str) -> Result<Location, StorageError> {
    let invalid = |reason: &str| StorageError::InvalidUri { uri: uri.to_string(), reason: reason.to_string() };
    let trimmed = uri.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    if let Some((scheme, rest)) = trimmed.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file:///abs (empty authority) or file://localhost/abs.
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(invalid("a file URI needs an absolute path (file:///dir) and no host"));
                }
                Ok(Location::File(clean_path(Path::new(path))))
            }
            "s3" | "s3a" | "s3p" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                validate_bucket(bucket).map_err(|r| invalid(&r))?;
                let prefix = normalize(prefix).map_err(|r| invalid(&r))?;
                Ok(Location::S3 { bucket: bucket.to_string(), prefix })
            }
            other => Err(invalid(&format!("unsupported scheme '{other}'"))),
        };
    }
    if trimmed.contains(':') && !trimmed.starts_with('/') && !trimmed.starts_with('.') {
        // `s3:bucket` or `c:\x` would otherwise silently become a relative directory.
        if let Some((scheme, _)) = trimmed.split_once(':')
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(invalid(&format!("'{scheme}:' is not a known scheme; did you mean '{scheme}://'?")));
        }
    }
    let abs = std::path::absolute(trimmed).map_err(|e| invalid(&format!("cannot make it absolute: {e}")))?;
    Ok(Location::File(clean_path(&abs)))
}

/// Drops `.` components and trailing slashes; keeps `..` (resolving it would need I/O for symlinks).
fn clean_path(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

fn validate_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("the bucket name is missing (s3://bucket/prefix)".into());
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err(format!("bucket name '{bucket}' must have 3 to 63 characters"));
    }
    if !bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')) {
        return Err(format!("bucket name '{bucket}' may only contain lowercase letters, digits, '.', '-' and '_'"));
    }
    Ok(())
}

/// Normalizes a relative path into a key: no empty or `.` segments. `..` is refused, since a
/// key must stay inside the storage's base.
pub(crate) fn normalize(rel: &str) -> Result<String, String> {
    let mut out = String::with_capacity(rel.len());
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(format!("'..' is not allowed in object paths ('{rel}')")),
            s => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(s);
            }
        }
    }
    Ok(out)
}

/// `base` joined with `rel`, both normalized; either may be empty.
pub(crate) fn join(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}/{rel}"),
    }
}

/// Whether `key` is `prefix` itself or lies below it (directory semantics: `chk-1` does not
/// cover `chk-10`). The empty prefix covers everything.
pub(crate) fn is_under(key: &str, prefix: &str) -> bool {
    prefix.is_empty() || key == prefix || (key.starts_with(prefix) && key.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// `key` relative to `base` (which it must be under).
pub(crate) fn relative_to<'a>(key: &'a str, base: &str) -> &'a str {
    if base.is_empty() { key } else { key.strip_prefix(base).map(|r| r.trim_start_matches('/')).unwrap_or(key) }
}

/// The last segment of a key.
pub(crate) fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        let cases: &[(&str, Location)] = &[
            ("file:///data/chk", Location::File("/data/chk".into())),
            ("file:///data/chk/", Location::File("/data/chk".into())),
            ("file://localhost/data", Location::File("/data".into())),
            ("/abs/./dir", Location::File("/abs/dir".into())),
            ("s3://bucket", Location::S3 { bucket: "bucket".into(), prefix: "".into() }),
            ("s3://bucket/", Location::S3 { bucket: "bucket".into(), prefix: "".into() }),
            ("s3://b-1.x/a//b/", Location::S3 { bucket: "b-1.x".into(), prefix: "a/b".into() }),
            ("s3a://bucket/p", Location::S3 { bucket: "bucket".into(), prefix: "p".into() }),
        ];
        for (uri, want) in cases {
            assert_eq!(&parse(uri).unwrap(), want, "{uri}");
        }
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(parse("rel/dir").unwrap(), Location::File(cwd.join("rel/dir")));
    }

    #[test]
    fn rejects_bad_uris_naming_them() {
        for (uri, reason) in [
            ("", "empty"),
            ("s3://", "bucket name is missing"),
            ("s3://Bucket/x", "lowercase"),
            ("s3://ab/x", "3 to 63 characters"),
            ("s3://bkt/../x", "'..'"),
            ("file://host/x", "no host"),
            ("gs://b/x", "unsupported scheme 'gs'"),
            ("s3:bucket/x", "did you mean 's3://'"),
        ] {
            let err = parse(uri).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, StorageError::InvalidUri { .. }), "{uri}: {msg}");
            assert!(msg.contains(reason), "{uri}: {msg}");
            assert!(msg.contains(&format!("'{uri}'")), "{uri}: {msg}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(normalize("/a//./b/").unwrap(), "a/b");
        assert_eq!(normalize("").unwrap(), "");
        assert!(normalize("a/../b").is_err());
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a", ""), "a");
        assert_eq!(join("a", "b/c"), "a/b/c");
        assert!(is_under("chk-1/x", "chk-1"));
        assert!(is_under("chk-1", "chk-1"));
        assert!(!is_under("chk-10/x", "chk-1"));
        assert!(is_under("anything", ""));
        assert_eq!(relative_to("a/b/c", "a"), "b/c");
        assert_eq!(relative_to("a/b", ""), "a/b");
        assert_eq!(file_name("a/b/c"), "c");
        assert_eq!(file_name("c"), "c");
    }
}
