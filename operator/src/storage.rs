//! Savepoint data in storage, as the operator sees it: checking that a
//! savepoint exists, and deleting old ones. The engine's storage crate is
//! blocking, so every call runs on the blocking pool.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sluice_storage::{S3Options, Storage};

use crate::crd::{S3Spec, StreamJobSpec};
use crate::error::Error;

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

/// The directory of a savepoint triggered with `trigger_id` under `dir`, as the engine names it.
pub fn savepoint_location(dir: &str, trigger_id: &str) -> String {
    let safe: String =
        trigger_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{}/savepoint-{safe}", dir.trim_end_matches('/'))
}

/// Runs a blocking storage call on the savepoint at `location`.
async fn at<T: Send + 'static>(
    access: &Access,
    location: &str,
    f: impl FnOnce(&Storage) -> Result<T, sluice_storage::StorageError> + Send + 'static,
) -> Result<T, Error> {
    let (access, location) = (access.clone(), location.to_string());
    tokio::task::spawn_blocking(move || {
        let s = Storage::open(&location, &access.options).map_err(|e| Error::Storage(e.to_string()))?;
        f(&s).map_err(|e| Error::Storage(format!("{location}: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Whether a complete savepoint (its `_metadata`) exists at `location`.
pub async fn savepoint_exists(access: &Access, location: &str) -> Result<bool, Error> {
    at(access, location, |s| s.exists("_metadata")).await
}

/// Deletes a savepoint's files.
pub async fn dispose(access: &Access, location: &str) -> Result<(), Error> {
    at(access, location, |s| s.delete_prefix("")).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn location_matches_the_engine() {
        assert_eq!(super::savepoint_location("s3://b/sp/", "job-up/7"), "s3://b/sp/savepoint-job-up_7");
    }
}
