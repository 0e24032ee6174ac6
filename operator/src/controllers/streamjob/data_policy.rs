//! `status.dataPolicy`: the audit record of the data policy in force.
//!
//! Invariants:
//! - the record follows the deployed spec (`status.reconciledSpec`), never the
//!   desired one: it says what the running job enforces, not what it will;
//! - a new policy (another hash) gets a new record and an Event; the same policy
//!   keeps its record, and with it the time it was first applied;
//! - `verified` is set once the engine reports the same hash in `GET /v1/job`;
//! - the record and the Events name columns and actions, never a key.
//!
//! [`record`] decides; the reconcile writes its result with the rest of the status.

use crate::controllers::streamjob::plan::{EngineView, PlannedEvent};
use crate::crd::{DataPolicySpec, DataPolicyStatus, DeployedSpec, StreamJobStatus};
use crate::resources::SQL_FILE;

/// The id of a policy, as the engine computes it from the same JSON.
pub fn hash(policy: &DataPolicySpec) -> String {
    sluice_api::policy::hash(&policy.engine_json())
}

/// What the policy masks and filters in the deployed job: `table.column: action`
/// and the filtered tables.
fn effect(spec: &DeployedSpec) -> (Vec<String>, Vec<String>) {
    let mut config = crate::resources::configmap::spec_config(spec);
    config.retain(|k, _| k == sluice_api::policy::CONFIG_KEY);
    let config = sluice_job::Config { values: config };
    let Ok(job) = sluice_job::validate_with(spec.sql(), SQL_FILE, &config, &sluice_job::Secrets::Unread) else {
        return (vec![], vec![]);
    };
    let mut masked = Vec::new();
    let mut filtered = Vec::new();
    // The tables the job reads: a rule that matches a sink's column changes nothing.
    let read = sluice_job::scanned_tables(&job.job);
    for t in job.job.tables.values().filter(|t| read.contains_key(&t.name)) {
        masked.extend(t.policy.masked.iter().map(|m| format!("{}.{}: {}", t.name, m.column, m.action.name())));
        if t.policy.row_filter.is_some() {
            filtered.push(t.name.clone());
        }
    }
    (masked, filtered)
}

/// The record of the policy in force after this reconcile, and the Events to publish.
pub fn record(
    status: &StreamJobStatus,
    engine: &EngineView,
    now: jiff::Timestamp,
) -> (Option<DataPolicyStatus>, Vec<PlannedEvent>) {
    let old = status.data_policy.clone();
    let deployed = status.reconciled_spec.as_ref().filter(|s| !s.data_policy.is_empty());
    let Some(spec) = deployed else {
        let events = old
            .map(|o| PlannedEvent {
                warning: false,
                reason: "DataPolicyRemoved".into(),
                message: format!("the deployed job enforces no data policy any more (it enforced {})", o.hash),
            })
            .into_iter()
            .collect();
        return (None, events);
    };
    let h = hash(&spec.data_policy);
    let reported = matches!(engine, EngineView::Up(job) if job.data_policy.as_deref() == Some(h.as_str()));
    if let Some(mut o) = old.filter(|o| o.hash == h) {
        o.verified |= reported;
        return (Some(o), vec![]);
    }
    let (masked_columns, filtered_tables) = effect(spec);
    let mut message = format!("data policy {h} is in force: masks {}", list(&masked_columns));
    if !filtered_tables.is_empty() {
        message.push_str(&format!("; filters the rows of {}", filtered_tables.join(", ")));
    }
    let event = PlannedEvent { warning: false, reason: "DataPolicyApplied".into(), message };
    let record =
        DataPolicyStatus { hash: h, applied_at: now.to_string(), masked_columns, filtered_tables, verified: reported };
    (Some(record), vec![event])
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "no column".into() } else { items.join(", ") }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::crd::StreamJobSpec;

    const SQL: &str =
        "CREATE TABLE clicks (user_id BIGINT, email STRING, country STRING) WITH ('connector' = 'datagen');
CREATE TABLE out (user_id BIGINT, email STRING) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT user_id, email FROM clicks;";

    fn deployed(policy: serde_json::Value) -> DeployedSpec {
        let spec: StreamJobSpec = serde_json::from_value(serde_json::json!({
            "image": "sluice/engine:test", "sql": SQL, "dataPolicy": policy
        }))
        .unwrap();
        DeployedSpec::resolve(&spec, SQL)
    }

    fn status(spec: Option<DeployedSpec>, old: Option<DataPolicyStatus>) -> StreamJobStatus {
        StreamJobStatus { reconciled_spec: spec, data_policy: old, ..Default::default() }
    }

    fn engine(policy: Option<&str>) -> EngineView {
        let mut job: sluice_api::rest::Job = serde_json::from_value(serde_json::json!({
            "id": "j", "name": "j", "state": "RUNNING", "startTime": "", "endTime": null, "durationMs": 0,
            "restarts": 0, "vertices": [], "lastCompletedCheckpoint": null, "error": null
        }))
        .unwrap();
        job.data_policy = policy.map(str::to_string);
        EngineView::Up(Box::new(job))
    }

    /// The CRD's type and the engine's share a shape, and the engine refuses unknown
    /// fields: every field a manifest can set must reach the engine as it was written.
    #[test]
    fn every_manifest_field_reaches_the_engine() {
        let full = serde_json::json!({
            "columns": [
                {"match": {"table": "t", "column": "c*", "tag": "pii"}, "action": "hmac",
                 "keySecretRef": {"name": "s", "key": "k"}, "keep": {"first": 1, "last": 2}},
                {"match": {"column": "d"}, "action": "truncate", "unit": "day"},
                {"match": {"column": "e"}, "action": "drop"}, {"match": {"column": "f"}, "action": "null"},
                {"match": {"column": "g"}, "action": "redact"}
            ],
            "rows": [{"table": "t", "where": "x > 0"}],
            "tags": {"t.c": ["pii"]}
        });
        let spec: DataPolicySpec = serde_json::from_value(full.clone()).unwrap();
        let engine: sluice_api::policy::DataPolicy = serde_json::from_str(&spec.engine_json()).unwrap();
        assert_eq!(serde_json::to_value(&engine).unwrap(), full);
    }

    #[test]
    fn a_new_policy_is_recorded_once_then_verified_by_the_engine() {
        let now: jiff::Timestamp = "2026-12-04T10:00:00Z".parse().unwrap();
        let spec = deployed(serde_json::json!({
            "columns": [{"match": {"column": "email"}, "action": "hmac", "keySecretRef": {"name": "pii", "key": "k"}}],
            "rows": [{"table": "clicks", "where": "country <> 'XX'"}]
        }));
        let h = hash(&spec.data_policy);
        let (rec, events) = record(&status(Some(spec.clone()), None), &engine(None), now);
        let rec = rec.unwrap();
        assert_eq!(rec.masked_columns, ["clicks.email: hmac"]);
        assert_eq!(rec.filtered_tables, ["clicks"]);
        assert!(!rec.verified);
        assert_eq!(events[0].reason, "DataPolicyApplied");
        assert!(events[0].message.contains(&h), "{}", events[0].message);
        // The same policy later: the same record, now verified; no second Event.
        let later: jiff::Timestamp = "2026-12-04T11:00:00Z".parse().unwrap();
        let (again, events) = record(&status(Some(spec.clone()), Some(rec.clone())), &engine(Some(&h)), later);
        assert_eq!(again.as_ref().map(|r| r.applied_at.clone()), Some(rec.applied_at.clone()));
        assert!(again.unwrap().verified && events.is_empty());
        // Another engine's hash does not verify it.
        let (other, _) = record(&status(Some(spec), Some(rec.clone())), &engine(Some("0000000000000000")), later);
        assert!(!other.unwrap().verified);
        // Removed from the deployed spec: the record goes, with an Event.
        let (gone, events) = record(&status(Some(deployed(serde_json::json!({}))), Some(rec)), &engine(None), later);
        assert!(gone.is_none());
        assert_eq!(events[0].reason, "DataPolicyRemoved");
    }
}
