//! The data policy of a job as its configuration carries it: the JSON of
//! `StreamJob.spec.dataPolicy` (or of `--data-policy FILE`) in the key
//! [`CONFIG_KEY`], and the hmac keys its rules name, read from
//! `<sluice.secrets-dir>/<secret>/<key>` (default `/var/run/secrets/sluice.dev`, where
//! the operator mounts the Secrets).
//!
//! The policy comes from the configuration only: a job's own `SET` cannot
//! set or turn it off, since the job's author is not always the policy's.

use std::path::PathBuf;

use sluice_api::policy::{CONFIG_KEY, DEFAULT_SECRETS_DIR, DataPolicy, SECRETS_DIR_KEY, SecretKeyRef};

use crate::{Config, JobError};

/// Where hmac keys come from.
#[derive(Debug, Clone)]
pub enum Secrets {
    /// Files `<dir>/<secret>/<key>`, as Kubernetes mounts a Secret.
    Files(PathBuf),
    /// Not read: a validation that runs where the Secrets are not mounted (the
    /// operator checks that each Secret and key exists through the API instead).
    Unread,
}

impl Secrets {
    /// The files under the configuration's `sluice.secrets-dir`.
    pub fn of(config: &Config) -> Secrets {
        Secrets::Files(PathBuf::from(config.get(SECRETS_DIR_KEY).unwrap_or(DEFAULT_SECRETS_DIR)))
    }

    pub fn read(&self, r: &SecretKeyRef) -> Result<Vec<u8>, String> {
        match self {
            Secrets::Unread => Ok(b"unread".to_vec()),
            Secrets::Files(dir) => {
                let path = dir.join(&r.name).join(&r.key);
                std::fs::read(&path).map_err(|e| {
                    format!(
                        "cannot read {}: {e}; mount the Secret there (the operator does), or point {SECRETS_DIR_KEY} at a directory of <secret>/<key> files",
                        path.display()
                    )
                })
            }
        }
    }
}

/// The configuration's data policy, if it has one.
pub fn data_policy(config: &Config) -> Result<Option<DataPolicy>, JobError> {
    let Some(json) = config.get(CONFIG_KEY) else {
        return Ok(None);
    };
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| JobError::Config(format!("'{CONFIG_KEY}' is not a data policy: {e}")))
}

/// The sink columns that carry a value of a source column tagged `pii` that the
/// policy does not mask, each as "sink `out` column `email` ← `clicks.email`": what a
/// namespace that requires a data policy refuses.
pub fn unmasked_pii(job: &sluice_sql::Job, policy: &DataPolicy) -> Vec<String> {
    let pii =
        |t: &str, c: &str| policy.tags.get(&format!("{t}.{c}")).is_some_and(|tags| tags.iter().any(|x| x == "pii"));
    let mut out = Vec::new();
    for s in sluice_sql::lineage::column_lineage(job) {
        for (column, fields) in &s.columns {
            for f in fields.iter().filter(|f| f.masked.is_none() && pii(&f.table, &f.column)) {
                out.push(format!("sink `{}` column `{column}` ← `{}.{}`", s.sink, f.table, f.column));
            }
        }
    }
    out
}

/// Reads a policy file (YAML, the shape of `StreamJob.spec.dataPolicy`) into
/// the JSON that [`CONFIG_KEY`] carries.
pub fn policy_file_json(path: &std::path::Path) -> Result<String, JobError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| JobError::Io { path: path.display().to_string(), source })?;
    let policy: DataPolicy = serde_yaml::from_str(&text)
        .map_err(|e| JobError::Config(format!("{}: not a data policy: {e}", path.display())))?;
    serde_json::to_string(&policy).map_err(|e| JobError::Config(format!("{}: {e}", path.display())))
}
