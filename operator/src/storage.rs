//! Savepoint data in storage, as the operator sees it: checking that a
//! savepoint exists, and deleting old ones. The engine's storage crate is
//! blocking, so every call runs on the blocking pool.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sluice_api::layout;
use sluice_storage::{S3Options, Storage};

use crate::crd::{S3Spec, StreamJobSpec};
use crate::error::Error;

/// Why a savepoint's data cannot be looked at or deleted.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `location` is not a URI the engine's storage opens.
    #[error("{0}")]
    Open(#[source] sluice_storage::StorageError),
    #[error("{location}: {source}")]
    At {
        location: String,
        #[source]
        source: sluice_storage::StorageError,
    },
    /// Retention or a StreamSavepoint's deletion named data outside the job's directories.
    #[error(
        "refusing to delete {location}: it is not under {}",
        if roots.is_empty() { "any configured savepoint or checkpoint directory".into() } else { roots.join(", ") }
    )]
    NotUnder { location: String, roots: Vec<String> },
}

/// Where the operator reaches S3: the job's endpoint and credentials, or the
/// operator's `--s3-endpoint` (for an operator outside the cluster).
#[derive(Clone, Default)]
pub struct Access {
    pub options: S3Options,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach a log.
        f.debug_struct("Access").field("endpoint", &self.options.endpoint).finish_non_exhaustive()
    }
}

pub async fn access(
    client: &kube::Client,
    ns: &str,
    spec: &StreamJobSpec,
    endpoint: Option<&str>,
) -> Result<Access, Error> {
    access_s3(client, ns, spec.s3.as_ref(), endpoint).await
}

/// [`access`] from S3 settings alone.
pub async fn access_s3(
    client: &kube::Client,
    ns: &str,
    s3: Option<&S3Spec>,
    endpoint: Option<&str>,
) -> Result<Access, Error> {
    let mut options = S3Options { path_style: Some(true), ..Default::default() };
    if let Some(s3) = s3 {
        options.endpoint = endpoint.map(str::to_string).or_else(|| s3.endpoint.clone());
        options.region = s3.region.clone().or_else(|| Some("us-east-1".into()));
        if let Some(r) = &s3.credentials_secret_ref {
            let secret = Api::<Secret>::namespaced(client.clone(), ns).get(&r.name).await?;
            let data = secret.data.unwrap_or_default();
            let get = |k: &str| data.get(k).and_then(|v| String::from_utf8(v.0.clone()).ok());
            options.access_key = get("AWS_ACCESS_KEY_ID");
            options.secret_key = get("AWS_SECRET_ACCESS_KEY");
        }
    }
    Ok(Access { options })
}

/// A storage URI as its scheme, whether its path is absolute, and its path segments:
/// `file:///a/b`, `/a/b` and `/a/b/` are the same. `None` for a URI that could reach
/// outside what it names: `.` or `..` segments (also percent-encoded), empty segments
/// inside the path, backslashes, or a scheme other than `s3` and `file`.
fn segments(uri: &str) -> Option<(&'static str, bool, Vec<&str>)> {
    let (scheme, path) = match uri.split_once("://") {
        Some(("s3", rest)) => ("s3", rest),
        Some(("file", rest)) => ("file", rest),
        Some(_) => return None,
        None => ("file", uri),
    };
    let absolute = scheme == "s3" || path.starts_with('/');
    let path = path.trim_start_matches('/').trim_end_matches('/');
    if path.is_empty() {
        return Some((scheme, absolute, Vec::new()));
    }
    let parts: Vec<&str> = path.split('/').collect();
    let bad = |p: &&str| {
        let lower = p.to_ascii_lowercase();
        p.is_empty() || *p == "." || *p == ".." || lower.contains("%2e") || lower.contains("%2f") || p.contains('\\')
    };
    if parts.iter().any(bad) {
        return None;
    }
    Some((scheme, absolute, parts))
}

/// Whether `location` lies strictly under the directory `root`, by whole path segments:
/// `s3://b/sp/x` is under `s3://b/sp`, `s3://b/sp2/x` and `s3://b/sp` itself are not.
pub fn is_under(location: &str, root: &str) -> bool {
    match (segments(location), segments(root)) {
        (Some((ls, la, l)), Some((rs, ra, r))) => {
            ls == rs && la == ra && !r.is_empty() && l.len() > r.len() && l[..r.len()] == r[..]
        }
        _ => false,
    }
}

/// The directories under which the operator may delete snapshot data of a job: its
/// savepoint directory and its checkpoint storage, as in each of `specs`.
pub fn disposal_roots<'a>(specs: impl IntoIterator<Item = &'a StreamJobSpec>) -> Vec<String> {
    let mut roots: Vec<String> = Vec::new();
    for s in specs {
        for r in [&s.savepoints.directory, &s.checkpointing.storage].into_iter().flatten() {
            if !roots.contains(r) {
                roots.push(r.clone());
            }
        }
    }
    roots
}

/// Whether `location` may be deleted: it lies under one of `roots`.
pub fn may_dispose(location: &str, roots: &[String]) -> bool {
    roots.iter().any(|r| is_under(location, r))
}

/// Runs a blocking storage call on the savepoint at `location`.
async fn at<T: Send + 'static>(
    access: &Access,
    location: &str,
    f: impl FnOnce(&Storage) -> Result<T, sluice_storage::StorageError> + Send + 'static,
) -> Result<T, Error> {
    let (access, location) = (access.clone(), location.to_string());
    tokio::task::spawn_blocking(move || {
        let s = Storage::open(&location, &access.options).map_err(StorageError::Open)?;
        f(&s).map_err(|source| StorageError::At { location, source }.into())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Whether a complete savepoint (its `_metadata`) exists at `location`.
pub async fn savepoint_exists(access: &Access, location: &str) -> Result<bool, Error> {
    at(access, location, |s| s.exists(layout::METADATA)).await
}

/// Deletes a savepoint's files, if `location` lies under one of `roots` (see [`may_dispose`]).
pub async fn dispose(access: &Access, location: &str, roots: &[String]) -> Result<(), Error> {
    if !may_dispose(location, roots) {
        return Err(StorageError::NotUnder { location: location.into(), roots: roots.to_vec() }.into());
    }
    at(access, location, |s| s.delete_prefix("")).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Data outside the job's directories is refused before storage is asked anything,
    /// and a location storage cannot open says why.
    #[tokio::test]
    async fn a_deletion_outside_the_roots_and_an_unopenable_location_are_storage_errors() {
        let access = Access::default();
        let e = dispose(&access, "s3://bucket/elsewhere/savepoint-x", &["s3://bucket/sp".into()]).await.unwrap_err();
        assert!(matches!(e, Error::Storage(StorageError::NotUnder { .. })), "{e:?}");
        assert_eq!(
            e.to_string(),
            "storage: refusing to delete s3://bucket/elsewhere/savepoint-x: it is not under s3://bucket/sp"
        );
        let e = dispose(&access, "s3://bucket/x", &[]).await.unwrap_err();
        assert!(e.to_string().ends_with("it is not under any configured savepoint or checkpoint directory"), "{e}");
        let e = savepoint_exists(&access, "ftp://bucket/sp/savepoint-x").await.unwrap_err();
        assert!(matches!(e, Error::Storage(StorageError::Open(_))), "{e:?}");
        assert!(e.to_string().contains("ftp"), "{e}");
    }

    #[test]
    fn only_what_lies_under_a_configured_directory_may_be_deleted() {
        for (location, root, under) in [
            ("s3://b/sp/savepoint-x", "s3://b/sp", true),
            ("s3://b/sp/savepoint-x/", "s3://b/sp/", true),
            ("s3://b/sp/a/b", "s3://b/sp", true),
            // Directory semantics, not string prefixes.
            ("s3://b/sp2/savepoint-x", "s3://b/sp", false),
            ("s3://b/spx", "s3://b/sp", false),
            // Never the directory itself, another bucket, another scheme.
            ("s3://b/sp", "s3://b/sp", false),
            ("s3://b/sp/", "s3://b/sp", false),
            ("s3://c/sp/savepoint-x", "s3://b/sp", false),
            ("file:///b/sp/savepoint-x", "s3://b/sp", false),
            // `file://` and plain paths are the same.
            ("file:///data/sp/savepoint-x", "/data/sp", true),
            ("/data/sp/savepoint-x", "file:///data/sp", true),
            ("/data/sp/savepoint-x", "/data/sp/", true),
            ("data/sp/savepoint-x", "/data/sp", false),
            // Nothing that climbs out or hides a segment.
            ("s3://b/sp/../other", "s3://b/sp", false),
            ("s3://b/sp/x/../../other", "s3://b/sp", false),
            ("/data/sp/./x", "/data/sp", false),
            ("s3://b/sp/%2E%2E/other", "s3://b/sp", false),
            ("s3://b/sp//x", "s3://b/sp", false),
            ("s3://b/sp/x", "s3://b/sp/../sp", false),
            ("http://b/sp/x", "http://b/sp", false),
            ("s3://b/sp/x", "", false),
        ] {
            assert_eq!(is_under(location, root), under, "{location} under {root}");
        }
    }

    #[test]
    fn the_roots_are_the_savepoint_directory_and_the_checkpoint_storage() {
        let spec = |sp: Option<&str>, chk: Option<&str>| {
            let mut s: StreamJobSpec = serde_json::from_value(serde_json::json!({"sql": "x"})).unwrap();
            s.savepoints.directory = sp.map(str::to_string);
            s.checkpointing.storage = chk.map(str::to_string);
            s
        };
        let (now, before) = (spec(Some("s3://b/sp"), Some("s3://b/chk")), spec(Some("s3://b/old"), None));
        let roots = disposal_roots([&now, &before, &now]);
        assert_eq!(roots, vec!["s3://b/sp", "s3://b/chk", "s3://b/old"]);
        assert!(may_dispose("s3://b/old/savepoint-1", &roots));
        assert!(!may_dispose("s3://b/elsewhere/savepoint-1", &roots));
        assert!(!may_dispose("s3://b/sp/savepoint-1", &[]));
    }
}
