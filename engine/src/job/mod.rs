//! The shared state of a running job: what the REST API and the progress
//! line read about it, and the requests they make of it (cancel, savepoints).
//! The runtime, the checkpoint coordinator and the REST server all use it, so
//! it sits below them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use sluice_api::rest::{Activation, Checkpoint, JobStatus, Savepoint, SnapshotKind, SnapshotStatus, Standby};

use crate::metrics::SubtaskMetrics;
use crate::plan::JobGraph;

pub mod exceptions;

/// A time as the REST API and the snapshot manifests write it: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
}

#[derive(Debug, Clone)]
pub struct VertexInfo {
    pub id: usize,
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
    pub is_source: bool,
    /// The vertex ends in a sink.
    pub is_sink: bool,
    /// Per input edge: the upstream vertex and the partitioning, as `explain` prints it.
    pub inputs: Vec<(usize, String)>,
    /// An input is hash-partitioned: the vertex's state is in key groups.
    pub keyed: bool,
}

/// One checkpoint or savepoint, as `GET /v1/job/checkpoints` reports it.
pub type CheckpointRecord = Checkpoint;

/// Which run of its deployment a coordinator runs, from its checkpoint storage: a
/// coordinator restarted for its deployment continues the run its predecessor
/// started (OpenLineage reports both as one run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// The same for every coordinator of one run: the job, the deployment's
    /// fingerprint and the generation that started the run.
    pub key: String,
    /// When that generation started, milliseconds since the epoch.
    pub started_ms: u64,
    /// This process resumes a run from its deployment's own checkpoints.
    pub resumed: bool,
}

/// The OpenLineage events of the process, for `/metrics`.
#[derive(Debug, Default)]
pub struct LineageCounters {
    pub sent: AtomicU64,
    /// Not queued: the buffer was full.
    pub dropped: AtomicU64,
    /// Deliveries that failed and are retried.
    pub failed_attempts: AtomicU64,
}

/// A checkpoint or savepoint that has just been triggered.
pub fn checkpoint_started(id: u64, kind: SnapshotKind, location: String) -> CheckpointRecord {
    Checkpoint {
        id,
        kind,
        status: SnapshotStatus::InProgress,
        trigger_time: rfc3339(SystemTime::now()),
        duration_ms: 0,
        size_bytes: 0,
        written_bytes: 0,
        alignment_ms: 0,
        location,
        failure: None,
        acks: Vec::new(),
    }
}

/// A savepoint request from the REST API.
#[derive(Debug, Clone, PartialEq)]
pub struct SavepointRequest {
    pub trigger_id: String,
    pub target_directory: Option<String>,
    pub stop: bool,
    pub drain: bool,
}

/// `GET /v1/job/savepoints/{triggerId}`.
pub type SavepointStatus = Savepoint;

#[derive(Debug, Default)]
struct Savepoints {
    queue: VecDeque<SavepointRequest>,
    requests: BTreeMap<String, SavepointRequest>,
    status: BTreeMap<String, SavepointStatus>,
    /// Trigger ids, oldest first, for forgetting the oldest finished ones.
    order: VecDeque<String>,
    counter: u64,
}

/// An activation accepted by the REST API, not yet taken by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRequest {
    pub restore: Option<String>,
    pub id: Option<String>,
}

/// Savepoint requests waiting to be triggered; more are refused.
const MAX_QUEUED_SAVEPOINTS: usize = 16;
/// Savepoints whose status the REST API remembers; the oldest finished ones
/// are forgotten first (an unknown trigger id is a 404, as after a restart).
const REMEMBERED_SAVEPOINTS: usize = 1000;

/// Checkpoint history kept for the REST API.
const HISTORY: usize = 100;

#[derive(Debug)]
pub struct JobState {
    pub job_id: String,
    pub job_name: String,
    pub status: Mutex<JobStatus>,
    pub start_time: SystemTime,
    pub end_time: Mutex<Option<SystemTime>>,
    pub error: Mutex<Option<String>>,
    /// Stops every subtask of the current attempt.
    pub cancel: AtomicBool,
    /// `POST /v1/job/cancel`: no restart follows.
    pub user_cancel: AtomicBool,
    pub restarts: AtomicU64,
    /// `pipeline.max-parallelism`: the number of key groups.
    pub max_parallelism: usize,
    /// The id of the data policy the job enforces, if any.
    pub data_policy: Option<String>,
    pub vertices: Vec<VertexInfo>,
    pub subtasks: Vec<Arc<SubtaskMetrics>>,
    checkpoints: Mutex<VecDeque<CheckpointRecord>>,
    /// Checkpoints and savepoints that completed and that failed, ever.
    ended: [AtomicU64; 2],
    savepoints: Mutex<Savepoints>,
    /// A standby coordinator's readiness; `None` when the job is not waiting for activation.
    standby: Mutex<Option<Standby>>,
    /// `POST /v1/job/activate` accepted, not yet taken by the coordinator.
    activate: Mutex<Option<ActivationRequest>>,
    activation: Mutex<Option<Activation>>,
    run_identity: Mutex<Option<RunIdentity>>,
    pub lineage: LineageCounters,
    /// Told every status the job takes ([`JobState::subscribe`]).
    listeners: Mutex<Vec<std::sync::mpsc::Sender<JobStatus>>>,
    /// Where savepoints may go ([`sluice_api::layout::target_allowed`]); `None`: anywhere.
    savepoint_dirs: Mutex<Option<Vec<String>>>,
    /// Each failed attempt, for `GET /v1/job/exceptions`.
    pub exceptions: exceptions::ExceptionLog,
    /// The job's SQL and plan, for `GET /v1/job/plan`.
    plan: Mutex<sluice_api::rest::Plan>,
}

/// Keeps the savepoint maps bounded: forgets the oldest finished savepoints
/// beyond [`REMEMBERED_SAVEPOINTS`] (in-progress ones are at most the queue).
fn forget_oldest(sp: &mut Savepoints) {
    let mut kept = VecDeque::new();
    while sp.order.len() + kept.len() > REMEMBERED_SAVEPOINTS
        && let Some(id) = sp.order.pop_front()
    {
        if sp.status.get(&id).is_some_and(|s| s.status == SnapshotStatus::InProgress) {
            kept.push_back(id);
        } else {
            sp.status.remove(&id);
            sp.requests.remove(&id);
        }
    }
    while let Some(id) = kept.pop_back() {
        sp.order.push_front(id);
    }
}

impl JobState {
    pub fn new(job_id: &str, job_name: &str, graph: &JobGraph) -> Arc<JobState> {
        let vertices = graph
            .vertices
            .iter()
            .map(|v| VertexInfo {
                id: v.id,
                uid: v.uid.clone(),
                name: v.name(),
                parallelism: v.parallelism,
                is_source: v.source.is_some(),
                is_sink: v.ops.last().is_some_and(|o| matches!(o, crate::plan::OpSpec::Sink { .. })),
                inputs: v
                    .inputs
                    .iter()
                    .map(|e| &graph.edges[*e])
                    .map(|e| (e.from, e.partitioning.to_string()))
                    .collect(),
                keyed: v
                    .inputs
                    .iter()
                    .any(|e| matches!(graph.edges[*e].partitioning, crate::plan::Partitioning::Hash { .. })),
            })
            .collect();
        let subtasks = graph
            .vertices
            .iter()
            .flat_map(|v| (0..v.parallelism).map(move |i| Arc::new(SubtaskMetrics::new(v.id, i))))
            .collect();
        Arc::new(JobState {
            job_id: job_id.to_string(),
            job_name: job_name.to_string(),
            status: Mutex::new(JobStatus::Created),
            start_time: SystemTime::now(),
            end_time: Mutex::new(None),
            error: Mutex::new(None),
            cancel: AtomicBool::new(false),
            user_cancel: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            max_parallelism: graph.max_parallelism,
            data_policy: graph.data_policy.clone(),
            vertices,
            subtasks,
            checkpoints: Mutex::new(VecDeque::new()),
            ended: [AtomicU64::new(0), AtomicU64::new(0)],
            savepoints: Mutex::new(Savepoints::default()),
            standby: Mutex::new(None),
            activate: Mutex::new(None),
            activation: Mutex::new(None),
            run_identity: Mutex::new(None),
            lineage: LineageCounters::default(),
            listeners: Mutex::new(Vec::new()),
            savepoint_dirs: Mutex::new(None),
            exceptions: exceptions::ExceptionLog::default(),
            plan: Mutex::new(sluice_api::rest::Plan {
                file: job_name.to_string(),
                sql: String::new(),
                explain: graph.explain(),
            }),
        })
    }

    /// The job's SQL text, as the user wrote it.
    pub fn set_sql(&self, sql: &str) {
        if let Ok(mut p) = self.plan.lock() {
            p.sql = sql.to_string();
        }
    }

    pub fn plan(&self) -> sluice_api::rest::Plan {
        self.plan.lock().map(|p| p.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn status(&self) -> JobStatus {
        self.status.lock().map(|s| *s).unwrap_or(JobStatus::Failed)
    }

    /// Every status the job takes from now on, in order, until [`JobState::unsubscribe`].
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<JobStatus> {
        let (tx, rx) = std::sync::mpsc::channel();
        if let Ok(mut l) = self.listeners.lock() {
            l.push(tx);
        }
        rx
    }

    /// Ends every subscription: their receivers see the channel close.
    pub fn unsubscribe(&self) {
        if let Ok(mut l) = self.listeners.lock() {
            l.clear();
        }
    }

    fn notify(&self, s: JobStatus) {
        if let Ok(mut l) = self.listeners.lock() {
            l.retain(|tx| tx.send(s).is_ok());
        }
    }

    pub fn set_status(&self, s: JobStatus) {
        if let Ok(mut g) = self.status.lock() {
            *g = s;
        }
        self.notify(s);
        if s == JobStatus::Running {
            self.update_activation(|a| {
                a.running_at.get_or_insert_with(|| rfc3339(SystemTime::now()));
            });
        }
        if s.is_terminal()
            && let Ok(mut e) = self.end_time.lock()
        {
            *e = Some(SystemTime::now());
        }
        if s.is_terminal() {
            // Savepoints that can no longer complete.
            if let Ok(mut sp) = self.savepoints.lock() {
                sp.queue.clear();
                for st in sp.status.values_mut() {
                    if st.status == SnapshotStatus::InProgress {
                        *st = SavepointStatus::failed(&format!("the job ended ({s:?}) before the savepoint completed"));
                    }
                }
            }
        }
    }

    /// Records the first failure and stops the current attempt.
    pub fn fail(&self, message: String) {
        if let Ok(mut e) = self.error.lock()
            && e.is_none()
        {
            *e = Some(message);
        }
        let failing = match self.status.lock() {
            Ok(mut g) if !g.is_terminal() => {
                *g = JobStatus::Failing;
                true
            }
            _ => false,
        };
        if failing {
            self.notify(JobStatus::Failing);
        }
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Clears the failure of an attempt before a restart.
    pub fn clear_failure(&self) {
        self.cancel.store(false, Ordering::SeqCst);
        if let Ok(mut e) = self.error.lock() {
            *e = None;
        }
    }

    pub fn request_cancel(&self) {
        self.user_cancel.store(true, Ordering::SeqCst);
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    pub fn metrics_of(&self, vertex: usize) -> impl Iterator<Item = &Arc<SubtaskMetrics>> {
        self.subtasks.iter().filter(move |m| m.vertex == vertex)
    }

    pub fn record_checkpoint(&self, r: CheckpointRecord) {
        if let Ok(mut h) = self.checkpoints.lock() {
            h.push_back(r);
            while h.len() > HISTORY {
                h.pop_front();
            }
        }
    }

    pub fn update_checkpoint(&self, id: u64, f: impl FnOnce(&mut CheckpointRecord)) {
        if let Ok(mut h) = self.checkpoints.lock()
            && let Some(r) = h.iter_mut().rev().find(|r| r.id == id)
        {
            let before = r.status;
            f(r);
            let ended = match r.status {
                SnapshotStatus::Completed => Some(0),
                SnapshotStatus::Failed => Some(1),
                SnapshotStatus::InProgress => None,
            };
            if let Some(i) = ended.filter(|_| before == SnapshotStatus::InProgress) {
                self.ended[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Checkpoints and savepoints that ended so, since the process started
    /// (`Completed` or `Failed`; the history forgets, this does not).
    pub fn checkpoints_ended(&self, status: SnapshotStatus) -> u64 {
        match status {
            SnapshotStatus::Completed => self.ended[0].load(Ordering::Relaxed),
            SnapshotStatus::Failed => self.ended[1].load(Ordering::Relaxed),
            SnapshotStatus::InProgress => 0,
        }
    }

    /// The checkpoint history, newest last.
    pub fn checkpoints(&self) -> Vec<CheckpointRecord> {
        self.checkpoints.lock().map(|h| h.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn last_completed_checkpoint(&self) -> Option<CheckpointRecord> {
        self.checkpoints
            .lock()
            .ok()
            .and_then(|h| h.iter().rev().find(|r| r.status == SnapshotStatus::Completed).cloned())
    }

    /// Savepoints may go only to `dirs` and below them (the job's savepoint and
    /// checkpoint directories, and `sluice.savepoint.allowed-directories`).
    pub fn restrict_savepoints_to(&self, dirs: Vec<String>) {
        if let Ok(mut d) = self.savepoint_dirs.lock() {
            *d = Some(dirs);
        }
    }

    /// Whether a savepoint may be written to `target`; the error says where it may go.
    pub fn savepoint_target_allowed(&self, target: &str) -> Result<(), String> {
        match self.savepoint_dirs.lock().ok().and_then(|d| d.clone()) {
            Some(dirs) => sluice_api::layout::target_allowed(target, &dirs)
                .map_err(|e| format!("job `{}`: targetDirectory {e}", self.job_id)),
            None => Ok(()),
        }
    }

    /// Queues a savepoint. A known `trigger_id` returns the same savepoint
    /// (idempotent); the same id with different parameters is an error.
    pub fn request_savepoint(
        &self,
        trigger_id: Option<String>,
        target_directory: Option<String>,
        stop: bool,
        drain: bool,
    ) -> Result<String, String> {
        let mut sp = self.savepoints.lock().map_err(|_| "internal error: savepoint state poisoned".to_string())?;
        if let Some(id) = &trigger_id
            && let Some(old) = sp.requests.get(id)
        {
            if old.target_directory != target_directory || old.stop != stop || old.drain != drain {
                return Err(format!("triggerId '{id}' was already used for a savepoint with other parameters"));
            }
            return Ok(id.clone());
        }
        if let Some(t) = &target_directory {
            self.savepoint_target_allowed(t)?;
        }
        if self.status().is_terminal() || self.status() == JobStatus::Standby {
            return Err(format!("job `{}` is {}; it cannot take a savepoint", self.job_id, self.status()));
        }
        if sp.queue.len() >= MAX_QUEUED_SAVEPOINTS {
            return Err(format!(
                "job `{}` has {} savepoint requests waiting already; retry once they are done",
                self.job_id,
                sp.queue.len()
            ));
        }
        sp.counter += 1;
        let id = trigger_id.unwrap_or_else(|| {
            let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            format!("sp-{}-{:x}", sp.counter, (nanos as u64) & 0xffff_ffff)
        });
        let req = SavepointRequest { trigger_id: id.clone(), target_directory, stop, drain };
        sp.requests.insert(id.clone(), req.clone());
        sp.status.insert(id.clone(), SavepointStatus::in_progress());
        sp.order.push_back(id.clone());
        sp.queue.push_back(req);
        forget_oldest(&mut sp);
        Ok(id)
    }

    pub fn next_savepoint_request(&self) -> Option<SavepointRequest> {
        self.savepoints.lock().ok().and_then(|mut s| s.queue.pop_front())
    }

    pub fn set_savepoint(&self, trigger_id: &str, status: SavepointStatus) {
        if let Ok(mut s) = self.savepoints.lock() {
            s.status.insert(trigger_id.to_string(), status);
        }
    }

    pub fn savepoint(&self, trigger_id: &str) -> Option<SavepointStatus> {
        self.savepoints.lock().ok().and_then(|s| s.status.get(trigger_id).cloned())
    }

    /// A standby coordinator reports its readiness; `None` once it is activated.
    pub fn set_standby(&self, s: Option<Standby>) {
        if let Ok(mut g) = self.standby.lock() {
            *g = s;
        }
    }

    pub fn standby(&self) -> Option<Standby> {
        self.standby.lock().ok().and_then(|s| s.clone())
    }

    /// `POST /v1/job/activate`: accepted only while the standby is ready. Idempotent:
    /// the same request again while it is being taken up is accepted again.
    pub fn request_activation(&self, restore: Option<String>, id: Option<String>) -> Result<(), String> {
        let mut pending = self.activate.lock().map_err(|_| "internal error: activation state poisoned".to_string())?;
        let request = ActivationRequest { restore, id };
        if pending.as_ref() == Some(&request) {
            return Ok(());
        }
        if let Some(other) = pending.as_ref() {
            let other = other.restore.as_deref().unwrap_or("empty state");
            return Err(format!("job `{}` is being activated from {other} already", self.job_id));
        }
        // The same id as the activation the job runs from: already done.
        if request.id.is_some() && self.activation().is_some_and(|a| a.id == request.id && a.restore == request.restore)
        {
            return Ok(());
        }
        match self.standby() {
            Some(s) if s.ready => {
                *pending = Some(request);
                Ok(())
            }
            Some(s) => Err(format!("job `{}` is not ready to be activated: {}", self.job_id, s.message)),
            None => Err(format!(
                "job `{}` is {} and not in standby; only a coordinator started with --standby can be activated, between runs",
                self.job_id,
                self.status()
            )),
        }
    }

    /// The activation requested, if any, taken by the coordinator.
    pub fn take_activation(&self) -> Option<ActivationRequest> {
        self.activate.lock().ok().and_then(|mut a| a.take())
    }

    pub fn set_activation(&self, a: Activation) {
        if let Ok(mut g) = self.activation.lock() {
            *g = Some(a);
        }
    }

    pub fn update_activation(&self, f: impl FnOnce(&mut Activation)) {
        if let Ok(mut g) = self.activation.lock()
            && let Some(a) = g.as_mut()
        {
            f(a);
        }
    }

    pub fn activation(&self) -> Option<Activation> {
        self.activation.lock().ok().and_then(|a| a.clone())
    }

    pub fn set_run_identity(&self, r: RunIdentity) {
        if let Ok(mut g) = self.run_identity.lock() {
            *g = Some(r);
        }
    }

    pub fn run_identity(&self) -> Option<RunIdentity> {
        self.run_identity.lock().ok().and_then(|r| r.clone())
    }

    /// Before a standby coordinator's next run: the previous run's ending, failure,
    /// restarts and cancel requests are cleared (its checkpoint history stays).
    pub fn reset_for_run(&self) {
        self.cancel.store(false, Ordering::SeqCst);
        self.user_cancel.store(false, Ordering::SeqCst);
        self.restarts.store(0, Ordering::SeqCst);
        if let Ok(mut e) = self.error.lock() {
            *e = None;
        }
        if let Ok(mut e) = self.end_time.lock() {
            *e = None;
        }
        if let Ok(mut g) = self.status.lock() {
            *g = JobStatus::Created;
        }
        self.notify(JobStatus::Created);
        if let Ok(mut r) = self.run_identity.lock() {
            *r = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Arc<JobState> {
        let g = JobGraph {
            vertices: vec![],
            edges: vec![],
            max_parallelism: 128,
            local_time_zone: "UTC".into(),
            data_policy: None,
            state_backend: Default::default(),
        };
        JobState::new("j", "j.sql", &g)
    }

    #[test]
    fn savepoint_trigger_ids_are_idempotent() {
        let j = job();
        let a = j.request_savepoint(Some("up-1".into()), Some("/sp".into()), true, false).unwrap();
        let b = j.request_savepoint(Some("up-1".into()), Some("/sp".into()), true, false).unwrap();
        assert_eq!(a, b);
        assert_eq!(j.next_savepoint_request().map(|r| r.trigger_id), Some("up-1".into()));
        assert_eq!(j.next_savepoint_request(), None, "the repeated call queued a second savepoint");
        let e = j.request_savepoint(Some("up-1".into()), Some("/other".into()), true, false).unwrap_err();
        assert!(e.contains("other parameters"), "{e}");
        let generated = j.request_savepoint(None, None, false, false).unwrap();
        assert_ne!(generated, "up-1");
        assert_eq!(j.savepoint(&generated), Some(SavepointStatus::in_progress()));
        j.set_status(JobStatus::Canceled);
        assert_eq!(j.savepoint(&generated).unwrap().status, SnapshotStatus::Failed);
    }

    #[test]
    fn activation_is_accepted_only_by_a_ready_standby_and_is_idempotent_per_request() {
        let j = job();
        let e = j.request_activation(Some("s3://b/sp".into()), Some("a-1".into())).unwrap_err();
        assert!(e.contains("not in standby"), "{e}");
        let waiting =
            Standby { ready: false, preloaded: None, preloaded_bytes: 0, message: "waiting for workers".into() };
        j.set_standby(Some(waiting.clone()));
        let e = j.request_activation(Some("s3://b/sp".into()), Some("a-1".into())).unwrap_err();
        assert!(e.contains("not ready to be activated: waiting for workers"), "{e}");
        j.set_standby(Some(Standby { ready: true, ..waiting }));
        j.request_activation(Some("s3://b/sp".into()), Some("a-1".into())).unwrap();
        j.request_activation(Some("s3://b/sp".into()), Some("a-1".into())).unwrap();
        let e = j.request_activation(Some("s3://b/other".into()), Some("a-2".into())).unwrap_err();
        assert!(e.contains("being activated from s3://b/sp already"), "{e}");
        let taken = j.take_activation().unwrap();
        assert_eq!(taken, ActivationRequest { restore: Some("s3://b/sp".into()), id: Some("a-1".into()) });
        assert_eq!(j.take_activation(), None, "an activation is taken once");
        // The coordinator runs from it: the same request again is already done.
        j.set_standby(None);
        j.set_activation(Activation {
            restore: taken.restore,
            id: taken.id,
            restored_from: None,
            restore_bytes: 0,
            requested_at: String::new(),
            running_at: None,
        });
        j.request_activation(Some("s3://b/sp".into()), Some("a-1".into())).unwrap();
        assert!(j.request_activation(Some("s3://b/sp".into()), Some("a-3".into())).is_err());
    }

    #[test]
    fn savepoint_requests_and_their_history_are_bounded() {
        let j = job();
        for i in 0..MAX_QUEUED_SAVEPOINTS {
            j.request_savepoint(Some(format!("q{i}")), None, false, false).unwrap();
        }
        let e = j.request_savepoint(Some("one-too-many".into()), None, false, false).unwrap_err();
        assert!(e.contains("waiting already"), "{e}");
        while let Some(r) = j.next_savepoint_request() {
            j.set_savepoint(&r.trigger_id, SavepointStatus::completed("/sp"));
        }
        for i in 0..REMEMBERED_SAVEPOINTS + 50 {
            j.request_savepoint(Some(format!("t{i}")), None, false, false).unwrap();
            let r = j.next_savepoint_request().unwrap();
            j.set_savepoint(&r.trigger_id, SavepointStatus::completed("/sp"));
        }
        let sp = j.savepoints.lock().unwrap();
        assert_eq!(
            (sp.status.len(), sp.requests.len(), sp.order.len()),
            (REMEMBERED_SAVEPOINTS, REMEMBERED_SAVEPOINTS, REMEMBERED_SAVEPOINTS)
        );
        assert!(!sp.status.contains_key("q0") && sp.status.contains_key(&format!("t{}", REMEMBERED_SAVEPOINTS + 49)));
    }
}
