//! `sluice-engine coordinator`: runs a job on registered workers.
//!
//! It runs the same loop as the local runner ([`execute_with`]): attempts,
//! the restart strategy, the checkpoint coordinator, savepoints, the REST
//! API. An attempt waits until the registered workers have enough slots,
//! places the subtasks, sends each worker its part, and relays checkpoint
//! traffic. A lost worker (its connection closed, or no heartbeat within
//! `heartbeat.timeout`) fails the attempt; the next one starts from the
//! newest complete checkpoint on the remaining and replacement workers.

mod attempt;
mod placement;
mod registry;
mod remote;
mod rpc;
pub mod standby;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::EngineError;
use crate::plan::JobGraph;
use crate::runtime::{Claimed, JobState, JobStatus, RunOptions, execute_with, start};

pub use placement::place;
pub use remote::RemoteAttempts;
pub use rpc::Rpc;

/// How the coordinator is started, beyond the job and its configuration.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    pub rpc_addr: String,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    /// Wait to be activated before each run (blue-green; see [`standby`]).
    pub standby: bool,
}

/// What workers need to build the job: they compile it themselves.
#[derive(Debug, Clone)]
pub struct JobSource {
    pub job_id: String,
    pub file: String,
    pub text: String,
    /// The merged configuration: the file, `--set` and the flags.
    pub config: BTreeMap<String, String>,
    /// `--deployment-id`: tells apart two deployments of the same text and
    /// configuration, such as the two colors of a blue-green cutover.
    pub deployment: Option<String>,
    /// `--deployment-name`: what sink commit logs record as the committer
    /// (with the generation); not part of the fingerprint. Empty when unnamed.
    pub name: String,
}

impl JobSource {
    /// Identifies this deployment of the job: its text and configuration.
    pub fn fingerprint(&self) -> String {
        let mut h = crc32fast::Hasher::new();
        h.update(self.text.as_bytes());
        for (k, v) in &self.config {
            h.update(&[0]);
            h.update(k.as_bytes());
            h.update(&[1]);
            h.update(v.as_bytes());
        }
        if let Some(d) = &self.deployment {
            h.update(&[2]);
            h.update(d.as_bytes());
        }
        format!("{:08x}-{}", h.finalize(), self.text.len())
    }
}

/// Runs a job as its coordinator until it ends (or, with `stay`, until
/// `shutdown`). `shutdown` (SIGTERM) cancels the job without committing and
/// without marking it terminal, so a new coordinator resumes it.
pub fn run(
    source: JobSource,
    graph: &JobGraph,
    mut opts: RunOptions,
    copts: &CoordinatorOptions,
    state: Arc<JobState>,
    stay: bool,
    shutdown: Arc<AtomicBool>,
) -> Result<(), EngineError> {
    // The generation is the one claimed (see `execute_with`).
    opts.checkpoint.committer.deployment = source.name.clone();
    if copts.standby {
        let rpc = match Rpc::start(copts, 0) {
            Ok(rpc) => rpc,
            Err(e) => {
                let e = start::failed(&state, e);
                stay_until(&state, true, &shutdown);
                return Err(e);
            }
        };
        crate::say!("job `{}` coordinator in standby, RPC on {}", source.job_id, rpc.addr);
        watch_shutdown(&state, &shutdown)?;
        let result = standby::run(source, graph, opts, rpc, state.clone(), shutdown.clone());
        stay_until(&state, true, &shutdown);
        return result;
    }
    // A coordinator is a restart of its deployment when the deployment ran
    // before (see `lineage::decide`); the first one starts as its flags say.
    let setup = || -> Result<(Option<Claimed>, Rpc), EngineError> {
        let claimed = match &opts.checkpoint.job_dir {
            Some(dir) => Some(Claimed::claim(dir, &source.fingerprint(), true)?),
            None => None,
        };
        let generation = claimed.as_ref().map_or(1, |c| c.fence.generation);
        let rpc = Rpc::start(copts, generation)?;
        crate::say!("job `{}` coordinator (generation {generation}) RPC on {}", source.job_id, rpc.addr);
        Ok((claimed, rpc))
    };
    let (claimed, rpc) = match setup() {
        Ok(x) => x,
        Err(e) => {
            let e = start::failed(&state, e);
            stay_until(&state, stay, &shutdown);
            return Err(e);
        }
    };
    let generation = claimed.as_ref().map_or(1, |c| c.fence.generation);
    watch_shutdown(&state, &shutdown)?;
    let mut attempts = RemoteAttempts::new(rpc, source, generation);
    let result = execute_with(graph, &state, &opts, &mut attempts, claimed);
    let by_signal = shutdown.load(Ordering::SeqCst);
    if !stay && !by_signal && state.status() == JobStatus::Finished {
        attempts.rpc.exit_all("the job finished");
    }
    stay_until(&state, stay, &shutdown);
    result
}

/// On SIGTERM, cancels the job without committing and without marking it
/// terminal, so that a new coordinator resumes it.
fn watch_shutdown(state: &Arc<JobState>, shutdown: &Arc<AtomicBool>) -> Result<(), EngineError> {
    let st = state.clone();
    let sd = shutdown.clone();
    std::thread::Builder::new()
        .name("shutdown-watch".into())
        .spawn(move || {
            while !sd.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            crate::say!(
                "coordinator stopping (SIGTERM): the job is canceled without committing; a new coordinator resumes it from its newest checkpoint"
            );
            st.request_cancel();
        })
        .map(|_| ())
        .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))
}

/// With `--on-finish stay`, keeps the process (and its REST API) up in the
/// job's final state until SIGTERM.
fn stay_until(state: &JobState, stay: bool, shutdown: &AtomicBool) {
    if !stay || shutdown.load(Ordering::SeqCst) {
        return;
    }
    match state.error() {
        Some(e) if state.status() == JobStatus::Failed => crate::say!(
            "job `{}` FAILED: {e}\nsluice: the coordinator stays up (--on-finish stay) until SIGTERM",
            state.job_id
        ),
        _ => crate::say!(
            "job `{}` is {:?}; the coordinator stays up (--on-finish stay) until SIGTERM",
            state.job_id,
            state.status()
        ),
    }
    while !shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_the_text_and_the_configuration() {
        let a = JobSource {
            job_id: "j".into(),
            file: "f".into(),
            text: "SELECT 1".into(),
            config: BTreeMap::new(),
            deployment: None,
            name: String::new(),
        };
        let mut b = a.clone();
        b.config.insert("parallelism.default".into(), "2".into());
        let mut c = a.clone();
        c.text = "SELECT 2".into();
        let mut green = a.clone();
        green.deployment = Some("7-green".into());
        assert_ne!(a.fingerprint(), green.fingerprint(), "two colors of one text are two deployments");
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
