//! The spec of a deployment, as the status records it.
//!
//! The status keeps the deployed spec (`reconciledSpec`), the last stable one
//! (`lastStableSpec`) and an upgrade's target (`upgrade.targetSpec`) as JSON strings: that
//! is their wire format, and objects written by earlier operators must read back. In
//! memory they are a typed [`DeployedSpec`], parsed once when the object is read.
//!
//! A recorded spec that cannot be read (a status edited by hand) must not make the
//! whole object unreadable: a watch that fails to decode one object fails for every
//! job. Such a spec reads as absent ([`lenient`]; an upgrade record without its target
//! is dropped), which is what the operator did with an unreadable string before the
//! spec was typed.

use std::borrow::Cow;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::StreamJobSpec;

/// A StreamJob's spec as deployed: the object's spec with its SQL resolved into `sql`
/// (from `sql` itself or from `sqlConfigMapRef`).
#[derive(Clone, Debug, PartialEq)]
pub struct DeployedSpec(StreamJobSpec);

impl DeployedSpec {
    /// `spec` with `sql`, the SQL it resolved to.
    pub fn resolve(spec: &StreamJobSpec, sql: &str) -> DeployedSpec {
        let mut s = spec.clone();
        s.sql = Some(sql.to_string());
        DeployedSpec(s)
    }

    /// The spec; its `sql` is always set.
    pub fn spec(&self) -> &StreamJobSpec {
        &self.0
    }

    /// The resolved SQL.
    pub fn sql(&self) -> &str {
        self.0.sql.as_deref().unwrap_or_default()
    }

    /// Reads the JSON string of a status.
    pub fn from_json(json: &str) -> Result<DeployedSpec, serde_json::Error> {
        serde_json::from_str(json).map(DeployedSpec)
    }
}

impl Deref for DeployedSpec {
    type Target = StreamJobSpec;

    fn deref(&self) -> &StreamJobSpec {
        &self.0
    }
}

impl Serialize for DeployedSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&json)
    }
}

impl<'de> Deserialize<'de> for DeployedSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = String::deserialize(deserializer)?;
        DeployedSpec::from_json(&json).map_err(serde::de::Error::custom)
    }
}

/// The schema is a string's, as it was before the spec was typed.
impl schemars::JsonSchema for DeployedSpec {
    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        String::schema_id()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// Reads an optional recorded spec: a JSON string, as absent if the spec in it cannot be
/// read (see the module doc). A value that is not a string is an error, as it was.
pub(crate) fn lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DeployedSpec>, D::Error> {
    let json = Option::<String>::deserialize(deserializer)?;
    Ok(json.and_then(|j| DeployedSpec::from_json(&j).ok()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{StreamJobStatus, UpgradeKind, UpgradeStep};

    fn spec() -> StreamJobSpec {
        serde_json::from_value(json!({"image": "sluice/engine:0.1.0", "sql": "INSERT INTO a SELECT 1;"})).unwrap()
    }

    /// The status holds the spec as a JSON string, and reads it back.
    #[test]
    fn the_status_keeps_the_spec_as_a_json_string() {
        let deployed = DeployedSpec::resolve(&spec(), "INSERT INTO b SELECT 2;");
        let st = StreamJobStatus { reconciled_spec: Some(deployed.clone()), ..Default::default() };
        let wire = serde_json::to_value(&st).unwrap();
        let json = wire["reconciledSpec"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<StreamJobSpec>(json).unwrap(), *deployed.spec());
        assert_eq!(deployed.sql(), "INSERT INTO b SELECT 2;");
        let back: StreamJobStatus = serde_json::from_value(wire).unwrap();
        assert_eq!(back.reconciled_spec, Some(deployed));
    }

    /// A status as an earlier operator wrote it, with the specs as strings, reads back typed.
    #[test]
    fn a_status_written_by_an_earlier_operator_reads_back() {
        let old = r#"{"image":"sluice/engine:0.1.0","sql":"INSERT INTO a SELECT 1;","parallelism":2}"#;
        let st: StreamJobStatus = serde_json::from_value(json!({
            "phase": "Upgrading",
            "reconciledSpec": old,
            "lastStableSpec": old,
            "upgrade": {"kind": "upgrade", "targetGeneration": 2, "targetSpec": old, "step": "stopping",
                        "triggerId": "clicks-upgrade-2-1", "started": "2026-11-30T12:00:00Z"},
        }))
        .unwrap();
        let mut want = spec();
        want.parallelism = 2;
        assert_eq!(st.reconciled_spec.as_ref().map(DeployedSpec::spec), Some(&want));
        assert_eq!(st.last_stable_spec, st.reconciled_spec);
        let rec = st.upgrade.unwrap();
        assert_eq!((rec.kind, rec.step, rec.target_spec.spec()), (UpgradeKind::Upgrade, UpgradeStep::Stopping, &want));
        assert_eq!(rec.target_spec.sql(), "INSERT INTO a SELECT 1;");
    }

    /// An unreadable recorded spec is absent (and takes its upgrade record with it), not an
    /// unreadable object; any other unreadable field still is an error.
    #[test]
    fn a_recorded_spec_that_cannot_be_read_is_absent() {
        let json = serde_json::to_string(&spec()).unwrap();
        let st: StreamJobStatus = serde_json::from_value(json!({
            "phase": "Stable",
            "reconciledSpec": json,
            "lastStableSpec": "{not json",
            "upgrade": {"kind": "upgrade", "targetGeneration": 2, "targetSpec": "{\"parallelism\": \"two\"}",
                        "step": "stopping", "started": "2026-11-30T12:00:00Z"},
        }))
        .unwrap();
        assert_eq!(st.reconciled_spec.as_deref(), Some(&spec()));
        assert_eq!(st.last_stable_spec, None);
        assert_eq!(st.upgrade, None);
        let unknown_step = serde_json::from_value::<StreamJobStatus>(json!({
            "upgrade": {"kind": "upgrade", "targetGeneration": 2, "targetSpec": json, "step": "flying", "started": "t"},
        }));
        assert!(unknown_step.is_err());
        let not_a_string = serde_json::from_value::<StreamJobStatus>(json!({"reconciledSpec": 7}));
        assert!(not_a_string.is_err());
    }
}
