//! Savepoint trigger ids: the one place that names them.
//!
//! The engine writes a savepoint into `savepoint-<triggerId>` under its target
//! directory and takes an existing `savepoint-<triggerId>/_metadata` as that trigger's
//! completed savepoint (its triggers are idempotent); the operator also looks
//! savepoints up in storage by id. So one job object's id must never be another's,
//! even when both share a savepoint directory: two StreamJobs of the same name in
//! other namespaces, or a StreamJob deleted and re-created with its name.
//!
//! Invariants:
//! - every id starts with `<job name>-<uid8>-`, where `uid8` is the first 8 characters
//!   of the StreamJob's `metadata.uid`, then a kind; the kinds of a StreamJob's own
//!   savepoints and of a StreamSavepoint's (`ssp`) differ, so the two never meet;
//! - the rest comes from write-ahead records (the generation, the deployment, the
//!   status's trigger counter, a StreamSavepoint's uid and attempt), never a clock.

/// How many characters of a `metadata.uid` an id carries: 32 bits of a random UUID.
const UID_CHARS: usize = 8;
/// The longest StreamSavepoint name kept in an id (the engine takes ids of up to 200).
const SSP_NAME_CHARS: usize = 63;

/// The first [`UID_CHARS`] letters and digits of `uid`, lower-cased.
fn short_uid(uid: &str) -> String {
    uid.chars().filter(char::is_ascii_alphanumeric).take(UID_CHARS).map(|c| c.to_ascii_lowercase()).collect()
}

/// A StreamJob's own savepoint: `<name>-<uid8>-<kind>-<part>-…`, e.g.
/// `clicks-3f2a9c1e-upgrade-4-1`.
pub fn job(name: &str, uid: &str, kind: &str, parts: &[i64]) -> String {
    let mut id = format!("{name}-{}-{kind}", short_uid(uid));
    for p in parts {
        id.push_str(&format!("-{p}"));
    }
    id
}

/// An attempt of a StreamSavepoint of the StreamJob `job_name`:
/// `<job>-<job uid8>-ssp-<savepoint name>-<savepoint uid8>-<attempt>`.
pub fn stream_savepoint(job_name: &str, job_uid: &str, ssp_name: &str, ssp_uid: &str, attempt: i32) -> String {
    let name: String = ssp_name.chars().take(SSP_NAME_CHARS).collect();
    format!("{job_name}-{}-ssp-{name}-{}-{attempt}", short_uid(job_uid), short_uid(ssp_uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_name_and_a_prefix_of_the_uid() {
        let uid = "3F2A9C1E-5b7d-4e21-9a0c-6d8e1f2b3c4d";
        assert_eq!(job("clicks", uid, "upgrade", &[4, 1]), "clicks-3f2a9c1e-upgrade-4-1");
        assert_eq!(job("clicks", uid, "deletion", &[2]), "clicks-3f2a9c1e-deletion-2");
        assert_ne!(
            job("clicks", uid, "upgrade", &[4, 1]),
            job("clicks", "9c0d1e2f-0000-4000-8000-000000000000", "upgrade", &[4, 1])
        );
    }

    #[test]
    fn streamsavepoint_ids_carry_the_jobs_uid_and_their_own() {
        let job_uid = "3f2a9c1e-5b7d-4e21-9a0c-6d8e1f2b3c4d";
        let ssp_uid = "7b1c2d3e-0000-4000-8000-000000000000";
        let id = stream_savepoint("orders", job_uid, "before-suspend", ssp_uid, 2);
        assert_eq!(id, "orders-3f2a9c1e-ssp-before-suspend-7b1c2d3e-2");
        // Re-created with its name (a new uid), or for a re-created job: another id.
        assert_ne!(id, stream_savepoint("orders", job_uid, "before-suspend", "00000000-1", 2));
        assert_ne!(id, stream_savepoint("orders", "00000000-1", "before-suspend", ssp_uid, 2));
        // A name as long as Kubernetes allows stays within the engine's 200 characters.
        let long = "s".repeat(253);
        assert!(stream_savepoint(&"j".repeat(52), job_uid, &long, ssp_uid, 5).len() <= 200);
    }
}
