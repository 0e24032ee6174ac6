//! Runs a job graph in one process: one thread per subtask, connected by
//! credit-based channels (see [`channel`]).
//!
//! Watermarks: a subtask's watermark is the minimum over its input channels that
//! are neither idle nor ended; when every input has ended it is +∞, which fires
//! every window, and then operators finish and sinks make their output final.
//!
//! Checkpoints: see [`crate::checkpoint`]. With a checkpoint directory, output
//! is exactly-once: sinks make output visible only when a checkpoint covering
//! it completes, and a bounded job ends with a final checkpoint.
//!
//! Failure: the first error stops the attempt. With a restart strategy, the job
//! restarts from the newest complete checkpoint; otherwise it fails. A canceled
//! job stops without finishing its sinks, so no partial output becomes visible.

pub mod channel;
pub mod start;
mod task;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use sluice_connectors::{SinkContext, SourceContext, create_sink, create_source, recover_sink};

use crate::checkpoint::coordinator::{CheckpointOptions, Cluster, Coordinator, Ending, VertexMeta};
use crate::checkpoint::metadata::OperatorState;
use crate::checkpoint::restart::RestartStrategy;
use crate::checkpoint::restore;
use crate::checkpoint::store::{self, Loaded};
use crate::checkpoint::{Barrier, CoordMsg, SourceControl};
use crate::error::{EngineError, OpError};
pub use crate::job::{JobState, JobStatus};
use crate::metrics::SubtaskMetrics;
use crate::operators::calc::{Filter, Project};
use crate::operators::session::SessionAggregate;
use crate::operators::sink::Sink;
use crate::operators::watermark::WatermarkAssigner;
use crate::operators::window::{Keys, TimeShift, WindowAggregate, WindowAssign};
use crate::operators::{Chain, Operator};
use crate::plan::{JobGraph, OpSpec, Partitioning};
use channel::{CONTROL, CloseOnDrop, Credit, Envelope, Msg, Outbox, Target};
use sluice_sql::plan::WindowKind;
use start::Begin;
pub use start::Claimed;
use task::{InputRun, OutEdge, Outputs, SourceRun, TaskCtx};

/// Where a run starts from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Restore {
    /// Empty state.
    #[default]
    None,
    /// The newest complete checkpoint under the checkpoint directory, if any;
    /// a job that finished or stopped stays terminal.
    Latest,
    /// A checkpoint or savepoint directory, or its `_metadata`.
    Uri(String),
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub batch_size: usize,
    pub buffer_capacity: usize,
    /// 0 disables idleness.
    pub idle_timeout: Duration,
    pub checkpoint: CheckpointOptions,
    pub restart: RestartStrategy,
    pub restore: Restore,
    pub allow_non_restored_state: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch_size: 8192,
            buffer_capacity: 8,
            idle_timeout: Duration::ZERO,
            checkpoint: CheckpointOptions::default(),
            restart: RestartStrategy::None,
            restore: Restore::None,
            allow_non_restored_state: false,
        }
    }
}

fn instantiate(
    spec: &OpSpec,
    subtask: usize,
    parallelism: usize,
    job_id: &str,
    tz: &str,
    sink: &SinkSetup,
) -> Result<Box<dyn Operator>, EngineError> {
    let shift = |z: &Option<String>| TimeShift::new(z.as_deref()).map_err(|e| EngineError::Config(e.to_string()));
    Ok(match spec {
        OpSpec::Filter(p) => Box::new(Filter { predicate: p.clone() }),
        OpSpec::Project { exprs, schema, .. } => Box::new(Project { exprs: exprs.clone(), schema: schema.clone() }),
        OpSpec::Watermark { time_col, expr, trigger_intervals, .. } => {
            Box::new(WatermarkAssigner::new(*time_col, expr.clone(), trigger_intervals.clone()))
        }
        OpSpec::WindowAssign { kind, time_col, time_type, time_zone, schema } => {
            Box::new(WindowAssign::new(*kind, *time_col, time_type.clone(), shift(time_zone)?, schema.clone()))
        }
        OpSpec::WindowAggregate { kind, time_col, time_type, time_zone, keys, key_types, aggs, schema } => {
            let k = Keys::new(keys.clone(), key_types.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
            match kind {
                WindowKind::Session { gap } => Box::new(
                    SessionAggregate::new(
                        *gap,
                        *time_col,
                        time_type.clone(),
                        shift(time_zone)?,
                        k,
                        aggs.clone(),
                        schema.clone(),
                    )
                    .map_err(|e| EngineError::Internal(e.to_string()))?,
                ),
                _ => Box::new(WindowAggregate::new(
                    *kind,
                    *time_col,
                    time_type.clone(),
                    shift(time_zone)?,
                    k,
                    aggs.clone(),
                    schema.clone(),
                )),
            }
        }
        OpSpec::Sink { table } => {
            let ctx = sink_context(table, subtask, parallelism, job_id, tz, sink);
            Box::new(Sink { table: table.name.clone(), writer: create_sink(&ctx)?, exactly_once: sink.exactly_once })
        }
    })
}

/// What a sink needs beyond its table: restored writer states and the mode.
#[derive(Default, Clone)]
pub struct SinkSetup {
    restored_states: Option<Vec<Vec<u8>>>,
    exactly_once: bool,
    s3: sluice_storage::S3Options,
}

/// The context of one sink subtask (subtask 0 for per-table work such as recovery).
fn sink_context(
    table: &sluice_sql::catalog::TableDef,
    subtask: usize,
    parallelism: usize,
    job_id: &str,
    tz: &str,
    sink: &SinkSetup,
) -> SinkContext {
    SinkContext {
        table: table.name.clone(),
        options: table.options.clone(),
        schema: table.physical.clone(),
        subtask,
        parallelism,
        job_id: job_id.to_string(),
        local_time_zone: tz.to_string(),
        restored_states: sink.restored_states.clone(),
        s3: sink.s3.clone(),
    }
}

/// Tells the user where the state comes from and how big it is.
pub(crate) fn restoring(state: &JobState, l: &Loaded, since: Instant) {
    eprintln!(
        "sluice: job `{}` restoring from {} ({} {}, {} files, {} bytes, read and verified in {} ms)",
        state.job_id,
        l.location,
        match l.metadata.kind {
            crate::checkpoint::SnapshotKind::Checkpoint => "checkpoint",
            crate::checkpoint::SnapshotKind::Savepoint => "savepoint",
        },
        l.metadata.checkpoint_id,
        l.metadata.files.len(),
        l.metadata.total_size(),
        since.elapsed().as_millis()
    );
}

/// Runs one attempt of a job: in this process, or on workers.
pub trait Attempts {
    /// Whether this process restores keyed state itself, so that a restore
    /// must keep it in memory (every file is verified either way).
    fn restores_keyed_state(&self) -> bool {
        true
    }

    fn run(
        &mut self,
        graph: &JobGraph,
        state: &Arc<JobState>,
        opts: &RunOptions,
        restore: Option<&Loaded>,
        coord: &mut Coordinator,
    ) -> Result<AttemptEnd, AttemptError>;
}

/// How one attempt of the job ended.
pub enum AttemptEnd {
    Finished,
    Stopped,
    Canceled,
}

/// Runs the job until it finishes, is canceled, stops with a savepoint, or
/// fails beyond its restart strategy. With checkpoint storage, it claims a
/// generation of the job first (a new run, never a restart).
pub fn execute(graph: &JobGraph, state: &Arc<JobState>, opts: &RunOptions) -> Result<(), EngineError> {
    let claimed = match &opts.checkpoint.job_dir {
        Some(dir) => Some(Claimed::claim(dir, "run", false).map_err(|e| start::failed(state, e))?),
        None => None,
    };
    execute_with(graph, state, opts, &mut LocalAttempts, claimed)
}

/// [`execute`] with another attempt runner and the generation it claimed, if
/// the job has checkpoint storage: its fence is checked before anything is
/// committed, and it decides where the run starts (see [`start`]).
pub fn execute_with(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    attempts: &mut dyn Attempts,
    claimed: Option<Claimed>,
) -> Result<(), EngineError> {
    let ck = &opts.checkpoint;
    let keyed = attempts.restores_keyed_state();
    let keep = |m: &crate::checkpoint::Metadata, f: &crate::checkpoint::metadata::FileEntry| {
        keyed || store::holds_unkeyed(m, f)
    };
    let (initial, first_id) = match start::begin(graph, state, opts, claimed.as_ref(), &keep) {
        Ok(Some(Begin { initial, first_id })) => (initial, first_id),
        Ok(None) => return Ok(()),
        Err(e) => return Err(start::failed(state, e)),
    };
    let mut coord = Coordinator::new(ck.clone(), state.clone(), graph.max_parallelism, Vec::new(), first_id);
    coord.fence = claimed.map(|c| c.fence);
    let mut restored_from: Option<Loaded> = None;
    let mut attempt = 0u32;
    loop {
        let restore = restored_from.as_ref().or(initial.as_ref());
        let result = attempts.run(graph, state, opts, restore, &mut coord);
        match result {
            Ok(AttemptEnd::Finished) | Ok(AttemptEnd::Stopped) => {
                state.set_status(JobStatus::Finished);
                return Ok(());
            }
            Ok(AttemptEnd::Canceled) => {
                state.set_status(JobStatus::Canceled);
                return Ok(());
            }
            Err(AttemptError::Fatal(e)) => return Err(start::failed(state, e)),
            Err(e) => {
                // Errors while setting up the first attempt are the user's to fix.
                let setup = matches!(e, AttemptError::Setup(_)) && attempt == 0;
                let err = e.into_inner();
                attempt += 1;
                let delay =
                    if setup || state.user_cancel.load(Ordering::SeqCst) { None } else { opts.restart.delay(attempt) };
                let Some(delay) = delay else {
                    if state.user_cancel.load(Ordering::SeqCst) && !setup {
                        state.set_status(JobStatus::Canceled);
                        return Ok(());
                    }
                    return Err(start::failed(state, err));
                };
                state.restarts.store(attempt as u64, Ordering::SeqCst);
                state.set_status(JobStatus::Restarting);
                let from =
                    coord.latest.as_ref().map(|d| d.uri()).or_else(|| initial.as_ref().map(|l| l.location.clone()));
                eprintln!(
                    "sluice: job `{}` failed: {err}\nsluice: restart {attempt} in {} ms, from {}",
                    state.job_id,
                    delay.as_millis(),
                    from.as_deref().unwrap_or("the beginning")
                );
                let until = Instant::now() + delay;
                while Instant::now() < until && !state.user_cancel.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
                }
                if state.user_cancel.load(Ordering::SeqCst) {
                    state.set_status(JobStatus::Canceled);
                    return Ok(());
                }
                state.clear_failure();
                if let Some(dir) = coord.latest.clone() {
                    let t = Instant::now();
                    restored_from = match store::load_verified(&dir, &keep) {
                        Ok(l) => {
                            restoring(state, &l, t);
                            Some(l)
                        }
                        Err(why) => {
                            tracing::warn!("cannot restore from {}: {why}; trying older checkpoints", dir.uri());
                            // This generation's newest other checkpoint, else where it started.
                            let generation = coord.fence.as_ref().map(|f| f.generation);
                            match &ck.job_dir {
                                Some(j) => store::load_latest_of(j, generation, &keep).ok().flatten(),
                                None => None,
                            }
                        }
                    };
                }
            }
        }
    }
}

pub enum AttemptError {
    /// Building the attempt failed (configuration, restore compatibility).
    Setup(EngineError),
    /// A subtask failed while running.
    Run(EngineError),
    /// The job must not restart (this coordinator was fenced off).
    Fatal(EngineError),
}

impl AttemptError {
    fn into_inner(self) -> EngineError {
        match self {
            AttemptError::Setup(e) | AttemptError::Run(e) | AttemptError::Fatal(e) => e,
        }
    }
}

/// How the coordinator reaches a sink subtask.
enum SinkInbox {
    /// Its input queue.
    Queue(Sender<Envelope>),
    /// The control channel of the source it is chained to.
    Source(Sender<SourceControl>),
}

/// The control side of the subtasks that run in this process.
#[derive(Default)]
pub struct Wiring {
    sources: Vec<Sender<SourceControl>>,
    sinks: Vec<((usize, usize), SinkInbox)>,
}

impl Cluster for Wiring {
    fn trigger(&self, barrier: &Barrier) {
        for s in &self.sources {
            let _ = s.send(SourceControl::Trigger(barrier.clone()));
        }
    }

    fn resume(&self) {
        for s in &self.sources {
            let _ = s.send(SourceControl::Resume);
        }
    }

    fn commit(&self, id: u64) -> std::collections::HashSet<(usize, usize)> {
        self.sinks
            .iter()
            .filter(|(_, inbox)| match inbox {
                SinkInbox::Queue(tx) => tx.send(Envelope { channel: CONTROL, msg: Msg::Commit(id) }).is_ok(),
                SinkInbox::Source(tx) => tx.send(SourceControl::Commit(id)).is_ok(),
            })
            .map(|(k, _)| *k)
            .collect()
    }
}

/// Where the subtasks of an attempt run, when not all of them run in this
/// process: the network side of the channels between workers.
pub trait Exchange {
    /// Whether subtask `i` of vertex `v` runs in this process.
    fn is_local(&self, v: usize, i: usize) -> bool;
    /// The producer's side of channel `ch` into subtask `i` of vertex `v`, on another worker.
    fn outbox(&self, v: usize, i: usize, ch: u32, capacity: usize) -> Result<(Outbox, Arc<Credit>), EngineError>;
    /// The consumer's side of channel `ch` of local subtask `i` of vertex `v`,
    /// whose producer `from` runs on another worker.
    fn inbound(&self, v: usize, i: usize, ch: u32, from: (usize, usize)) -> Arc<Credit>;
    /// Messages from other workers for local subtask `i` of vertex `v` go to `tx`.
    fn register(&self, v: usize, i: usize, tx: Sender<Envelope>);
}

/// The stateful operators of each vertex, as the coordinator describes them.
pub fn vertex_metas(graph: &JobGraph, state: &JobState) -> Result<Vec<VertexMeta>, EngineError> {
    let mut metas = Vec::new();
    for v in &graph.vertices {
        let mut operators: Vec<OperatorState> = Vec::new();
        for (index, spec) in v.ops.iter().enumerate() {
            if matches!(spec, OpSpec::Sink { .. }) {
                continue;
            }
            let op = instantiate(spec, 0, v.parallelism, &state.job_id, &graph.local_time_zone, &SinkSetup::default())?;
            if let Some(layout) = op.state_layout() {
                operators.push(OperatorState { index, name: op.name(), layout });
            }
        }
        metas.push(VertexMeta { uid: v.uid.clone(), name: v.name(), parallelism: v.parallelism, operators });
    }
    Ok(metas)
}

/// What each sink vertex needs: the restored writer states and the mode.
/// With `recover`, this also commits what the restored snapshot covers and
/// cleans up what an earlier attempt left pending (the coordinator's job).
pub fn sink_setups(
    graph: &JobGraph,
    state: &JobState,
    opts: &RunOptions,
    restore: Option<&Loaded>,
    recover: bool,
) -> Result<Vec<SinkSetup>, EngineError> {
    let exactly_once = opts.checkpoint.exactly_once();
    let mut setups: Vec<SinkSetup> = vec![SinkSetup::default(); graph.vertices.len()];
    for v in &graph.vertices {
        let Some(OpSpec::Sink { table }) = v.ops.last() else { continue };
        let restored = match restore {
            Some(l) => restore::sink_for(l, &v.uid)?,
            None => None,
        };
        let recovering = exactly_once || restored.is_some();
        let (committables, restored_states) = match restored {
            Some(r) => (r.committables, Some(r.states)),
            None => (Vec::new(), None),
        };
        let sink = SinkSetup { restored_states, exactly_once, s3: opts.checkpoint.s3.clone() };
        if recover && recovering {
            let ctx = sink_context(table, 0, v.parallelism, &state.job_id, &graph.local_time_zone, &sink);
            recover_sink(&ctx, &committables)?;
        }
        setups[v.id] = sink;
    }
    Ok(setups)
}

/// One subtask, built and wired, before its thread starts.
pub struct Task {
    vertex: usize,
    subtask: usize,
    chain: Chain,
    outputs: Outputs,
    input: Option<(Receiver<Envelope>, Vec<Arc<Credit>>)>,
    channels: Vec<bool>,
    idle: bool,
    source: Option<(Box<dyn sluice_connectors::SourceReader>, Receiver<SourceControl>)>,
    ctx: TaskCtx,
}

/// The subtasks of one attempt that run in this process.
pub struct Deployment {
    pub tasks: Vec<Task>,
    pub wiring: Wiring,
    /// Acknowledgements and other messages from the subtasks.
    pub coord_rx: Receiver<CoordMsg>,
}

/// Builds this process's subtasks of an attempt: operators with their keyed
/// state, readers with their splits, and the channels between them (through
/// `exchange` for subtasks on other workers).
pub fn deploy(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    restore: Option<&Loaded>,
    sink_setup: &[SinkSetup],
    exchange: Option<&dyn Exchange>,
) -> Result<Deployment, EngineError> {
    let exactly_once = opts.checkpoint.exactly_once();
    let local = |v: usize, i: usize| exchange.is_none_or(|x| x.is_local(v, i));
    let forward = |e: usize| matches!(graph.edges[e].partitioning, Partitioning::Forward);
    let is_sink = |v: &crate::plan::Vertex| matches!(v.ops.last(), Some(OpSpec::Sink { .. }));

    // Operators, with their keyed state.
    let mut chains: Vec<Vec<Option<Chain>>> = Vec::new();
    for v in &graph.vertices {
        let mut per = Vec::new();
        for i in 0..v.parallelism {
            if !local(v.id, i) {
                per.push(None);
                continue;
            }
            let mut ops = v
                .ops
                .iter()
                .map(|o| instantiate(o, i, v.parallelism, &state.job_id, &graph.local_time_zone, &sink_setup[v.id]))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(l) = restore {
                for (op, kg, bytes) in restore::keyed_for(l, &v.uid, i, v.parallelism)? {
                    let target = ops.get_mut(op).ok_or_else(|| EngineError::Restore {
                        location: l.location.clone(),
                        message: format!("`{}` has no operator {op} for the snapshot's state", v.name()),
                    })?;
                    target.restore(kg, bytes).map_err(|e| EngineError::Restore {
                        location: l.location.clone(),
                        message: format!("operator `{}` (uid {}): cannot read its state: {e}", target.name(), v.uid),
                    })?;
                }
            }
            per.push(Some(Chain { ops }));
        }
        chains.push(per);
    }

    // Channels are numbered per consumer subtask: a forward edge contributes
    // one channel (from the same-index producer), other edges one per producer.
    let mut channel_base: Vec<Vec<u32>> = Vec::new();
    let mut channel_sources: Vec<Vec<Vec<(usize, usize)>>> = Vec::new();
    for v in &graph.vertices {
        let mut base = Vec::new();
        let mut n = 0u32;
        for e in &v.inputs {
            base.push(n);
            n += if forward(*e) { 1 } else { graph.vertices[graph.edges[*e].from].parallelism as u32 };
        }
        channel_base.push(base);
        channel_sources.push(
            (0..v.parallelism)
                .map(|i| {
                    let mut chans = Vec::new();
                    for e in &v.inputs {
                        let from = graph.edges[*e].from;
                        if forward(*e) {
                            chans.push((from, i));
                        } else {
                            chans.extend((0..graph.vertices[from].parallelism).map(|j| (from, j)));
                        }
                    }
                    chans
                })
                .collect(),
        );
    }
    // One unbounded input queue per local subtask; one credit counter per channel.
    let mut senders: Vec<Vec<Option<Sender<Envelope>>>> = Vec::new();
    let mut receivers: Vec<Vec<Option<Receiver<Envelope>>>> = Vec::new();
    let mut credits: Vec<Vec<Vec<Arc<Credit>>>> = Vec::new();
    for v in &graph.vertices {
        let (mut tx, mut rx, mut cr) = (Vec::new(), Vec::new(), Vec::new());
        for (i, sources) in channel_sources[v.id].iter().enumerate() {
            if !local(v.id, i) {
                tx.push(None);
                rx.push(None);
                cr.push(Vec::new());
                continue;
            }
            let (t, r) = channel::<Envelope>();
            let mut c = Vec::new();
            for (ch, (u, j)) in sources.iter().enumerate() {
                c.push(match exchange {
                    Some(x) if !x.is_local(*u, *j) => x.inbound(v.id, i, ch as u32, (*u, *j)),
                    _ => Credit::new(opts.buffer_capacity),
                });
            }
            if let Some(x) = exchange {
                x.register(v.id, i, t.clone());
            }
            tx.push(Some(t));
            rx.push(Some(r));
            cr.push(c);
        }
        senders.push(tx);
        receivers.push(rx);
        credits.push(cr);
    }
    // Readers first, so that configuration errors fail before anything runs,
    // and so that subtasks without work are known to be idle from the start.
    // Every worker opens every reader of a vertex it runs a subtask of, to know
    // which of them are idle; it keeps its own.
    let mut readers: Vec<Vec<Option<Box<dyn sluice_connectors::SourceReader>>>> = Vec::new();
    let mut idle_at_start: Vec<Vec<bool>> = Vec::new();
    for v in &graph.vertices {
        let mut rs = Vec::new();
        let mut idle = Vec::new();
        let splits = match (restore, &v.source) {
            (Some(l), Some(_)) => restore::splits_for(l, &v.uid)?,
            _ => None,
        };
        for (i, chans) in channel_sources[v.id].iter().enumerate() {
            match &v.source {
                Some(t) => {
                    let reader = create_source(&SourceContext {
                        table: t.name.clone(),
                        options: t.options.clone(),
                        schema: t.physical.clone(),
                        subtask: i,
                        parallelism: v.parallelism,
                        batch_size: opts.batch_size,
                        local_time_zone: graph.local_time_zone.clone(),
                        restored_splits: splits.clone(),
                        s3: opts.checkpoint.s3.clone(),
                    })?;
                    idle.push(!reader.has_work());
                    rs.push(if local(v.id, i) { Some(reader) } else { None });
                }
                None => {
                    // Vertices are numbered so that producers come first.
                    let all_idle = !chans.is_empty()
                        && chans.iter().all(|(u, j)| {
                            idle_at_start.get(*u).and_then(|x: &Vec<bool>| x.get(*j)).copied().unwrap_or(false)
                        });
                    idle.push(all_idle);
                    rs.push(None);
                }
            }
        }
        readers.push(rs);
        idle_at_start.push(idle);
    }

    let (coord_tx, coord_rx) = channel::<CoordMsg>();
    let mut wiring = Wiring::default();
    let mut tasks = Vec::new();
    let metrics_of = |v: usize, i: usize| state.subtasks.iter().find(|m| m.vertex == v && m.subtask == i).cloned();
    for v in &graph.vertices {
        for i in 0..v.parallelism {
            let Some(chain) = chains[v.id][i].take() else { continue };
            let mut edges = Vec::new();
            for e in &v.outputs {
                let edge = &graph.edges[*e];
                let pos = graph.vertices[edge.to].inputs.iter().position(|x| x == e).unwrap_or(0);
                let target = |j: usize, ch: u32| -> Result<Target, EngineError> {
                    match (&senders[edge.to][j], exchange) {
                        (Some(tx), _) => Ok(Target {
                            tx: Outbox::Local(tx.clone()),
                            channel: ch,
                            credit: credits[edge.to][j][ch as usize].clone(),
                        }),
                        (None, Some(x)) => {
                            let (tx, credit) = x.outbox(edge.to, j, ch, opts.buffer_capacity)?;
                            Ok(Target { tx, channel: ch, credit })
                        }
                        (None, None) => Err(EngineError::Internal("a consumer subtask has no queue".into())),
                    }
                };
                let targets = if forward(*e) {
                    vec![target(i, channel_base[edge.to][pos])?]
                } else {
                    let ch = channel_base[edge.to][pos] + i as u32;
                    (0..graph.vertices[edge.to].parallelism).map(|j| target(j, ch)).collect::<Result<_, _>>()?
                };
                edges.push(OutEdge {
                    partitioning: edge.partitioning.clone(),
                    targets,
                    next: i,
                    max_parallelism: graph.max_parallelism,
                });
            }
            let metrics = metrics_of(v.id, i).ok_or_else(|| EngineError::Internal("missing subtask metrics".into()))?;
            let channels = channel_sources[v.id][i].iter().map(|(u, j)| idle_at_start[*u][*j]).collect::<Vec<_>>();
            let source = match readers[v.id][i].take() {
                Some(r) => {
                    let (tx, rx) = channel();
                    if is_sink(v) {
                        wiring.sinks.push(((v.id, i), SinkInbox::Source(tx.clone())));
                    }
                    wiring.sources.push(tx);
                    Some((r, rx))
                }
                None => {
                    if is_sink(v)
                        && let Some(tx) = &senders[v.id][i]
                    {
                        wiring.sinks.push(((v.id, i), SinkInbox::Queue(tx.clone())));
                    }
                    None
                }
            };
            tasks.push(Task {
                vertex: v.id,
                subtask: i,
                chain,
                outputs: Outputs { edges, metrics },
                input: receivers[v.id][i].take().map(|rx| (rx, std::mem::take(&mut credits[v.id][i]))),
                channels,
                idle: idle_at_start[v.id][i],
                source,
                ctx: TaskCtx {
                    vertex: v.id,
                    subtask: i,
                    uid: v.uid.clone(),
                    state: state.clone(),
                    coord: coord_tx.clone(),
                    max_parallelism: graph.max_parallelism,
                    exactly_once,
                    is_sink: is_sink(v),
                    uncommitted: Vec::new(),
                    last_checkpoint: 0,
                },
            });
        }
    }
    Ok(Deployment { tasks, wiring, coord_rx })
}

/// Starts one thread per subtask. Each reports `Exited` when it ends; a
/// failure fails the job state.
pub fn spawn(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    tasks: Vec<Task>,
) -> Result<Vec<std::thread::JoinHandle<()>>, EngineError> {
    let mut handles = Vec::new();
    for mut t in tasks {
        let st = state.clone();
        let idle_timeout = opts.idle_timeout;
        let vname = graph.vertices[t.vertex].name();
        let h = std::thread::Builder::new()
            .name(format!("v{}-{}", t.vertex, t.subtask))
            .spawn(move || {
                let _close = CloseOnDrop(t.input.as_ref().map(|i| i.1.clone()).unwrap_or_default());
                let r: Result<(), OpError> = match (t.source.take(), t.input.take()) {
                    (Some((reader, control)), _) => task::run_source(
                        SourceRun { reader, control, idle_at_start: t.idle, idle_timeout, ctx: &mut t.ctx },
                        &mut t.chain,
                        &mut t.outputs,
                    ),
                    (None, Some((rx, credits))) => task::run_operator(
                        InputRun { rx, credits, idle_channels: t.channels, idle_at_start: t.idle, ctx: &mut t.ctx },
                        &mut t.chain,
                        &mut t.outputs,
                    ),
                    (None, None) => Err(OpError::Other("subtask has no input".into())),
                };
                SubtaskMetrics::add(&t.outputs.metrics.late_records_dropped, t.chain.late_records_dropped());
                if let Err(e) = r {
                    st.fail(format!("job `{}` failed in {} (subtask {}): {e}", st.job_id, vname, t.subtask));
                }
                let _ = t.ctx.coord.send(CoordMsg::Exited { vertex: t.vertex, subtask: t.subtask });
            })
            .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

/// The coordinator's side of an attempt, shared by the local runner and the
/// distributed coordinator: the stateful layouts, the restore check (before
/// anything has side effects), and sink recovery.
pub fn prepare_attempt(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    restore: Option<&Loaded>,
) -> Result<(Vec<VertexMeta>, Vec<SinkSetup>), EngineError> {
    let metas = vertex_metas(graph, state)?;
    if let Some(l) = restore {
        restore::check(l, &metas, graph.max_parallelism, opts.allow_non_restored_state)?;
    }
    let setups = sink_setups(graph, state, opts, restore, true)?;
    Ok((metas, setups))
}

/// What ends an attempt that the coordinator ended.
pub fn log_ending(state: &JobState, e: &Ending) {
    match e {
        Ending::Finished { location } => tracing::info!("job `{}` finished; final checkpoint {location}", state.job_id),
        Ending::Stopped { location } => eprintln!("sluice: job `{}` stopped with savepoint {location}", state.job_id),
    }
}

/// How an attempt ended, from the ending the coordinator chose (if any) and
/// the job state.
pub fn attempt_result(state: &JobState, ending: Option<Ending>) -> Result<AttemptEnd, AttemptError> {
    if let Some(e) = ending {
        log_ending(state, &e);
        state.cancel.store(false, Ordering::SeqCst);
        return Ok(if matches!(e, Ending::Stopped { .. }) { AttemptEnd::Stopped } else { AttemptEnd::Finished });
    }
    if let Some(e) = state.error() {
        // The message names the job, the vertex and the subtask (or the worker).
        return Err(AttemptError::Run(EngineError::Failed(e)));
    }
    if state.cancel.load(Ordering::SeqCst) {
        return Ok(AttemptEnd::Canceled);
    }
    Ok(AttemptEnd::Finished)
}

/// Runs every subtask in this process.
pub struct LocalAttempts;

impl Attempts for LocalAttempts {
    fn run(
        &mut self,
        graph: &JobGraph,
        state: &Arc<JobState>,
        opts: &RunOptions,
        restore: Option<&Loaded>,
        coord: &mut Coordinator,
    ) -> Result<AttemptEnd, AttemptError> {
        let setup = AttemptError::Setup;
        let (metas, setups) = prepare_attempt(graph, state, opts, restore).map_err(setup)?;
        let d = deploy(graph, state, opts, restore, &setups, None).map_err(setup)?;
        coord.set_vertices(metas);
        let Deployment { tasks, wiring, coord_rx } = d;
        coord.reset_attempt(&wiring);
        state.set_status(JobStatus::Running);
        let total = tasks.len();
        let handles = spawn(graph, state, opts, tasks).map_err(setup)?;

        // Drive the coordinator until every subtask has exited.
        let mut exited = 0;
        let mut ending: Option<Ending> = None;
        while exited < total {
            match coord_rx.recv_timeout(Duration::from_millis(10)) {
                Ok(CoordMsg::Exited { .. }) => exited += 1,
                Ok(msg) => {
                    if let Some(e) = coord.on_message(msg, &wiring) {
                        ending = Some(e);
                        // The job is complete: stop every subtask.
                        state.cancel.store(true, Ordering::SeqCst);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if !state.cancel.load(Ordering::Relaxed) {
                coord.tick(&wiring);
            }
        }
        drop(wiring);
        for h in handles {
            if h.join().is_err() {
                state.fail("a subtask thread panicked".into());
            }
        }
        // Acknowledgements still in flight are dropped with the attempt.
        coord.reset_attempt(&Wiring::default());
        if let Some(why) = coord.fenced() {
            return Err(AttemptError::Fatal(EngineError::Fenced(why)));
        }
        attempt_result(state, ending)
    }
}
