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

#[cfg(test)]
mod tests {
    use super::*;

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
