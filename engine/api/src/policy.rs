//! A job's data policy, as the operator hands it to the engine: the JSON of
//! `StreamJob.spec.dataPolicy` in the configuration key [`CONFIG_KEY`], or the
//! YAML of `sluice-engine run --data-policy FILE`.
//!
//! The engine enforces it at the sources, before any operator sees a raw value
//! (`sluice_sql::policy`). The hmac key is never part of the policy: the policy
//! names a Secret, which the engine reads from `<secrets dir>/<name>/<key>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The configuration key that carries the policy's JSON.
pub const CONFIG_KEY: &str = "sluice.data-policy";

/// Where the engine reads the Secrets a policy names: `<dir>/<secret>/<key>`.
pub const SECRETS_DIR_KEY: &str = "sluice.secrets-dir";

/// The default of [`SECRETS_DIR_KEY`]: where the operator mounts them, beside
/// (not inside) the read-only configuration volume at `/etc/sluice`.
pub const DEFAULT_SECRETS_DIR: &str = "/var/run/secrets/sluice.dev";

/// The id of a policy: FNV-1a of the JSON that [`CONFIG_KEY`] carries, as
/// `GET /v1/job` reports it and `StreamJob.status.dataPolicy.hash` records it,
/// so that the operator can check that the running job enforces its spec.
pub fn hash(json: &str) -> String {
    format!("{:016x}", crate::hash::fnv1a(json.as_bytes()))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataPolicy {
    /// Column rules; for a column, the first rule that matches it applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnRule>,
    /// Row rules: the rows of a table that fail a rule's predicate never leave its source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<RowRule>,
    /// Tags of columns, by `table.column`, for rules that match by tag.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ColumnRule {
    #[serde(rename = "match")]
    pub matches: ColumnMatch,
    pub action: MaskAction,
    /// The Secret holding the key of `hmac`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeyRef>,
    /// What `redact` leaves visible, or how much `truncate` keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Keep>,
    /// For `truncate` of a timestamp or date: `second`, `minute`, `hour`, `day`, `month` or `year`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<TruncateUnit>,
}

/// Which columns a rule applies to: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ColumnMatch {
    /// A table name, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A column name, or a pattern with `*` and `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A tag of `tags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskAction {
    /// The column is removed: the job's SQL cannot read it.
    Drop,
    /// Every value becomes NULL.
    Null,
    /// Every character becomes `*`, except those `keep` leaves.
    Redact,
    /// A keyed HMAC-SHA256 token: the same value gives the same token, so tokens join.
    Hmac,
    /// A string keeps its first `keep.first` characters; a timestamp or date is truncated to `unit`.
    Truncate,
}

impl MaskAction {
    pub fn name(self) -> &'static str {
        match self {
            MaskAction::Drop => "drop",
            MaskAction::Null => "null",
            MaskAction::Redact => "redact",
            MaskAction::Hmac => "hmac",
            MaskAction::Truncate => "truncate",
        }
    }
}

/// What `truncate` cuts a timestamp or a date down to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TruncateUnit {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Keep {
    #[serde(default)]
    pub first: u32,
    #[serde(default)]
    pub last: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RowRule {
    pub table: String,
    /// A SQL boolean expression over the table's columns, before masking.
    #[serde(rename = "where")]
    pub predicate: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_shape_round_trips() {
        let json = r#"{"columns":[{"match":{"table":"clicks","column":"email"},"action":"hmac","keySecretRef":{"name":"pii-key","key":"hmac"}},
            {"match":{"column":"card_number"},"action":"redact","keep":{"last":4}}],
            "rows":[{"table":"clicks","where":"country <> 'XX'"}],"tags":{"clicks.email":["pii"]}}"#;
        let p: DataPolicy = serde_json::from_str(json).unwrap();
        assert_eq!(p.columns[1].keep, Some(Keep { first: 0, last: 4 }));
        assert_eq!(p.rows[0].predicate, "country <> 'XX'");
        let again: DataPolicy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(p, again);
        let typo = r#"{"columns":[{"match":{"colum":"email"},"action":"null"}]}"#;
        assert!(serde_json::from_str::<DataPolicy>(typo).unwrap_err().to_string().contains("colum"));
    }
}
