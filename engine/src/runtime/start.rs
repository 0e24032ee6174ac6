//! Where a run starts: it claims a generation of the job, decides from the
//! lineage where to start (see [`crate::checkpoint::lineage`], whose module
//! doc states the invariants), loads and verifies that snapshot, and records
//! it as the generation's root before anything can be committed.

use std::sync::Arc;
use std::time::Instant;

use sluice_storage::Storage;

use super::{JobState, JobStatus, Restore, RunOptions, restoring, sink_setups};
use crate::checkpoint::lineage::{self, Fence, GenerationView, Root, Start};
use crate::checkpoint::store::{self, Loaded, Want};
use crate::error::EngineError;
use crate::job::RunIdentity;
use crate::plan::JobGraph;

/// A generation claimed for this run, with what the job directory held.
pub struct Claimed {
    pub fence: Fence,
    pub previous: Vec<GenerationView>,
    pub fingerprint: String,
    /// A coordinator: a restart of its deployment recovers that deployment's
    /// lineage. `run` is a new run each time.
    pub restarted: bool,
}

impl Claimed {
    /// Checks the storage and claims the next generation under `job_dir`.
    pub fn claim(job_dir: &Storage, fingerprint: &str, restarted: bool) -> Result<Claimed, EngineError> {
        job_dir.check().map_err(|e| EngineError::Storage(format!("checkpoint storage is not usable: {e}")))?;
        let (fence, previous) = lineage::claim(job_dir, fingerprint)?;
        Ok(Claimed { fence, previous, fingerprint: fingerprint.to_string(), restarted })
    }
}

/// How a run begins: from this snapshot (or empty state), with checkpoint ids from `first_id`.
pub struct Begin {
    pub initial: Option<Loaded>,
    pub first_id: u64,
}

/// Decides where the run starts and loads it; `None` if the job had ended and
/// stays in that state. `keep` selects the state files this process keeps in
/// memory (every file is verified).
pub fn begin(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    claimed: Option<&Claimed>,
    keep: Want,
) -> Result<Option<Begin>, EngineError> {
    let ck = &opts.checkpoint;
    let job_dir = ck.job_dir.as_ref();
    let terminal = match job_dir {
        Some(d) => store::read_terminal(d)?,
        None => None,
    };
    let start = match (claimed, &opts.restore) {
        (Some(c), requested) => lineage::decide(requested, &c.fingerprint, c.restarted, &c.previous, terminal.as_ref()),
        (None, Restore::None) => Start::Empty,
        (None, Restore::Uri(u)) => Start::Snapshot(u.clone()),
        (None, Restore::Latest) => {
            return Err(EngineError::Config("--restore latest needs a checkpoint directory (--checkpoint-dir)".into()));
        }
    };
    let since = Instant::now();
    let initial = match start {
        Start::Empty => None,
        // A snapshot named explicitly (a savepoint upgrade, an activation) has nothing to
        // fall back to: files this process does not keep are verified by the workers
        // that load them, before anything runs, instead of being read twice.
        Start::Snapshot(uri) => Some(load_kept(&uri, opts, keep)?),
        Start::NewestOf { generation, fallback } => {
            let newest = match job_dir {
                Some(d) => store::load_latest_of(d, generation, keep)?,
                None => None,
            };
            match (newest, fallback) {
                (Some(l), _) => Some(l),
                (None, Some(uri)) => Some(load(&uri, opts, keep)?),
                (None, None) => {
                    crate::say!(
                        "job `{}`: no complete checkpoint under {}; starting empty",
                        state.job_id,
                        job_dir.map(Storage::uri).unwrap_or_default()
                    );
                    None
                }
            }
        }
        Start::Terminal(t) => {
            crate::say!(
                "job `{}` already ended ({} at {}, {}); it stays terminal. Restore that snapshot explicitly with --restore, or use another --job-id.",
                state.job_id,
                t.reason,
                t.time,
                t.location
            );
            finish_sinks(graph, state, opts, &t.location);
            state.set_status(JobStatus::Finished);
            return Ok(None);
        }
    };
    if let Some(l) = &initial {
        restoring(state, l, since);
    }
    crate::failpoint::hit("restore.loaded");
    if let Some(c) = claimed {
        let (generation, started, resumed) = lineage::run_of(&c.fingerprint, c.restarted, &c.previous, &c.fence);
        let started_ms = chrono::DateTime::parse_from_rfc3339(&started)
            .map_or_else(|_| crate::job::now_ms(), |t| u64::try_from(t.timestamp_millis()).unwrap_or(0));
        state.set_run_identity(RunIdentity {
            key: format!("{}/{}/{generation}", state.job_id, c.fingerprint),
            started_ms,
            resumed,
        });
        let root = Root { restored: initial.as_ref().map(|l| l.location.clone()) };
        lineage::record_root(&c.fence, &root)?;
    }
    // The marker of an earlier run no longer applies to this one.
    if terminal.is_some()
        && let Some(dir) = job_dir
    {
        dir.delete(store::TERMINAL).map_err(|e| EngineError::Storage(e.to_string()))?;
        tracing::info!("job `{}`: a new run replaces the terminal marker of the previous one", state.job_id);
    }
    let mut first_id = initial.as_ref().map_or(0, |l| l.metadata.checkpoint_id) + 1;
    if let Some(dir) = job_dir {
        let newest = store::checkpoint_ids(dir).map_err(|e| EngineError::Storage(e.to_string()))?.first().copied();
        first_id = first_id.max(newest.unwrap_or(0) + 1);
    }
    Ok(Some(Begin { initial, first_id }))
}

/// What a standby coordinator would start from if it were activated with
/// `requested` now, read without claiming anything: the snapshot, loaded,
/// verified and checked against the job as a restore checks it (`None` for
/// empty state). Only the unkeyed state is kept in memory.
pub fn check_standby(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    requested: &Restore,
    fingerprint: &str,
) -> Result<Option<Loaded>, EngineError> {
    let Some(job_dir) = opts.checkpoint.job_dir.as_ref() else {
        return Err(EngineError::Config("--standby needs checkpoint storage (--checkpoint-dir)".into()));
    };
    let previous = lineage::read(job_dir)?;
    let terminal = store::read_terminal(job_dir)?;
    let keep = &store::holds_unkeyed;
    let loaded = match lineage::decide(requested, fingerprint, false, &previous, terminal.as_ref()) {
        Start::Empty => None,
        Start::Snapshot(uri) => Some(load(&uri, opts, keep)?),
        Start::Terminal(t) => Some(load(&t.location, opts, keep)?),
        Start::NewestOf { generation, fallback } => match (store::load_latest_of(job_dir, generation, keep)?, fallback)
        {
            (Some(l), _) => Some(l),
            (None, Some(uri)) => Some(load(&uri, opts, keep)?),
            (None, None) => None,
        },
    };
    if let Some(l) = &loaded {
        let metas = crate::operators::factory::vertex_metas(graph, state)?;
        crate::checkpoint::restore::check(l, &metas, graph.max_parallelism, opts.allow_non_restored_state)?;
    }
    Ok(loaded)
}

/// Loads a snapshot directory (or its `_metadata`), reading and verifying only the
/// files that `keep` selects.
fn load_kept(uri: &str, opts: &RunOptions, keep: Want) -> Result<Loaded, EngineError> {
    let dir = Storage::open(store::snapshot_root(uri), &opts.checkpoint.s3)
        .map_err(|e| EngineError::Restore { location: uri.to_string(), message: e.to_string() })?;
    store::load_only(&dir, keep).map_err(|e| EngineError::Restore { location: dir.uri(), message: e.to_string() })
}

/// `l` again, with the files that [`Loaded::release_files`] let go: a
/// restarted attempt restores from the same snapshot.
pub fn reload(l: &Loaded, opts: &RunOptions, keep: Want) -> Result<Loaded, EngineError> {
    let mut again = load(&l.location, opts, keep)?;
    again.passed_over = l.passed_over.clone();
    Ok(again)
}

/// Loads and verifies a snapshot directory (or its `_metadata`).
fn load(uri: &str, opts: &RunOptions, keep: Want) -> Result<Loaded, EngineError> {
    let dir = Storage::open(store::snapshot_root(uri), &opts.checkpoint.s3)
        .map_err(|e| EngineError::Restore { location: uri.to_string(), message: e.to_string() })?;
    store::load_verified(&dir, keep).map_err(|e| EngineError::Restore { location: dir.uri(), message: e.to_string() })
}

/// A job that stays terminal still makes sure the output of its last
/// snapshot is committed: its coordinator may have died between writing the
/// terminal marker and the sinks' commits. Committing is idempotent.
fn finish_sinks(graph: &JobGraph, state: &Arc<JobState>, opts: &RunOptions, location: &str) {
    let finished = load(location, opts, &store::holds_unkeyed)
        .and_then(|l| sink_setups(graph, state, opts, Some(&l), true, &|_| true).map(|_| ()));
    if let Err(e) = finished {
        tracing::warn!("job `{}`: cannot make sure the output of {location} is committed: {e}", state.job_id);
    }
}

/// Records an error that ends the job before it runs, so that `/v1/job`
/// reports FAILED with the reason.
pub fn failed(state: &JobState, e: EngineError) -> EngineError {
    state.exceptions.record(&e.to_string(), false);
    state.fail(e.to_string());
    state.set_status(JobStatus::Failed);
    e
}
