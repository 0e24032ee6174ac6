//! Fencing and the lineage of a job's snapshots: which coordinator may
//! commit, and where a coordinator starts from.
//!
//! Every process that runs a job with a checkpoint directory first claims the
//! next *generation* under `<job-dir>/_generations/`, by creating
//! `_generations/<g>` with a conditional write (create-exclusive on files,
//! `If-None-Match: *` on S3). Of two coordinators starting together exactly
//! one gets each number. Before it commits anything, a generation records its
//! *root* (`_generations/<g>.root`): the snapshot it restored, or none.
//!
//! Invariants:
//! 1. A coordinator commits output for checkpoint `n` only after `chk-n/_metadata`
//!    is durable and, after that, no newer generation has been claimed
//!    ([`Fence::check`]). So if a zombie commits, its `_metadata` was written
//!    before the newer generation was claimed, and that generation, which
//!    lists checkpoints only after its claim, sees it.
//! 2. Recovery follows one lineage: the newest generation that recorded a root.
//!    It restores that generation's newest complete checkpoint, or else its
//!    root. Checkpoints of older generations, including a zombie's written
//!    after it was superseded, are never restored again, so a generation's
//!    commits always extend what it restored.
//! 3. A restarted coordinator of the same deployment (same job text and
//!    configuration, see `JobSource::fingerprint`) recovers only its own
//!    deployment's lineage, never a predecessor's snapshots; a terminal
//!    marker counts only if that lineage wrote it.
//! 4. Checkpoint directories are reserved (`chk-<n>/_owner`, create-exclusive)
//!    before a barrier is sent, so two generations never write into the same
//!    `chk-<n>`.
//!
//! The decision is the pure [`decide`]; [`claim`], [`record_root`] and the
//! storage reads around them are the thin shell.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sluice_storage::Storage;

use super::error::SnapshotError;
use super::store::Terminal;
use crate::job::rfc3339;
use crate::runtime::Restore;

pub use sluice_api::layout::{GENERATIONS, OWNER};
/// The single generation record of engines before `_generations/`.
const LEGACY_GENERATION: &str = "_generation";

/// A claimed generation: `_generations/<g>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    pub generation: u64,
    /// Identifies the deployment (job text and configuration).
    pub fingerprint: String,
    pub started: String,
}

/// Where a generation started from: `_generations/<g>.root`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Root {
    /// The snapshot directory it restored; `None` for empty state.
    pub restored: Option<String>,
}

/// A generation with its root, if it recorded one.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationView {
    pub record: Generation,
    pub root: Option<Root>,
}

/// Where a run starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    Empty,
    /// A snapshot directory (or its `_metadata`).
    Snapshot(String),
    /// The newest complete checkpoint that `generation` wrote (any generation
    /// if `None`: a job directory from before generations), else `fallback`.
    NewestOf {
        generation: Option<u64>,
        fallback: Option<String>,
    },
    /// The job ended: stay in that state (after making sure the output of its
    /// last snapshot is committed).
    Terminal(Terminal),
}

/// This coordinator's claim: checked before any commit.
#[derive(Debug, Clone)]
pub struct Fence {
    pub generation: u64,
    pub job_dir: Storage,
    /// When the generation was claimed, as its record says (RFC 3339).
    pub started: String,
}

impl Fence {
    /// `Ok(Some(why))` if a newer generation has been claimed; `Err` if that
    /// cannot be read (the checkpoint fails, the job goes on).
    pub fn check(&self) -> Result<Option<String>, SnapshotError> {
        let next = generation_key(self.generation + 1);
        match self.job_dir.get(&next) {
            Ok(bytes) => {
                let started = serde_json::from_slice::<Generation>(&bytes).map(|g| g.started).unwrap_or_default();
                Ok(Some(format!(
                    "this coordinator (generation {}) was superseded by generation {} started at {started}; it stops without committing",
                    self.generation,
                    self.generation + 1
                )))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(source) => {
                Err(SnapshotError::Access { context: format!("cannot read {}/{next}", self.job_dir.uri()), source })
            }
        }
    }

    /// Reserves `chk-<id>` for this generation; false if another generation has it.
    pub fn reserve(&self, id: u64) -> Result<bool, SnapshotError> {
        let key = format!("{}/{OWNER}", super::store::checkpoint_dir(id));
        let body = format!("{{\"generation\": {}}}\n", self.generation);
        Ok(self.job_dir.put_if_absent(&key, body.as_bytes())?)
    }
}

fn generation_key(g: u64) -> String {
    format!("{GENERATIONS}/{g}")
}

fn root_key(g: u64) -> String {
    format!("{GENERATIONS}/{g}.root")
}

/// Every generation of the job, oldest first, with their roots. A job
/// directory of an engine from before `_generations/` reads as one generation
/// 0 of its recorded deployment, whose checkpoints (generation 0) it recovers.
pub fn read(job_dir: &Storage) -> Result<Vec<GenerationView>, SnapshotError> {
    let found = read_generations(job_dir)?;
    if !found.is_empty() {
        return Ok(found);
    }
    match job_dir.get(LEGACY_GENERATION) {
        Ok(bytes) => {
            let legacy: Generation = serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Unreadable {
                uri: format!("{}/{LEGACY_GENERATION}", job_dir.uri()),
                what: "damaged record",
                source,
            })?;
            let record = Generation { generation: 0, ..legacy };
            Ok(vec![GenerationView { record, root: Some(Root { restored: None }) }])
        }
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

fn read_generations(job_dir: &Storage) -> Result<Vec<GenerationView>, SnapshotError> {
    let objects = job_dir.list(GENERATIONS)?;
    let mut by_gen: BTreeMap<u64, (Option<Generation>, Option<Root>)> = BTreeMap::new();
    for o in objects {
        let Some(name) = o.path.strip_prefix(&format!("{GENERATIONS}/")) else { continue };
        let (num, is_root) = match name.strip_suffix(".root") {
            Some(n) => (n, true),
            None => (name, false),
        };
        let Ok(g) = num.parse::<u64>() else { continue };
        let bytes = job_dir.get(&o.path)?;
        let damaged = |source| SnapshotError::Unreadable {
            uri: format!("{}/{}", job_dir.uri(), o.path),
            what: "damaged record",
            source,
        };
        let entry = by_gen.entry(g).or_default();
        if is_root {
            entry.1 = Some(serde_json::from_slice(&bytes).map_err(damaged)?);
        } else {
            entry.0 = Some(serde_json::from_slice(&bytes).map_err(damaged)?);
        }
    }
    Ok(by_gen.into_values().filter_map(|(record, root)| record.map(|record| GenerationView { record, root })).collect())
}

/// Claims the next generation; returns the fence and every earlier generation.
pub fn claim(job_dir: &Storage, fingerprint: &str) -> Result<(Fence, Vec<GenerationView>), SnapshotError> {
    for _ in 0..20 {
        let previous = read(job_dir)?;
        let generation = previous.last().map_or(0, |g| g.record.generation) + 1;
        if let Some(e) = crate::failpoint::hit_in("fence.before-claim", &job_dir.uri()) {
            return Err(SnapshotError::Injected(e));
        }
        let record =
            Generation { generation, fingerprint: fingerprint.to_string(), started: rfc3339(SystemTime::now()) };
        let bytes = serde_json::to_vec_pretty(&record).map_err(SnapshotError::Encode)?;
        let key = generation_key(generation);
        let claimed = job_dir.put_if_absent(&key, &bytes).map_err(|source| SnapshotError::Access {
            context: format!("cannot claim {}/{key}", job_dir.uri()),
            source,
        })?;
        if claimed {
            return Ok((Fence { generation, job_dir: job_dir.clone(), started: record.started }, previous));
        }
        // Another coordinator took this number first: read again and take the next.
    }
    Err(SnapshotError::Contended { job_dir: job_dir.uri() })
}

/// Records where generation `g` starts, before it commits anything.
pub fn record_root(fence: &Fence, root: &Root) -> Result<(), SnapshotError> {
    let bytes = serde_json::to_vec_pretty(root).map_err(SnapshotError::Encode)?;
    let key = root_key(fence.generation);
    fence.job_dir.put(&key, &bytes).map_err(|source| SnapshotError::Access {
        context: format!("cannot write {}/{key}", fence.job_dir.uri()),
        source,
    })
}

/// Whether this deployment owns the job now: the newest claimed generation is
/// its own. A standby coordinator (`cluster::coordinator::standby`) that finds
/// this at start was activated before and restarted, so it resumes at once
/// instead of waiting to be activated again.
pub fn is_active(previous: &[GenerationView], fingerprint: &str) -> bool {
    previous.last().is_some_and(|g| g.record.fingerprint == fingerprint)
}

/// Where a run starts (see the module's invariants).
///
/// - `restarted`: this process is a coordinator restarted for its deployment
///   (a pod restart), so it recovers its deployment's lineage if it has one;
///   otherwise the run starts as `requested` says.
/// - `previous`: the earlier generations, oldest first; empty for a job
///   directory from before generations (then `latest` means the newest
///   checkpoint of any generation).
pub fn decide(
    requested: &Restore,
    fingerprint: &str,
    restarted: bool,
    previous: &[GenerationView],
    terminal: Option<&Terminal>,
) -> Start {
    let lineage_of = |g: &GenerationView| g.root.as_ref().map(|r| (g.record.generation, r.restored.clone()));
    if restarted {
        // This deployment's own generations: the newest run of this fingerprint.
        let own = previous.iter().rev().take_while(|g| g.record.fingerprint == fingerprint);
        if let Some((generation, root)) = own.filter_map(lineage_of).next() {
            return match terminal {
                Some(t) if t.generation >= generation => Start::Terminal(t.clone()),
                _ => Start::NewestOf { generation: Some(generation), fallback: root },
            };
        }
    }
    match requested {
        Restore::None => Start::Empty,
        Restore::Uri(u) => Start::Snapshot(u.clone()),
        Restore::Latest => {
            let lineage = previous.iter().rev().find_map(lineage_of);
            let ended = terminal.filter(|t| lineage.as_ref().is_none_or(|(g, _)| t.generation >= *g));
            match (ended, lineage) {
                // A job stopped with a savepoint continues from it.
                (Some(t), _) if t.reason == "STOPPED" => Start::Snapshot(t.location.clone()),
                (Some(t), _) => Start::Terminal(t.clone()),
                (None, Some((generation, root))) => Start::NewestOf { generation: Some(generation), fallback: root },
                (None, None) => Start::NewestOf { generation: None, fallback: None },
            }
        }
    }
}

/// The run a coordinator that claimed `own` runs: the generation that started
/// it, when (RFC 3339, as its record says), and whether this coordinator resumes it. A coordinator restarted for its deployment continues
/// the run of its deployment's own consecutive generations if one of them
/// recorded a root (what [`decide`] recovers); anything else starts a new run
/// at `own`.
pub fn run_of(fingerprint: &str, restarted: bool, previous: &[GenerationView], own: &Fence) -> (u64, String, bool) {
    if restarted {
        let streak: Vec<&GenerationView> =
            previous.iter().rev().take_while(|g| g.record.fingerprint == fingerprint).collect();
        if streak.iter().any(|g| g.root.is_some())
            && let Some(first) = streak.last()
        {
            return (first.record.generation, first.record.started.clone(), true);
        }
    }
    (own.generation, own.started.clone(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(generation: u64, fingerprint: &str, root: Option<Option<&str>>) -> GenerationView {
        GenerationView {
            record: Generation { generation, fingerprint: fingerprint.into(), started: String::new() },
            root: root.map(|r| Root { restored: r.map(str::to_string) }),
        }
    }

    fn terminal(generation: u64, reason: &str, location: &str) -> Terminal {
        Terminal { reason: reason.into(), location: location.into(), time: String::new(), generation }
    }

    const SP: &str = "s3://b/sp/savepoint-up-1";

    #[test]
    fn only_the_deployment_of_the_newest_generation_is_active() {
        // Blue ran as 1 and 2, green was activated as 3.
        let history = [g(1, "blue", Some(None)), g(2, "blue", Some(Some("chk-4"))), g(3, "green", None)];
        assert!(is_active(&history, "green"), "green was activated, even before it recorded its root");
        assert!(!is_active(&history, "blue"), "blue was superseded: a restarted blue waits in standby");
        assert!(!is_active(&[], "blue"), "a job that never ran has no active deployment");
        // Rolled back: blue activated again as 4.
        let history = [g(2, "blue", Some(None)), g(3, "green", Some(Some(SP))), g(4, "blue", Some(Some("chk-9")))];
        assert!(is_active(&history, "blue") && !is_active(&history, "green"));
    }

    #[test]
    fn a_restarted_coordinator_continues_the_run_of_its_own_generations() {
        let history = [g(1, "v1", Some(None)), g(2, "v2", Some(None)), g(3, "v2", None), g(4, "v2", Some(None))];
        let own = |generation| Fence { generation, job_dir: Storage::in_memory(), started: "now".into() };
        assert_eq!(run_of("v2", true, &history, &own(5)), (2, String::new(), true));
        // `run`, a new deployment, or a deployment whose coordinators never started: a new run.
        assert_eq!(run_of("v2", false, &history, &own(5)), (5, "now".into(), false));
        assert_eq!(run_of("v3", true, &history, &own(5)), (5, "now".into(), false));
        let never_ran = [g(1, "v1", Some(None)), g(2, "v2", None)];
        assert_eq!(run_of("v2", true, &never_ran, &own(3)), (3, "now".into(), false));
    }

    #[test]
    fn a_restarted_coordinator_recovers_its_own_lineage_only() {
        // Deployment A ran as generations 1 and 2 and stopped with savepoint SP
        // (generation 2 wrote the marker); deployment B started from SP as generation 3.
        let history = [g(1, "A", Some(None)), g(2, "A", Some(Some("chk-4"))), g(3, "B", Some(Some(SP)))];
        let stopped = terminal(2, "STOPPED", SP);
        // B's coordinator restarts before B's first checkpoint: B's newest
        // checkpoint, else SP, never A's checkpoints, and A's marker is stale
        // (finding 1 (a) and (b)).
        let want = Start::NewestOf { generation: Some(3), fallback: Some(SP.into()) };
        assert_eq!(decide(&Restore::Uri(SP.into()), "B", true, &history, Some(&stopped)), want);
        assert_eq!(decide(&Restore::Uri(SP.into()), "B", true, &history, None), want);
        // B's first coordinator died before recording its root: B starts as asked.
        let history = [g(1, "A", Some(None)), g(2, "A", Some(Some("chk-4"))), g(3, "B", None)];
        assert_eq!(decide(&Restore::Uri(SP.into()), "B", true, &history, Some(&stopped)), Start::Snapshot(SP.into()));
        // Generations without a root are skipped within the deployment too.
        let history = [g(1, "B", Some(None)), g(2, "B", None)];
        assert_eq!(
            decide(&Restore::None, "B", true, &history, None),
            Start::NewestOf { generation: Some(1), fallback: None }
        );
    }

    #[test]
    fn a_restarted_coordinator_of_an_ended_deployment_stays_terminal() {
        let history = [g(1, "A", Some(None)), g(2, "A", Some(Some("chk-3")))];
        let finished = terminal(2, "FINISHED", "chk-9");
        assert_eq!(decide(&Restore::None, "A", true, &history, Some(&finished)), Start::Terminal(finished.clone()));
        // A generation that stayed terminal records no root: the next restart stays terminal too.
        let history = [g(1, "A", Some(None)), g(2, "A", Some(Some("chk-3"))), g(3, "A", None)];
        assert_eq!(decide(&Restore::None, "A", true, &history, Some(&finished)), Start::Terminal(finished));
    }

    #[test]
    fn a_new_deployment_starts_as_requested() {
        let history = [g(1, "A", Some(None))];
        let stopped = terminal(1, "STOPPED", SP);
        assert_eq!(decide(&Restore::None, "B", true, &history, Some(&stopped)), Start::Empty);
        assert_eq!(decide(&Restore::Uri("x".into()), "B", false, &history, None), Start::Snapshot("x".into()));
        // `run` is never a restart, even with the same command line.
        assert_eq!(decide(&Restore::None, "A", false, &history, None), Start::Empty);
    }

    #[test]
    fn latest_follows_the_newest_lineage_and_a_stop_savepoint() {
        // A zombie of generation 1 may have written checkpoints after generation 2
        // recorded its root: `latest` follows generation 2 only.
        let history = [g(1, "A", Some(None)), g(2, "A", Some(Some("chk-5"))), g(3, "A", None)];
        assert_eq!(
            decide(&Restore::Latest, "B", false, &history, None),
            Start::NewestOf { generation: Some(2), fallback: Some("chk-5".into()) }
        );
        // The lineage ended with a stop-with-savepoint: continue from it.
        let stopped = terminal(2, "STOPPED", SP);
        assert_eq!(decide(&Restore::Latest, "B", false, &history, Some(&stopped)), Start::Snapshot(SP.into()));
        // A finished job stays finished.
        let finished = terminal(2, "FINISHED", "chk-9");
        assert_eq!(decide(&Restore::Latest, "B", false, &history, Some(&finished)), Start::Terminal(finished));
        // A marker older than the lineage is stale.
        let old = terminal(1, "STOPPED", SP);
        assert_eq!(
            decide(&Restore::Latest, "B", false, &history, Some(&old)),
            Start::NewestOf { generation: Some(2), fallback: Some("chk-5".into()) }
        );
        // A job directory from before generations.
        assert_eq!(
            decide(&Restore::Latest, "B", false, &[], None),
            Start::NewestOf { generation: None, fallback: None }
        );
        assert_eq!(decide(&Restore::Latest, "B", false, &[], Some(&old)), Start::Snapshot(SP.into()));
    }

    #[test]
    fn two_coordinators_starting_together_get_different_generations() {
        let dir = Storage::in_memory().child("race");
        let gate = tempfile::tempdir().unwrap();
        let pause = format!("1*pause({})", gate.path().display());
        crate::failpoint::set(&format!("fence.before-claim@{}", dir.uri()), &pause);
        // The first stops between reading the generations and claiming the next one.
        let d = dir.clone();
        let first = std::thread::spawn(move || claim(&d, "a").unwrap().0.generation);
        while !gate.path().join("fence.before-claim.reached").exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let second = claim(&dir, "b").unwrap().0.generation;
        std::fs::write(gate.path().join("fence.before-claim.go"), b"").unwrap();
        let first = first.join().unwrap();
        let mut both = [first, second];
        both.sort_unstable();
        assert_eq!(both, [1, 2], "both coordinators took the same generation");
    }

    #[test]
    fn generations_are_claimed_atomically_and_newer_ones_fence_older_ones() {
        let dir = Storage::in_memory().child("job");
        let (first, previous) = claim(&dir, "a").unwrap();
        assert_eq!((first.generation, previous.len()), (1, 0));
        assert_eq!(first.check().unwrap(), None);
        let (second, previous) = claim(&dir, "a").unwrap();
        assert_eq!(second.generation, 2);
        assert_eq!(previous[0].record.fingerprint, "a");
        let why = first.check().unwrap().unwrap();
        assert!(why.contains("superseded by generation 2"), "{why}");
        assert_eq!(second.check().unwrap(), None);
        record_root(&second, &Root { restored: Some("x".into()) }).unwrap();
        let all = read(&dir).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].root, Some(Root { restored: Some("x".into()) }));
        // Checkpoint directories belong to one generation.
        assert!(second.reserve(7).unwrap());
        assert!(!first.reserve(7).unwrap());
        // A damaged record is an error, not a silent restart from scratch.
        dir.put("_generations/3", b"{").unwrap();
        assert!(read(&dir).unwrap_err().to_string().contains("damaged"));
    }

    #[test]
    fn a_job_directory_from_before_generations_is_one_generation_zero() {
        let dir = Storage::in_memory().child("old");
        dir.put(LEGACY_GENERATION, br#"{"generation": 4, "fingerprint": "a", "started": "t"}"#).unwrap();
        let (fence, previous) = claim(&dir, "a").unwrap();
        assert_eq!((fence.generation, previous.len(), previous[0].record.generation), (1, 1, 0));
        // A restarted coordinator of that deployment recovers its checkpoints (generation 0).
        assert_eq!(
            decide(&Restore::None, "a", true, &previous, None),
            Start::NewestOf { generation: Some(0), fallback: None }
        );
    }
}
