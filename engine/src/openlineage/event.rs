//! OpenLineage run events as JSON, from the run's facts. Pure.
//!
//! Facets: `processing_engine` and, on `FAIL`, `errorMessage` on the run;
//! `jobType` on the job; `schema` on every dataset and `columnLineage` on
//! outputs. Sluice's own run facet, `sluice`, carries the job id, its status,
//! its restarts and the data policy's id; its schema is
//! `engine/openlineage/SluiceRunFacet.json`.

use std::hash::{BuildHasher, Hasher};

use serde_json::{Map, Value, json};

use super::datasets::{Dataset, Datasets};
use crate::job::{JobStatus, RunIdentity};

pub const PRODUCER: &str = concat!("https://github.com/example/sluice/tree/v", env!("CARGO_PKG_VERSION"));
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const FACETS: &str = "https://openlineage.io/spec/facets/";
pub const SLUICE_RUN_FACET: &str =
    "https://github.com/example/sluice/blob/main/engine/openlineage/SluiceRunFacet.json#/$defs/SluiceRunFacet";

/// OpenLineage's run state transitions, as Sluice uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The run started: the job is running for the first time in this run.
    Start,
    /// The run goes on: it recovered from a failure, or a restarted coordinator resumed it.
    Running,
    /// The job finished, or was stopped with a savepoint (an upgrade or a cutover).
    Complete,
    /// The job was canceled.
    Abort,
    /// The job failed and does not restart.
    Fail,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "START",
            EventType::Running => "RUNNING",
            EventType::Complete => "COMPLETE",
            EventType::Abort => "ABORT",
            EventType::Fail => "FAIL",
        }
    }

    /// The event that ends a run in `status`, if the status ends it.
    pub fn ending(status: JobStatus) -> Option<EventType> {
        match status {
            JobStatus::Finished | JobStatus::Suspended => Some(EventType::Complete),
            JobStatus::Canceled => Some(EventType::Abort),
            JobStatus::Failed => Some(EventType::Fail),
            _ => None,
        }
    }
}

/// What the events of one run say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    pub run_id: String,
    pub job_namespace: String,
    pub job_name: String,
    pub job_id: String,
    pub data_policy: Option<String>,
}

/// The state of the run when an event is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment<'a> {
    pub kind: EventType,
    pub time: &'a str,
    pub status: JobStatus,
    pub restarts: u64,
    pub error: Option<&'a str>,
}

fn facet(schema: &str, fields: Value) -> Value {
    let mut m = Map::new();
    m.insert("_producer".into(), PRODUCER.into());
    m.insert("_schemaURL".into(), schema.into());
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    Value::Object(m)
}

fn standard(name: &str, version: &str, fields: Value) -> Value {
    facet(&format!("{FACETS}{version}/{name}.json#/$defs/{name}"), fields)
}

/// One run event.
pub fn run_event(run: &RunFacts, at: &Moment, datasets: &Datasets) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut run_facets = Map::new();
    run_facets.insert(
        "processing_engine".into(),
        standard(
            "ProcessingEngineRunFacet",
            "1-1-1",
            json!({"name": "Sluice", "version": version, "openlineageAdapterVersion": version}),
        ),
    );
    let mut own = json!({"jobId": run.job_id, "status": at.status.as_str(), "restarts": at.restarts});
    if let (Some(p), Value::Object(o)) = (&run.data_policy, &mut own) {
        o.insert("dataPolicy".into(), p.clone().into());
    }
    run_facets.insert("sluice".into(), facet(SLUICE_RUN_FACET, own));
    if let (EventType::Fail, Some(message)) = (at.kind, at.error) {
        run_facets.insert(
            "errorMessage".into(),
            standard("ErrorMessageRunFacet", "1-0-1", json!({"message": message, "programmingLanguage": "Rust"})),
        );
    }
    json!({
        "eventType": at.kind.as_str(),
        "eventTime": at.time,
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT,
        "run": {"runId": run.run_id, "facets": run_facets},
        "job": {
            "namespace": run.job_namespace,
            "name": run.job_name,
            "facets": {
                "jobType": standard(
                    "JobTypeJobFacet",
                    "2-0-4",
                    json!({"processingType": "STREAMING", "integration": "SLUICE", "jobType": "JOB"}),
                ),
            },
        },
        "inputs": datasets.inputs.iter().map(dataset).collect::<Vec<_>>(),
        "outputs": datasets.outputs.iter().map(dataset).collect::<Vec<_>>(),
    })
}

fn dataset(d: &Dataset) -> Value {
    let fields: Vec<Value> = d.fields.iter().map(|(name, ty)| json!({"name": name, "type": ty})).collect();
    let mut facets = Map::new();
    facets.insert("schema".into(), standard("SchemaDatasetFacet", "1-2-0", json!({"fields": fields})));
    if !d.columns.is_empty() {
        let mut columns = Map::new();
        for (column, inputs) in &d.columns {
            let input_fields: Vec<Value> = inputs
                .iter()
                .map(|f| {
                    let mut t = json!({"type": "DIRECT", "subtype": f.subtype, "masking": f.masked.is_some()});
                    if let (Some(action), Value::Object(o)) = (f.masked, &mut t) {
                        o.insert("description".into(), format!("MASKED: {action} (data policy)").into());
                    }
                    json!({"namespace": f.namespace, "name": f.name, "field": f.field, "transformations": [t]})
                })
                .collect();
            let mut entry = json!({"inputFields": input_fields});
            if let (Some(action), Value::Object(o)) = (inputs.iter().find_map(|f| f.masked), &mut entry) {
                // The facet's own (deprecated) field: no original value is available.
                o.insert("transformationType".into(), "MASKED".into());
                o.insert("transformationDescription".into(), format!("masked by the data policy: {action}").into());
            }
            columns.insert(column.clone(), entry);
        }
        facets
            .insert("columnLineage".into(), standard("ColumnLineageDatasetFacet", "1-2-0", json!({"fields": columns})));
    }
    json!({"namespace": d.namespace, "name": d.name, "facets": facets})
}

/// A run id, a UUIDv7 as OpenLineage recommends: the same for every coordinator
/// of one run ([`RunIdentity`]), otherwise new.
pub fn run_id(identity: Option<&RunIdentity>, now_ms: u64) -> String {
    let (ms, a, b) = match identity {
        Some(r) => (r.started_ms, fnv(r.key.as_bytes(), 0), fnv(r.key.as_bytes(), 1)),
        None => {
            let random = |salt: u64| {
                let mut h = std::hash::RandomState::new().build_hasher();
                h.write_u64(now_ms ^ salt);
                h.write_u32(std::process::id());
                h.finish()
            };
            (now_ms, random(0), random(1))
        }
    };
    uuid_v7(ms, a, b)
}

fn fnv(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 48 bits of milliseconds, the version, 12 bits of `a`, the variant, 62 bits of `b`.
fn uuid_v7(ms: u64, a: u64, b: u64) -> String {
    let hi = ((ms & 0xffff_ffff_ffff) << 16) | 0x7000 | (a & 0x0fff);
    let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_uuid_v7_and_stable_for_one_run() {
        let r = RunIdentity { key: "job/abc/2".into(), started_ms: 1_700_000_000_000, resumed: true };
        let id = run_id(Some(&r), 5);
        assert_eq!(id, run_id(Some(&RunIdentity { resumed: false, ..r.clone() }), 99));
        assert_ne!(id, run_id(Some(&RunIdentity { key: "job/abc/3".into(), ..r.clone() }), 5));
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('7') && "89ab".contains(&parts[3][..1]), "{id}");
        assert_eq!(&id[..13], "018bcfe5-6800", "the first 48 bits are the start time");
        assert_ne!(run_id(None, 5), run_id(None, 5));
    }

    #[test]
    fn a_failure_carries_its_message_and_masked_columns_say_so() {
        let run = RunFacts {
            run_id: "r".into(),
            job_namespace: "ns".into(),
            job_name: "clicks".into(),
            job_id: "clicks".into(),
            data_policy: Some("p1".into()),
        };
        let input = super::super::datasets::InputField {
            namespace: "file".into(),
            name: "/in".into(),
            field: "email".into(),
            subtype: "IDENTITY",
            masked: Some("hmac"),
        };
        let out = Dataset {
            namespace: "file".into(),
            name: "/out".into(),
            fields: vec![("email".into(), "STRING".into())],
            columns: vec![("email".into(), vec![input])],
        };
        let datasets = Datasets { inputs: vec![], outputs: vec![out] };
        let at =
            Moment { kind: EventType::Fail, time: "t", status: JobStatus::Failed, restarts: 2, error: Some("boom") };
        let e = run_event(&run, &at, &datasets);
        assert_eq!(e["eventType"], "FAIL");
        assert_eq!(e["run"]["facets"]["errorMessage"]["message"], "boom");
        assert_eq!(e["run"]["facets"]["sluice"]["dataPolicy"], "p1");
        let email = &e["outputs"][0]["facets"]["columnLineage"]["fields"]["email"];
        assert_eq!(email["transformationType"], "MASKED");
        assert_eq!(email["inputFields"][0]["transformations"][0]["masking"], true);
        assert_eq!(email["inputFields"][0]["transformations"][0]["subtype"], "IDENTITY");
        let start = Moment { kind: EventType::Start, error: None, ..at };
        assert!(run_event(&run, &start, &datasets)["run"]["facets"].get("errorMessage").is_none());
    }
}
