//! The attempts of a job on the registered workers.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::JobSource;
use super::rpc::{Event, Rpc};
use crate::checkpoint::coordinator::{Cluster, Coordinator, Ending};
use crate::checkpoint::store::Loaded;
use crate::checkpoint::{Barrier, CoordMsg, SubtaskSnapshot};
use crate::cluster::{BarrierWire, DeploySpec, MetricSample, ToCoordinator, ToWorker};
use crate::error::EngineError;
use crate::plan::JobGraph;
use crate::runtime::{
    AttemptEnd, AttemptError, Attempts, JobState, JobStatus, RunOptions, attempt_result, prepare_attempt,
};

/// Slot `k` holds subtask `k` of every vertex; slots are dealt to workers in
/// turn, so each worker gets an equal share. Returns, per vertex, the worker
/// of each subtask; `None` if the workers have too few slots.
pub fn place(parallelism: &[usize], workers: &[(usize, usize)]) -> Option<Vec<Vec<usize>>> {
    let needed = parallelism.iter().copied().max().unwrap_or(0);
    let mut free: Vec<(usize, usize)> = workers.to_vec();
    let mut slot_worker = Vec::with_capacity(needed);
    while slot_worker.len() < needed {
        let mut placed = false;
        for (w, f) in free.iter_mut() {
            if slot_worker.len() < needed && *f > 0 {
                *f -= 1;
                slot_worker.push(*w);
                placed = true;
            }
        }
        if !placed {
            return None;
        }
    }
    Some(parallelism.iter().map(|p| slot_worker[..*p].to_vec()).collect())
}

/// The coordinator's view of the workers running one attempt.
struct Remote<'a> {
    rpc: &'a Rpc,
    attempt: u64,
    workers: Vec<usize>,
    sinks: Vec<(usize, (usize, usize))>,
}

impl Cluster for Remote<'_> {
    fn trigger(&self, barrier: &Barrier) {
        let wire = BarrierWire::of(barrier);
        for w in &self.workers {
            self.rpc.send(*w, &ToWorker::Trigger { attempt: self.attempt, barrier: wire.clone() });
        }
    }

    fn resume(&self) {
        for w in &self.workers {
            self.rpc.send(*w, &ToWorker::Resume { attempt: self.attempt });
        }
    }

    fn commit(&self, id: u64) -> HashSet<(usize, usize)> {
        let reached: HashSet<usize> = self
            .workers
            .iter()
            .copied()
            .filter(|w| self.rpc.send(*w, &ToWorker::Commit { attempt: self.attempt, id }))
            .collect();
        self.sinks.iter().filter(|(w, _)| reached.contains(w)).map(|(_, s)| *s).collect()
    }
}

/// Runs attempts on the registered workers.
pub struct RemoteAttempts {
    pub rpc: Rpc,
    pub source: JobSource,
    pub generation: u64,
    attempt: u64,
}

impl RemoteAttempts {
    pub fn new(rpc: Rpc, source: JobSource, generation: u64) -> RemoteAttempts {
        RemoteAttempts { rpc, source, generation, attempt: 0 }
    }

    /// Waits until the live workers have `needed` slots; false if the job was canceled first.
    fn await_slots(&self, state: &JobState, needed: usize) -> bool {
        let started = Instant::now();
        let mut last_log: Option<Instant> = None;
        loop {
            self.rpc.expire();
            let alive = self.rpc.alive();
            let have: usize = alive.iter().map(|a| a.1).sum();
            if have >= needed {
                return true;
            }
            if state.cancel.load(Ordering::SeqCst) {
                return false;
            }
            if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                eprintln!(
                    "sluice: job `{}` waiting for workers: {have} of {needed} slots ({} workers registered, {} s)",
                    state.job_id,
                    alive.len(),
                    started.elapsed().as_secs()
                );
                last_log = Some(Instant::now());
            }
            // Registrations and losses only matter through `alive`; stale
            // messages of earlier attempts are dropped.
            let _ = self.rpc.events.recv_timeout(Duration::from_millis(100));
        }
    }
}

impl Attempts for RemoteAttempts {
    /// Workers restore keyed state; the coordinator needs only the manifest
    /// and the sinks' sections.
    fn restores_keyed_state(&self) -> bool {
        false
    }

    fn run(
        &mut self,
        graph: &JobGraph,
        state: &Arc<JobState>,
        opts: &RunOptions,
        restore: Option<&Loaded>,
        coord: &mut Coordinator,
    ) -> Result<AttemptEnd, AttemptError> {
        let parallelism: Vec<usize> = graph.vertices.iter().map(|v| v.parallelism).collect();
        let needed = parallelism.iter().copied().max().unwrap_or(1);
        if !self.await_slots(state, needed) {
            return attempt_result(state, None);
        }
        let (metas, _) = prepare_attempt(graph, state, opts, restore).map_err(AttemptError::Setup)?;
        coord.set_vertices(metas);
        let alive = self.rpc.alive();
        let slots: Vec<(usize, usize)> = alive.iter().map(|a| (a.0, a.1)).collect();
        let placement = place(&parallelism, &slots)
            .ok_or_else(|| AttemptError::Run(EngineError::Cluster("the workers left before deployment".into())))?;
        self.attempt += 1;
        let attempt = self.attempt;
        let mut addrs = vec![String::new(); alive.iter().map(|a| a.0 + 1).max().unwrap_or(0)];
        for a in &alive {
            addrs[a.0] = a.2.clone();
        }
        let mut remaining: BTreeMap<usize, usize> = BTreeMap::new();
        for p in &placement {
            for w in p {
                *remaining.entry(*w).or_default() += 1;
            }
        }
        let total: usize = remaining.values().sum();
        let sinks = graph
            .vertices
            .iter()
            .filter(|v| matches!(v.ops.last(), Some(crate::plan::OpSpec::Sink { .. })))
            .flat_map(|v| (0..v.parallelism).map(move |i| (v.id, i)))
            .map(|(v, i)| (placement[v][i], (v, i)))
            .collect();
        let remote = Remote { rpc: &self.rpc, attempt, workers: remaining.keys().copied().collect(), sinks };
        let layout = remaining.iter().map(|(w, n)| format!("{} ({n})", self.rpc.name(*w))).collect::<Vec<_>>();
        eprintln!("sluice: job `{}` attempt {attempt}: {total} subtasks on {}", state.job_id, layout.join(", "));
        for w in remaining.keys() {
            let spec = DeploySpec {
                generation: self.generation,
                attempt,
                job_id: self.source.job_id.clone(),
                file: self.source.file.clone(),
                job_text: self.source.text.clone(),
                config: self.source.config.clone(),
                restore: restore.map(|l| l.location.clone()),
                workers: addrs.clone(),
                placement: placement.clone(),
                you: *w,
            };
            if !self.rpc.send(*w, &ToWorker::Deploy(Box::new(spec))) {
                state.fail(format!("worker {} was lost during deployment", self.rpc.name(*w)));
            }
        }
        coord.reset_attempt(&remote);
        let mut deployed: HashSet<usize> = HashSet::new();
        let mut last_samples: BTreeMap<(usize, usize), MetricSample> = BTreeMap::new();
        let mut ending: Option<Ending> = None;
        let mut setup_failure: Option<String> = None;
        let mut cancel_sent: Option<Instant> = None;
        // Subtasks still running, per worker.
        while remaining.values().any(|n| *n > 0) {
            let event = match self.rpc.events.recv_timeout(Duration::from_millis(10)) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    state.fail("the RPC server stopped".into());
                    break;
                }
            };
            match event {
                Some(Event::Msg(w, m)) => {
                    let msg = match m {
                        ToCoordinator::Deployed { attempt: a } if a == attempt => {
                            deployed.insert(w);
                            if deployed.len() == remaining.len() && !state.cancel.load(Ordering::SeqCst) {
                                state.set_status(JobStatus::Running);
                            }
                            None
                        }
                        ToCoordinator::Failed { attempt: a, message } if a == attempt => {
                            let why = format!("worker {}: {message}", self.rpc.name(w));
                            if !deployed.contains(&w) {
                                // Its subtasks never started.
                                remaining.insert(w, 0);
                                setup_failure.get_or_insert(why.clone());
                            }
                            state.fail(why);
                            None
                        }
                        ToCoordinator::Ack { attempt: a, id, vertex, subtask, result, alignment_ms }
                            if a == attempt =>
                        {
                            Some(CoordMsg::Ack { id, vertex, subtask, result, alignment_ms })
                        }
                        ToCoordinator::Finished { attempt: a, vertex, subtask, sections, last_checkpoint }
                            if a == attempt =>
                        {
                            Some(CoordMsg::Finished {
                                vertex,
                                subtask,
                                snapshot: SubtaskSnapshot { sections },
                                last_checkpoint,
                            })
                        }
                        ToCoordinator::Committed { attempt: a, id, vertex, subtask } if a == attempt => {
                            Some(CoordMsg::Committed { id, vertex, subtask })
                        }
                        ToCoordinator::Exited { attempt: a, .. } if a == attempt => {
                            if let Some(n) = remaining.get_mut(&w) {
                                *n = n.saturating_sub(1);
                            }
                            None
                        }
                        ToCoordinator::Metrics { attempt: a, samples } if a == attempt => {
                            for s in samples {
                                if let Some(m) =
                                    state.subtasks.iter().find(|m| m.vertex == s.vertex && m.subtask == s.subtask)
                                {
                                    s.apply(m, last_samples.get(&(s.vertex, s.subtask)));
                                }
                                last_samples.insert((s.vertex, s.subtask), s);
                            }
                            None
                        }
                        _ => None, // a message of an earlier attempt
                    };
                    if let Some(msg) = msg
                        && let Some(e) = coord.on_message(msg, &remote)
                    {
                        ending = Some(e);
                        // The job is complete: stop every subtask.
                        state.cancel.store(true, Ordering::SeqCst);
                    }
                }
                Some(Event::Lost(w, why)) => {
                    if remaining.get_mut(&w).map(std::mem::take).unwrap_or(0) > 0 {
                        state.fail(format!("worker {} was lost: {why}", self.rpc.name(w)));
                    } else {
                        eprintln!("sluice: worker {} left: {why}", self.rpc.name(w));
                    }
                }
                Some(Event::Registered) | None => {}
            }
            self.rpc.expire();
            if state.cancel.load(Ordering::SeqCst) {
                match cancel_sent {
                    None => {
                        for w in remaining.keys() {
                            self.rpc.send(*w, &ToWorker::Cancel { attempt });
                        }
                        cancel_sent = Some(Instant::now());
                    }
                    Some(t) if t.elapsed() > Duration::from_secs(30) => {
                        eprintln!(
                            "sluice: job `{}`: {} subtasks did not stop within 30 s of being canceled; going on without them",
                            state.job_id,
                            remaining.values().sum::<usize>()
                        );
                        break;
                    }
                    Some(_) => {}
                }
                // Workers that died after the cancel still count as stopped.
                let alive: HashSet<usize> = self.rpc.alive().into_iter().map(|a| a.0).collect();
                for (w, n) in remaining.iter_mut() {
                    if !alive.contains(w) {
                        *n = 0;
                    }
                }
            } else {
                coord.tick(&remote);
            }
        }
        coord.reset_attempt(&Remote { rpc: &self.rpc, attempt, workers: Vec::new(), sinks: Vec::new() });
        if let Some(why) = coord.fenced() {
            return Err(AttemptError::Fatal(EngineError::Fenced(why)));
        }
        if let Some(why) = setup_failure
            && ending.is_none()
        {
            return Err(AttemptError::Setup(EngineError::Cluster(why)));
        }
        attempt_result(state, ending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dealt_to_workers_in_turn() {
        // Two workers of two slots, parallelism 3: slots 0 and 2 on worker 0.
        assert_eq!(place(&[3, 2], &[(0, 2), (1, 2)]), Some(vec![vec![0, 1, 0], vec![0, 1]]));
        // Three workers of one slot each.
        assert_eq!(place(&[3], &[(4, 1), (7, 1), (9, 1)]), Some(vec![vec![4, 7, 9]]));
        // One worker with enough slots holds everything.
        assert_eq!(place(&[2, 1], &[(0, 4)]), Some(vec![vec![0, 0], vec![0]]));
        // Too few slots.
        assert_eq!(place(&[3], &[(0, 1), (1, 1)]), None);
    }
}
