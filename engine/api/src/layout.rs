//! The names of every object a job keeps in storage. The engine writes them;
//! the operator finds savepoints by them. Paths are relative to the job's
//! checkpoint directory (`<checkpoint-dir>/<job-id>/`) or to a savepoint's
//! target directory:
//!
//! ```text
//! <checkpoint-dir>/<job-id>/chk-<n>/<vertex-uid>/<subtask>.state
//! <checkpoint-dir>/<job-id>/chk-<n>/_owner           (reserved by one generation)
//! <checkpoint-dir>/<job-id>/chk-<n>/_metadata        (written last; the snapshot is complete)
//! <checkpoint-dir>/<job-id>/_generations/<g>         (a coordinator generation)
//! <checkpoint-dir>/<job-id>/_generations/<g>.root    (where that generation started)
//! <checkpoint-dir>/<job-id>/_terminal                (the job finished or stopped)
//! <savepoint-dir>/savepoint-<trigger-id>/...         (same layout as chk-<n>)
//! ```

/// A snapshot's manifest, written last: a directory without it is not a snapshot.
pub const METADATA: &str = "_metadata";
/// Written when a job finished or stopped with a savepoint.
pub const TERMINAL: &str = "_terminal";
/// The coordinator generations of a job.
pub const GENERATIONS: &str = "_generations";
/// The reservation of a checkpoint directory by one generation.
pub const OWNER: &str = "_owner";

/// The directory of checkpoint `id` under the job's directory.
pub fn checkpoint_dir(id: u64) -> String {
    format!("chk-{id}")
}

/// The id of a checkpoint directory's name, if it is one.
pub fn checkpoint_id(dir_name: &str) -> Option<u64> {
    dir_name.strip_prefix("chk-")?.parse().ok()
}

/// A savepoint's directory name under its target directory. Characters other
/// than ASCII letters, digits, `-` and `_` become `_`.
pub fn savepoint_dir(trigger_id: &str) -> String {
    let safe: String =
        trigger_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("savepoint-{safe}")
}

/// Where a savepoint triggered with `trigger_id` into `target` ends up.
pub fn savepoint_location(target: &str, trigger_id: &str) -> String {
    format!("{}/{}", target.trim_end_matches('/'), savepoint_dir(trigger_id))
}

/// The configuration key that lets savepoints go to more directories (comma-separated
/// URIs) than the job's own savepoint and checkpoint directories.
pub const ALLOWED_SAVEPOINT_DIRS: &str = "sluice.savepoint.allowed-directories";

/// A location as scheme and path segments: `s3://b/x/` and `s3a://b/x` are
/// `("s3", ["b", "x"])`; `/x/y`, `file:///x/y` and `file:/x/y` are `("file", ["x", "y"])`.
/// `None` for a relative local path, or any `.` or `..` segment.
fn segments(uri: &str) -> Option<(&'static str, Vec<&str>)> {
    let uri = uri.trim();
    let (scheme, path) = if let Some(p) = uri.strip_prefix("s3://").or_else(|| uri.strip_prefix("s3a://")) {
        ("s3", p)
    } else if let Some(p) = uri.strip_prefix("file://").or_else(|| uri.strip_prefix("file:")) {
        ("file", p)
    } else if uri.starts_with('/') {
        ("file", uri)
    } else {
        return None;
    };
    if scheme == "file" && !path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") || (scheme == "s3" && parts.is_empty()) {
        return None;
    }
    Some((scheme, parts))
}

/// Whether a savepoint may be written to `target`, with no `.` or `..` segment (no
/// way out by traversal): anywhere in the bucket of an S3 location of `allowed` (so
/// that an upgrade that moves the savepoint directory within its bucket still
/// works), or at or below a local directory of `allowed`. Empty `allowed` allows
/// nothing.
pub fn target_allowed(target: &str, allowed: &[String]) -> Result<(), String> {
    let Some((scheme, parts)) = segments(target) else {
        return Err(format!("'{target}' is not an absolute path, file:// or s3:// URI without '.' or '..' segments"));
    };
    let inside = allowed.iter().filter_map(|a| segments(a)).any(|(s, base)| {
        let base = if s == "s3" { base.get(..1).unwrap_or_default() } else { &base[..] };
        s == scheme && parts.starts_with(base)
    });
    if inside {
        return Ok(());
    }
    if allowed.is_empty() {
        return Err(format!(
            "'{target}' is not allowed: the job has no savepoint or checkpoint directory; set execution.checkpointing.savepoint-dir or {ALLOWED_SAVEPOINT_DIRS}"
        ));
    }
    let places: Vec<String> = allowed
        .iter()
        .filter_map(|a| segments(a))
        .map(|(s, base)| match base.first() {
            Some(bucket) if s == "s3" => format!("s3://{bucket}/..."),
            _ => format!("/{}", base.join("/")),
        })
        .collect();
    Err(format!(
        "'{target}' is not allowed: a savepoint goes under {} (add a directory to {ALLOWED_SAVEPOINT_DIRS} to allow it)",
        places.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoints_stay_under_the_allowed_directories() {
        let allowed = vec!["s3://bucket/savepoints/".to_string(), "file:///data/ck".to_string()];
        for ok in [
            "s3://bucket/savepoints",
            "s3a://bucket/savepoints/team-a",
            "s3://bucket/moved/savepoints",
            "/data/ck/sp",
            "file:///data/ck/x/",
        ] {
            assert_eq!(target_allowed(ok, &allowed), Ok(()), "{ok}");
        }
        for bad in [
            "s3://bucket/savepoints/../other",
            "s3://other/savepoints",
            "s3://bucketX/savepoints",
            "/data/ck/../../etc",
            "/data/ckx",
            "data/ck/sp",
            "file:data/ck",
            "gs://bucket/savepoints",
            "/data/./ck",
        ] {
            let err = target_allowed(bad, &allowed).err().unwrap_or_default();
            assert!(err.contains(bad) && (err.contains("allowed") || err.contains("'..'")), "{bad}: {err}");
        }
        assert!(
            target_allowed("/tmp/sp", &[]).err().unwrap_or_default().contains("no savepoint or checkpoint directory")
        );
        let err = target_allowed("s3://other/x", &allowed).err().unwrap_or_default();
        assert!(
            err.contains(
                "goes under s3://bucket/..., /data/ck (add a directory to sluice.savepoint.allowed-directories"
            ),
            "{err}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(checkpoint_dir(7), "chk-7");
        assert_eq!(checkpoint_id("chk-7"), Some(7));
        assert_eq!(checkpoint_id("chk-x"), None);
        assert_eq!(checkpoint_id("_generations"), None);
        assert_eq!(savepoint_dir("up/7"), "savepoint-up_7");
        assert_eq!(savepoint_location("s3://b/sp/", "clicks-1"), "s3://b/sp/savepoint-clicks-1");
    }
}
