//! One attempt's subtasks in this process: operators with their keyed state,
//! readers with their splits, the channels between them (through an
//! [`Exchange`] for subtasks on other workers), and their threads.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use sluice_connectors::{SourceContext, create_source};

use super::RunOptions;
use super::channel::{CONTROL, CloseOnDrop, Credit, Envelope, Msg, Outbox, Target};
use super::task::{self, InputRun, OutEdge, Outputs, SourceRun, TaskCtx};
use crate::checkpoint::coordinator::Cluster;
use crate::checkpoint::restore;
use crate::checkpoint::store::Loaded;
use crate::checkpoint::{Barrier, CoordMsg, SourceControl};
use crate::error::{EngineError, OpError};
use crate::job::JobState;
use crate::metrics::SubtaskMetrics;
use crate::operators::Chain;
use crate::operators::factory::{SinkSetup, instantiate};
use crate::plan::{JobGraph, OpSpec, Partitioning};

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
pub struct Tasks {
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
) -> Result<Tasks, EngineError> {
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
    Ok(Tasks { tasks, wiring, coord_rx })
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
