//! One attempt's subtasks in this process: operators with their keyed state,
//! readers with their splits, the channels between them (through an
//! [`Exchange`] for subtasks on other workers), and their threads.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use sluice_connectors::values::ValuesReader;
use sluice_connectors::{SourceContext, SourceReader, create_source};

use super::RunOptions;
use super::channel::{Buffers, CONTROL, CloseOnDrop, Credit, Envelope, Msg, Outbox, Target};
use super::lazy::{self, Lazy, Origin};
use super::source_task::{self, SourceRun};
use super::task::{self, InputRun, OutEdge, Outputs, TaskCtx};
use crate::checkpoint::coordinator::Cluster;
use crate::checkpoint::restore;
use crate::checkpoint::store::Loaded;
use crate::checkpoint::{Barrier, CoordMsg, SourceControl};
use crate::error::{EngineError, OpError};
use crate::job::JobState;
use crate::metrics::SubtaskMetrics;
use crate::operators::Chain;
use crate::operators::factory::{SinkSetup, instantiate};
use crate::plan::{JobGraph, OpSpec, Partitioning, Vertex};

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
    fn outbox(&self, v: usize, i: usize, ch: u32, buffers: Buffers) -> Result<(Outbox, Arc<Credit>), EngineError>;
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
    /// Per channel, its input edge (see [`ChannelLayout::inputs`]).
    channel_inputs: Vec<usize>,
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

/// The input channels of every subtask, computed once from the graph.
/// Channels are numbered per consumer subtask: a forward edge contributes one
/// channel (from the same-index producer), other edges one per producer.
pub struct ChannelLayout {
    /// Per vertex, per input edge (in `Vertex::inputs` order): its first channel.
    base: Vec<Vec<u32>>,
    /// Per vertex, per subtask: the producer `(vertex, subtask)` of each channel.
    sources: Vec<Vec<Vec<(usize, usize)>>>,
}

impl ChannelLayout {
    pub fn of(graph: &JobGraph) -> ChannelLayout {
        let forward = |e: usize| matches!(graph.edges[e].partitioning, Partitioning::Forward);
        let mut base = Vec::new();
        let mut sources = Vec::new();
        for v in &graph.vertices {
            let mut starts = Vec::new();
            let mut n = 0u32;
            for e in &v.inputs {
                starts.push(n);
                n += if forward(*e) { 1 } else { graph.vertices[graph.edges[*e].from].parallelism as u32 };
            }
            base.push(starts);
            sources.push(
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
        ChannelLayout { base, sources }
    }

    /// The producers feeding subtask `i` of vertex `v`, by channel.
    fn sources(&self, v: usize, i: usize) -> &[(usize, usize)] {
        &self.sources[v][i]
    }

    /// Per channel of a subtask of vertex `v` (of `channels` in all), the
    /// position of its input edge in `Vertex::inputs`.
    fn inputs(&self, v: usize, channels: usize) -> Vec<usize> {
        let base = &self.base[v];
        (0..channels as u32).map(|ch| base.iter().rposition(|b| *b <= ch).unwrap_or(0)).collect()
    }

    /// The channel at the consumer that producer subtask `i` writes edge `e` to.
    fn channel(&self, graph: &JobGraph, e: usize, i: usize) -> u32 {
        let edge = &graph.edges[e];
        let pos = graph.vertices[edge.to].inputs.iter().position(|x| *x == e).unwrap_or(0);
        let base = self.base[edge.to][pos];
        if matches!(edge.partitioning, Partitioning::Forward) { base } else { base + i as u32 }
    }
}

/// Per vertex, per subtask: a value for the subtasks of this process, `None` for others.
type PerSubtask<T> = Vec<Vec<Option<T>>>;

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
    let local = |v: usize, i: usize| exchange.is_none_or(|x| x.is_local(v, i));
    let chains = build_chains(graph, state, restore, sink_setup, &local)?;
    let layout = ChannelLayout::of(graph);
    let inputs = open_inputs(graph, &layout, opts, exchange, &local);
    let readers = open_readers(graph, &layout, opts, restore, &local)?;
    // The subtasks hold what they still restore: the snapshot's copy can go.
    restore.map(Loaded::release_files);
    wire_tasks(graph, state, opts, &layout, Built { chains, inputs, readers }, exchange)
}

/// A subtask's operators, and the key groups it restores lazily.
type Built1 = (Chain, Option<Lazy>);

/// Operators, with their keyed state. With a snapshot to restore, the local
/// subtasks of a vertex read their state in parallel, as many at once as the
/// machine has cores: decoding state is most of a restore's time, unless the
/// vertex restores lazily (see [`super::lazy`]).
fn build_chains(
    graph: &JobGraph,
    state: &JobState,
    restore: Option<&Loaded>,
    sink_setup: &[SinkSetup],
    local: &dyn Fn(usize, usize) -> bool,
) -> Result<PerSubtask<Built1>, EngineError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let backend = crate::state::disk::DiskBackend::for_job(&graph.state_backend).map_err(EngineError::Config)?;
    let mut chains = Vec::new();
    for v in &graph.vertices {
        let build = |i: usize| {
            crate::state::disk::with_backend(backend.as_ref(), || {
                build_chain(graph, v, i, state, restore, &sink_setup[v.id])
            })
        };
        let mine: Vec<usize> = (0..v.parallelism).filter(|i| local(v.id, *i)).collect();
        let mut built: Vec<Result<Built1, EngineError>> = Vec::with_capacity(mine.len());
        for group in mine.chunks(if restore.is_some() { cores } else { 1 }) {
            match group {
                [i] => built.push(build(*i)),
                _ => std::thread::scope(|s| {
                    let handles: Vec<_> = group.iter().map(|&i| s.spawn(move || build(i))).collect();
                    for h in handles {
                        built.push(h.join().unwrap_or_else(|_| {
                            Err(EngineError::Internal(format!("`{}`: restoring a subtask panicked", v.name())))
                        }));
                    }
                }),
            }
        }
        let mut per: Vec<Option<Built1>> = (0..v.parallelism).map(|_| None).collect();
        for (i, chain) in mine.into_iter().zip(built) {
            per[i] = Some(chain?);
        }
        chains.push(per);
    }
    Ok(chains)
}

/// Subtask `i` of `v`: its operators, with their keyed state restored, or
/// left to restore lazily when every input of the vertex is a hash edge.
fn build_chain(
    graph: &JobGraph,
    v: &Vertex,
    i: usize,
    state: &JobState,
    restore: Option<&Loaded>,
    sink_setup: &SinkSetup,
) -> Result<Built1, EngineError> {
    let mut ops = v
        .ops
        .iter()
        .map(|o| instantiate(o, i, v.parallelism, &state.job_id, &graph.local_time_zone, sink_setup))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(m) = state.subtasks.iter().find(|m| m.vertex == v.id && m.subtask == i) {
        for op in &mut ops {
            op.observe(m.clone());
        }
    }
    let Some(l) = restore else { return Ok((Chain { ops }, None)) };
    let owned = restore::owned_keyed(l, &v.uid, i, v.parallelism)?;
    let hash_keys: Option<Vec<_>> = v
        .inputs
        .iter()
        .map(|e| match &graph.edges[*e].partitioning {
            Partitioning::Hash { keys, .. } => Some(keys.clone()),
            _ => None,
        })
        .collect();
    if let Some(keys) = hash_keys.filter(|k| !k.is_empty()) {
        let origin = Origin { location: l.location.clone(), vertex: v.name(), uid: v.uid.clone(), subtask: i };
        return Ok((Chain { ops }, Lazy::new(owned, keys, graph.max_parallelism, origin)));
    }
    for (kg, group) in &owned {
        lazy::restore_group(&mut ops, &v.name(), &v.uid, *kg, group)
            .map_err(|message| EngineError::Restore { location: l.location.clone(), message })?;
    }
    Ok((Chain { ops }, None))
}

/// The input side of a local subtask: one unbounded queue, one credit counter per channel.
struct Input {
    tx: Sender<Envelope>,
    rx: Option<Receiver<Envelope>>,
    credits: Vec<Arc<Credit>>,
}

fn open_inputs(
    graph: &JobGraph,
    layout: &ChannelLayout,
    opts: &RunOptions,
    exchange: Option<&dyn Exchange>,
    local: &dyn Fn(usize, usize) -> bool,
) -> PerSubtask<Input> {
    graph
        .vertices
        .iter()
        .map(|v| {
            (0..v.parallelism)
                .map(|i| {
                    if !local(v.id, i) {
                        return None;
                    }
                    let (tx, rx) = channel::<Envelope>();
                    let credits = layout
                        .sources(v.id, i)
                        .iter()
                        .enumerate()
                        .map(|(ch, (u, j))| match exchange {
                            Some(x) if !x.is_local(*u, *j) => x.inbound(v.id, i, ch as u32, (*u, *j)),
                            _ => Credit::with(opts.buffers()),
                        })
                        .collect();
                    if let Some(x) = exchange {
                        x.register(v.id, i, tx.clone());
                    }
                    Some(Input { tx, rx: Some(rx), credits })
                })
                .collect()
        })
        .collect()
}

/// Source readers of this process's subtasks, and which subtasks start idle.
struct Readers {
    readers: PerSubtask<Box<dyn sluice_connectors::SourceReader>>,
    idle_at_start: Vec<Vec<bool>>,
}

/// Readers first, so that configuration errors fail before anything runs,
/// and so that subtasks without work are known to be idle from the start.
/// Every worker opens every reader of a vertex it runs a subtask of, to know
/// which of them are idle; it keeps its own.
fn open_readers(
    graph: &JobGraph,
    layout: &ChannelLayout,
    opts: &RunOptions,
    restore: Option<&Loaded>,
    local: &dyn Fn(usize, usize) -> bool,
) -> Result<Readers, EngineError> {
    let mut readers = Vec::new();
    let mut idle_at_start: Vec<Vec<bool>> = Vec::new();
    for v in &graph.vertices {
        let mut rs = Vec::new();
        let mut idle = Vec::new();
        let splits = match (restore, &v.source) {
            (Some(l), Some(_)) => restore::splits_for(l, &v.uid)?,
            _ => None,
        };
        for i in 0..v.parallelism {
            match &v.source {
                Some(t) => {
                    let ctx = SourceContext {
                        table: t.name.clone(),
                        options: t.options.clone(),
                        schema: t.physical.clone(),
                        subtask: i,
                        parallelism: v.parallelism,
                        batch_size: opts.batch_size,
                        local_time_zone: graph.local_time_zone.clone(),
                        restored_splits: splits.clone(),
                        s3: opts.checkpoint.s3.clone(),
                    };
                    let mut reader: Box<dyn SourceReader> = match &t.rows {
                        Some(rows) => Box::new(ValuesReader::new(&ctx, rows.clone())?),
                        None => create_source(&ctx)?,
                    };
                    if let Some(columns) = &v.reads {
                        reader.read_only(columns);
                    }
                    let reader = crate::operators::policy::with_policy(t, reader)?;
                    idle.push(!reader.has_work());
                    rs.push(if local(v.id, i) { Some(reader) } else { None });
                }
                None => {
                    // Vertices are numbered so that producers come first.
                    let chans = layout.sources(v.id, i);
                    let all_idle = !chans.is_empty()
                        && chans
                            .iter()
                            .all(|(u, j)| idle_at_start.get(*u).and_then(|x| x.get(*j)).copied().unwrap_or(false));
                    idle.push(all_idle);
                    rs.push(None);
                }
            }
        }
        readers.push(rs);
        idle_at_start.push(idle);
    }
    Ok(Readers { readers, idle_at_start })
}

/// What the build steps made, before the tasks are wired.
struct Built {
    chains: PerSubtask<Built1>,
    inputs: PerSubtask<Input>,
    readers: Readers,
}

/// Connects each local subtask's outputs to its consumers' inputs (local
/// queues, or the exchange), and gives the coordinator its control channels.
fn wire_tasks(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    layout: &ChannelLayout,
    built: Built,
    exchange: Option<&dyn Exchange>,
) -> Result<Tasks, EngineError> {
    let Built { mut chains, mut inputs, readers: Readers { mut readers, idle_at_start } } = built;
    let is_sink = |v: &crate::plan::Vertex| matches!(v.ops.last(), Some(OpSpec::Sink { .. }));
    let (coord_tx, coord_rx) = channel::<CoordMsg>();
    let mut wiring = Wiring::default();
    let mut tasks = Vec::new();
    for v in &graph.vertices {
        for i in 0..v.parallelism {
            let Some((chain, lazy)) = chains[v.id][i].take() else { continue };
            let mut edges = Vec::new();
            for e in &v.outputs {
                let edge = &graph.edges[*e];
                let ch = layout.channel(graph, *e, i);
                let target = |j: usize| -> Result<Target, EngineError> {
                    match (&inputs[edge.to][j], exchange) {
                        (Some(input), _) => Ok(Target {
                            tx: Outbox::Local(input.tx.clone()),
                            channel: ch,
                            credit: input.credits[ch as usize].clone(),
                        }),
                        (None, Some(x)) => {
                            let (tx, credit) = x.outbox(edge.to, j, ch, opts.buffers())?;
                            Ok(Target { tx, channel: ch, credit })
                        }
                        (None, None) => Err(EngineError::Internal("a consumer subtask has no queue".into())),
                    }
                };
                let targets = if matches!(edge.partitioning, Partitioning::Forward) {
                    vec![target(i)?]
                } else {
                    (0..graph.vertices[edge.to].parallelism).map(target).collect::<Result<_, _>>()?
                };
                edges.push(OutEdge {
                    partitioning: edge.partitioning.clone(),
                    targets,
                    next: i,
                    max_parallelism: graph.max_parallelism,
                });
            }
            let metrics = state
                .subtasks
                .iter()
                .find(|m| m.vertex == v.id && m.subtask == i)
                .cloned()
                .ok_or_else(|| EngineError::Internal("missing subtask metrics".into()))?;
            let channels = layout.sources(v.id, i).iter().map(|(u, j)| idle_at_start[*u][*j]).collect::<Vec<_>>();
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
                        && let Some(input) = &inputs[v.id][i]
                    {
                        wiring.sinks.push(((v.id, i), SinkInbox::Queue(input.tx.clone())));
                    }
                    None
                }
            };
            let input =
                inputs[v.id][i].as_mut().and_then(|inp| inp.rx.take().map(|rx| (rx, std::mem::take(&mut inp.credits))));
            tasks.push(Task {
                vertex: v.id,
                subtask: i,
                chain,
                outputs: Outputs { edges, metrics, next_marker: i },
                input,
                channel_inputs: layout.inputs(v.id, channels.len()),
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
                    parallelism: v.parallelism,
                    exactly_once: opts.checkpoint.exactly_once(),
                    is_sink: is_sink(v),
                    uncommitted: Vec::new(),
                    last_checkpoint: 0,
                    snapshots: Default::default(),
                    lazy,
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
        let (idle_timeout, latency_interval) = (opts.idle_timeout, opts.latency_interval);
        let vname = graph.vertices[t.vertex].name();
        let h = std::thread::Builder::new()
            .name(format!("v{}-{}", t.vertex, t.subtask))
            .spawn(move || {
                let _close = CloseOnDrop(t.input.as_ref().map(|i| i.1.clone()).unwrap_or_default());
                let r: Result<(), OpError> = match (t.source.take(), t.input.take()) {
                    (Some((reader, control)), _) => source_task::run_source(
                        SourceRun {
                            reader,
                            control,
                            idle_at_start: t.idle,
                            idle_timeout,
                            latency_interval,
                            ctx: &mut t.ctx,
                        },
                        &mut t.chain,
                        &mut t.outputs,
                    ),
                    (None, Some((rx, credits))) => task::run_operator(
                        InputRun {
                            rx,
                            credits,
                            idle_channels: t.channels,
                            channel_inputs: t.channel_inputs,
                            idle_at_start: t.idle,
                            ctx: &mut t.ctx,
                        },
                        &mut t.chain,
                        &mut t.outputs,
                    ),
                    (None, None) => Err(OpError::Other("subtask has no input".into())),
                };
                SubtaskMetrics::add(&t.outputs.metrics.late_records_dropped, t.chain.late_records_dropped());
                if let Err(e) = r {
                    st.fail(format!("job `{}` failed in {} (subtask {}): {e}", st.job_id, vname, t.subtask));
                }
                // `Exited` lets the next attempt start: the chain (a sink's open files and
                // their buffers) must be closed before, or a late flush could land in a
                // file of the next attempt that reuses the name.
                let Task { chain, outputs, ctx, vertex, subtask, .. } = t;
                drop(chain);
                drop(outputs);
                let _ = ctx.coord.send(CoordMsg::Exited { vertex, subtask });
            })
            .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

#[cfg(test)]
#[path = "deploy_tests.rs"]
mod tests;
