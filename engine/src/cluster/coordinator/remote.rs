//! The attempts of a job on the registered workers: the driver of
//! [`RemoteAttempt`]. It waits for slots, places the subtasks ([`place`]),
//! and feeds the workers' events to the attempt's state machine, its frames
//! to the RPC endpoint and the workers' reports to the checkpoint coordinator.
//! It decides nothing itself: the protocol is in `attempt.rs`, which workers
//! are alive in `registry.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::JobSource;
use super::attempt::{Action, RemoteAttempt};
use super::placement::place;
use super::rpc::{Rpc, WorkerEvent};
use crate::checkpoint::Barrier;
use crate::checkpoint::coordinator::{CheckpointCoordinator, Cluster};
use crate::checkpoint::store::Loaded;
use crate::cluster::{BarrierWire, DeploySpec, ToWorker};
use crate::error::EngineError;
use crate::plan::JobGraph;
use crate::runtime::{AttemptEnd, AttemptError, Attempts, JobState, RunOptions, attempt_result, prepare_attempt};

/// The coordinator's view of the workers running one attempt.
struct Remote<'a> {
    rpc: &'a Rpc,
    attempt: u64,
    workers: Vec<usize>,
    sinks: Vec<(usize, (usize, usize))>,
}

impl Remote<'_> {
    /// Carries out the attempt's actions: sends its frames, and hands the
    /// workers' reports to the checkpoint coordinator.
    fn carry_out(&self, attempt: &mut RemoteAttempt, coord: &mut CheckpointCoordinator, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(w, msg) => {
                    if !self.rpc.send(w, &msg) {
                        attempt.on_undelivered(w, &msg);
                    }
                }
                Action::Checkpoint(msg) => {
                    if let Some(ending) = coord.on_message(msg, self) {
                        attempt.on_ending(ending);
                    }
                }
                Action::TickCheckpoints => coord.tick(self),
            }
        }
    }
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
            let have: usize = alive.iter().map(|w| w.slots).sum();
            if have >= needed {
                return true;
            }
            if state.cancel.load(Ordering::SeqCst) {
                return false;
            }
            if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                crate::say!(
                    "job `{}` waiting for workers: {have} of {needed} slots ({} workers registered, {} s)",
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

    /// The placement an attempt of `graph` would use on the live workers now,
    /// with their data addresses by worker index.
    fn placement(&self, graph: &JobGraph) -> Option<(Vec<Vec<usize>>, Vec<String>)> {
        let parallelism: Vec<usize> = graph.vertices.iter().map(|v| v.parallelism).collect();
        let alive = self.rpc.alive();
        let slots: Vec<(usize, usize)> = alive.iter().map(|w| (w.index, w.slots)).collect();
        let placement = place(&parallelism, &slots)?;
        let mut addrs = vec![String::new(); alive.iter().map(|w| w.index + 1).max().unwrap_or(0)];
        for w in &alive {
            addrs[w.index] = w.data_addr.clone();
        }
        Some((placement, addrs))
    }

    fn spec(&self, restore: Option<String>, placement: Vec<Vec<usize>>, workers: Vec<String>) -> DeploySpec {
        DeploySpec {
            generation: self.generation,
            attempt: self.attempt,
            job_id: self.source.job_id.clone(),
            file: self.source.file.clone(),
            job_text: self.source.text.clone(),
            config: self.source.config.clone(),
            restore,
            workers,
            placement,
            you: 0,
            deployment_name: self.source.name.clone(),
        }
    }

    /// Asks each live worker to read the state files it would restore from
    /// `location` if an attempt were deployed now (a standby's prefetch);
    /// returns the workers asked.
    pub fn prefetch(&self, graph: &JobGraph, location: &str) -> Vec<usize> {
        let Some((placement, workers)) = self.placement(graph) else { return Vec::new() };
        let mut alive: Vec<usize> = self.rpc.alive_indexes().into_iter().collect();
        alive.sort_unstable();
        let mut asked = Vec::new();
        for w in alive {
            let spec =
                DeploySpec { you: w, ..self.spec(Some(location.to_string()), placement.clone(), workers.clone()) };
            if self.rpc.send(w, &ToWorker::Prefetch(Box::new(spec))) {
                asked.push(w);
            }
        }
        asked
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
        coord: &mut CheckpointCoordinator,
    ) -> Result<AttemptEnd, AttemptError> {
        let parallelism: Vec<usize> = graph.vertices.iter().map(|v| v.parallelism).collect();
        let needed = parallelism.iter().copied().max().unwrap_or(1);
        if !self.await_slots(state, needed) {
            return attempt_result(state, None);
        }
        let (metas, _) = prepare_attempt(graph, state, opts, restore).map_err(AttemptError::Setup)?;
        coord.set_vertices(metas);
        let alive = self.rpc.alive();
        let (placement, addrs) = self
            .placement(graph)
            .ok_or_else(|| AttemptError::Run(EngineError::Cluster("the workers left before deployment".into())))?;
        self.attempt += 1;
        let names = alive.iter().map(|w| (w.index, w.name.clone())).collect();
        let mut attempt = RemoteAttempt::new(self.attempt, &placement, names, state.clone());
        let sinks = graph
            .vertices
            .iter()
            .filter(|v| matches!(v.ops.last(), Some(crate::plan::OpSpec::Sink { .. })))
            .flat_map(|v| (0..v.parallelism).map(move |i| (v.id, i)))
            .map(|(v, i)| (placement[v][i], (v, i)))
            .collect();
        let remote = Remote { rpc: &self.rpc, attempt: self.attempt, workers: attempt.workers(), sinks };
        let spec = self.spec(restore.map(|l| l.location.clone()), placement, addrs);
        let deploy = attempt.deploy(&spec);
        remote.carry_out(&mut attempt, coord, deploy);
        coord.reset_attempt(&remote);
        while !attempt.is_over() {
            match self.rpc.events.recv_timeout(Duration::from_millis(10)) {
                Ok(WorkerEvent::Message(w, m)) => {
                    let actions = attempt.on_worker(w, m);
                    remote.carry_out(&mut attempt, coord, actions);
                }
                Ok(WorkerEvent::Lost(w, why)) => attempt.on_lost(w, &self.rpc.name(w), &why),
                Ok(WorkerEvent::Registered) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    attempt.on_rpc_stopped();
                    break;
                }
            }
            self.rpc.expire();
            let actions = attempt.on_tick(Instant::now(), &self.rpc.alive_indexes());
            remote.carry_out(&mut attempt, coord, actions);
        }
        coord.reset_attempt(&Remote { rpc: &self.rpc, attempt: self.attempt, workers: Vec::new(), sinks: Vec::new() });
        if let Some(why) = coord.fenced() {
            return Err(AttemptError::Fatal(EngineError::Fenced(why)));
        }
        match attempt.finish() {
            Err(setup_failure) => Err(AttemptError::Setup(EngineError::Cluster(setup_failure))),
            Ok(ending) => attempt_result(state, ending),
        }
    }
}
