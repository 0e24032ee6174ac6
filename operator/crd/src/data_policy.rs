//! `spec.dataPolicy` and `status.dataPolicy`: column masking and row rules that the
//! engine enforces at the job's sources, and the record of the policy in force.
//!
//! The spec's shape is the engine's (`sluice_api::policy::DataPolicy`): the operator
//! hands the policy to the engine as JSON in the configuration key
//! `sluice.data-policy`, and a test checks that every manifest field reaches it.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// `spec.dataPolicy`: what the engine masks or filters at the sources, before any
/// operator, state or sink sees a raw value. A change is an upgrade like any other.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataPolicySpec {
    /// Column rules; for each column, the first rule that matches it applies. A rule
    /// that matches no column of the job's tables is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnRule>,
    /// Row rules: the rows of `table` that fail `where` never leave its source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<RowRule>,
    /// Tags of columns, keyed `table.column`, for rules that match by tag (and for
    /// the admission policy: a column tagged `pii` must be masked).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.action != 'hmac' || has(self.keySecretRef)").message("action hmac needs keySecretRef: the Secret and key of its HMAC key"),
    validation = Rule::new("self.action != 'truncate' || has(self.keep) || has(self.unit)").message("action truncate needs keep.first (a string) or unit (a timestamp or date)"),
)]
pub struct ColumnRule {
    /// Which columns: every field given must match.
    #[serde(rename = "match")]
    pub matches: ColumnMatch,
    pub action: MaskAction,
    /// The Secret (in the job's namespace) holding the HMAC key of `hmac`. The operator
    /// mounts it into the engine pods; the key never appears in status, logs or `explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeyRef>,
    /// What `redact` leaves visible (`{last: 4}`), or how many characters `truncate` keeps (`{first: 3}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Keep>,
    /// For `truncate` of a timestamp or a date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<TruncateUnit>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.column) || has(self.tag)").message("match needs a column (a name, or a pattern with * and ?) or a tag"))]
pub struct ColumnMatch {
    /// A table of the job, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A column name, or a pattern with `*` and `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A tag given to columns in `tags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `drop` removes the column; `null` empties it; `redact` stars its characters;
/// `hmac` replaces it with a keyed token (the same value, the same token: tokens join);
/// `truncate` shortens a string or coarsens a time.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MaskAction {
    Drop,
    Null,
    Redact,
    Hmac,
    Truncate,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Keep {
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub first: u32,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub last: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TruncateUnit {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowRule {
    pub table: String,
    /// A SQL boolean expression over the table's columns, before masking, such as
    /// `country <> 'XX'`. A row for which it is false or NULL is dropped.
    #[serde(rename = "where")]
    pub predicate: String,
}

impl DataPolicySpec {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.rows.is_empty() && self.tags.is_empty()
    }

    /// The JSON the engine reads from `sluice.data-policy`.
    pub fn engine_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The Secrets its rules name, each once.
    pub fn secrets(&self) -> Vec<&SecretKeyRef> {
        let mut out: Vec<&SecretKeyRef> = Vec::new();
        for r in self.columns.iter().filter_map(|c| c.key_secret_ref.as_ref()) {
            if !out.iter().any(|o| o == &r) {
                out.push(r);
            }
        }
        out
    }
}

/// `status.dataPolicy`: the policy the running job enforces.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataPolicyStatus {
    /// The policy's id, FNV-1a of its JSON: what the engine's `GET /v1/job` reports
    /// as `dataPolicy` while it enforces it.
    pub hash: String,
    /// When a deployment that enforces it first ran (RFC 3339).
    pub applied_at: String,
    /// The columns it masks, as `table.column: action`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_columns: Vec<String>,
    /// The tables whose rows it filters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filtered_tables: Vec<String>,
    /// Whether the engine was seen reporting this hash.
    #[serde(default)]
    pub verified: bool,
}
