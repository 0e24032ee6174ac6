//! Runs a job graph in one process: one thread per subtask, connected by
//! bounded channels.
//!
//! Flow control: every subtask has one input queue holding at most
//! `execution.buffer-capacity` messages per upstream channel; a producer that
//! finds it full blocks (and counts the time as backpressure), so a slow operator
//! slows its producers and, in the end, the sources.
//!
//! Watermarks: a subtask's watermark is the minimum over its input channels that
//! are neither idle nor ended; when every input has ended it is +∞, which fires
//! every window, and then operators finish and sinks make their output final.
//!
//! Failure: the first error is recorded, the job is marked failed, and every
//! thread stops once its channels close. A canceled job stops without finishing
//! its sinks, so no partial output becomes visible.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use sluice_connectors::{SinkContext, SourceContext, SourceEvent, create_sink, create_source};

use crate::error::{EngineError, OpError};
use crate::keygroup;
use crate::metrics::{NO_WATERMARK, SubtaskMetrics};
use crate::operators::calc::{Filter, Project};
use crate::operators::session::SessionAggregate;
use crate::operators::sink::Sink;
use crate::operators::watermark::WatermarkAssigner;
use crate::operators::window::{Keys, TimeShift, WindowAggregate, WindowAssign};
use crate::operators::{Chain, Event, Operator};
use crate::plan::{JobGraph, OpSpec, Partitioning};
use sluice_sql::plan::WindowKind;

/// Job states, as the REST API reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Created,
    Running,
    Failing,
    Restarting,
    Finished,
    Failed,
    Canceled,
    Suspended,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Finished | JobStatus::Failed | JobStatus::Canceled | JobStatus::Suspended)
    }
}

#[derive(Debug, Clone)]
pub struct VertexInfo {
    pub id: usize,
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
    pub is_source: bool,
}

/// What the REST API and the progress line read about a running job.
#[derive(Debug)]
pub struct JobState {
    pub job_id: String,
    pub job_name: String,
    pub status: Mutex<JobStatus>,
    pub start_time: SystemTime,
    pub end_time: Mutex<Option<SystemTime>>,
    pub error: Mutex<Option<String>>,
    pub cancel: AtomicBool,
    pub vertices: Vec<VertexInfo>,
    pub subtasks: Vec<Arc<SubtaskMetrics>>,
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
            vertices,
            subtasks,
        })
    }

    pub fn status(&self) -> JobStatus {
        self.status.lock().map(|s| *s).unwrap_or(JobStatus::Failed)
    }

    fn set_status(&self, s: JobStatus) {
        if let Ok(mut g) = self.status.lock() {
            *g = s;
        }
        if s.is_terminal()
            && let Ok(mut e) = self.end_time.lock()
        {
            *e = Some(SystemTime::now());
        }
    }

    /// Records the first failure and stops the job.
    fn fail(&self, message: String) {
        if let Ok(mut e) = self.error.lock()
            && e.is_none()
        {
            *e = Some(message);
        }
        if let Ok(mut g) = self.status.lock()
            && !g.is_terminal()
        {
            *g = JobStatus::Failing;
        }
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn request_cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    pub fn metrics_of(&self, vertex: usize) -> impl Iterator<Item = &Arc<SubtaskMetrics>> {
        self.subtasks.iter().filter(move |m| m.vertex == vertex)
    }
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub batch_size: usize,
    pub buffer_capacity: usize,
    /// 0 disables idleness.
    pub idle_timeout: Duration,
}

enum Msg {
    Batch(RecordBatch),
    Watermark(i64),
    Idle(bool),
    End,
}

struct Envelope {
    channel: u32,
    msg: Msg,
}

/// The downstream side of one output edge of a subtask.
struct OutEdge {
    partitioning: Partitioning,
    targets: Vec<(SyncSender<Envelope>, u32)>,
    next: usize,
    max_parallelism: usize,
}

/// Raised when a downstream subtask has gone away (the job is stopping).
struct Disconnected;

struct Outputs {
    edges: Vec<OutEdge>,
    metrics: Arc<SubtaskMetrics>,
}

impl Outputs {
    fn send(&self, tx: &SyncSender<Envelope>, env: Envelope) -> Result<(), Disconnected> {
        match tx.try_send(env) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(env)) => {
                let t = Instant::now();
                let r = tx.send(env).map_err(|_| Disconnected);
                SubtaskMetrics::add(&self.metrics.backpressured_ns, t.elapsed().as_nanos() as u64);
                r
            }
            Err(TrySendError::Disconnected(_)) => Err(Disconnected),
        }
    }

    fn broadcast(&self, make: impl Fn() -> Msg) -> Result<(), Disconnected> {
        for e in &self.edges {
            for (tx, ch) in &e.targets {
                self.send(tx, Envelope { channel: *ch, msg: make() })?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, ev: Event) -> Result<Result<(), Disconnected>, OpError> {
        match ev {
            Event::Watermark(w) => {
                self.metrics.watermark.store(w, Ordering::Relaxed);
                Ok(self.broadcast(|| Msg::Watermark(w)))
            }
            Event::Batch(b) => {
                SubtaskMetrics::add(&self.metrics.records_out, b.num_rows() as u64);
                SubtaskMetrics::add(&self.metrics.bytes_out, b.get_array_memory_size() as u64);
                for i in 0..self.edges.len() {
                    let routed = route(&mut self.edges[i], &b)?;
                    for (t, batch) in routed {
                        let (tx, ch) = &self.edges[i].targets[t];
                        if let Err(d) = self.send(tx, Envelope { channel: *ch, msg: Msg::Batch(batch) }) {
                            return Ok(Err(d));
                        }
                    }
                }
                Ok(Ok(()))
            }
        }
    }
}

/// Splits a batch among an edge's targets.
fn route(e: &mut OutEdge, b: &RecordBatch) -> Result<Vec<(usize, RecordBatch)>, OpError> {
    let n = e.targets.len();
    Ok(match &e.partitioning {
        Partitioning::Forward => vec![(0, b.clone())],
        Partitioning::Global => vec![(0, b.clone())],
        Partitioning::Rebalance => {
            let t = e.next % n;
            e.next = e.next.wrapping_add(1);
            vec![(t, b.clone())]
        }
        Partitioning::Hash { keys, .. } => {
            if n == 1 {
                return Ok(vec![(0, b.clone())]);
            }
            let rows = b.num_rows();
            let cols: Vec<ArrayRef> =
                keys.iter().map(|k| k.evaluate(b).and_then(|v| v.into_array(rows))).collect::<Result<_, _>>()?;
            let hashes = keygroup::hash_rows(&cols, rows).map_err(OpError::Other)?;
            let mut idx: Vec<Vec<u32>> = vec![Vec::new(); n];
            for (r, h) in hashes.iter().enumerate() {
                let kg = keygroup::key_group(*h, e.max_parallelism);
                idx[keygroup::operator_index(kg, e.max_parallelism, n)].push(r as u32);
            }
            let mut out = Vec::new();
            for (t, rows) in idx.into_iter().enumerate() {
                if !rows.is_empty() {
                    out.push((t, take_record_batch(b, &UInt32Array::from(rows))?));
                }
            }
            out
        }
    })
}

fn instantiate(
    spec: &OpSpec,
    subtask: usize,
    parallelism: usize,
    job_id: &str,
    tz: &str,
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
            let ctx = SinkContext {
                table: table.name.clone(),
                options: table.options.clone(),
                schema: table.physical.clone(),
                subtask,
                parallelism,
                job_id: job_id.to_string(),
                local_time_zone: tz.to_string(),
            };
            Box::new(Sink { table: table.name.clone(), writer: create_sink(&ctx)? })
        }
    })
}

struct InputState {
    watermark: i64,
    idle: bool,
    ended: bool,
}

/// Runs the job to completion. Returns when every subtask has stopped.
pub fn execute(graph: &JobGraph, state: &Arc<JobState>, opts: &RunOptions) -> Result<(), EngineError> {
    // One input queue per subtask. Channels are numbered per consumer subtask:
    // a forward edge contributes one channel (from the same-index producer),
    // other edges one per producer subtask.
    let forward = |e: usize| matches!(graph.edges[e].partitioning, Partitioning::Forward);
    let mut senders: Vec<Vec<SyncSender<Envelope>>> = Vec::new();
    let mut receivers: Vec<Vec<Option<Receiver<Envelope>>>> = Vec::new();
    let mut channel_base: Vec<Vec<u32>> = Vec::new(); // per vertex, per input edge
    for v in &graph.vertices {
        let mut base = Vec::new();
        let mut n = 0u32;
        for e in &v.inputs {
            base.push(n);
            n += if forward(*e) { 1 } else { graph.vertices[graph.edges[*e].from].parallelism as u32 };
        }
        let cap = opts.buffer_capacity * (n as usize).max(1);
        let (tx, rx): (Vec<_>, Vec<_>) =
            (0..v.parallelism).map(|_| sync_channel::<Envelope>(cap)).map(|(t, r)| (t, Some(r))).unzip();
        senders.push(tx);
        receivers.push(rx);
        channel_base.push(base);
    }
    // Create every reader before starting any thread, so that configuration
    // errors (a missing file, a bad option) fail the job before it runs, and so
    // that subtasks without work are known to be idle from the start: no
    // watermark waits for them, whatever the thread timing.
    let mut readers: Vec<Vec<Option<Box<dyn sluice_connectors::SourceReader>>>> = Vec::new();
    let mut idle_at_start: Vec<Vec<bool>> = Vec::new();
    // For each vertex and subtask, the upstream (vertex, subtask) of each channel.
    let mut channel_sources: Vec<Vec<Vec<(usize, usize)>>> = Vec::new();
    for v in &graph.vertices {
        let mut rs = Vec::new();
        let mut idle = Vec::new();
        let mut sources = Vec::new();
        for i in 0..v.parallelism {
            let mut chans = Vec::new();
            for e in &v.inputs {
                let from = graph.edges[*e].from;
                if forward(*e) {
                    chans.push((from, i));
                } else {
                    chans.extend((0..graph.vertices[from].parallelism).map(|j| (from, j)));
                }
            }
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
                    })?;
                    idle.push(!reader.has_work());
                    rs.push(Some(reader));
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
            sources.push(chans);
        }
        readers.push(rs);
        idle_at_start.push(idle);
        channel_sources.push(sources);
    }
    struct Task {
        vertex: usize,
        subtask: usize,
        chain: Chain,
        outputs: Outputs,
        input: Option<Receiver<Envelope>>,
        channels: Vec<bool>,
        idle: bool,
        source: Option<Box<dyn sluice_connectors::SourceReader>>,
    }
    let mut tasks = Vec::new();
    let metrics_of = |v: usize, i: usize| state.subtasks.iter().find(|m| m.vertex == v && m.subtask == i).cloned();
    for v in &graph.vertices {
        for i in 0..v.parallelism {
            let ops = v
                .ops
                .iter()
                .map(|o| instantiate(o, i, v.parallelism, &state.job_id, &graph.local_time_zone))
                .collect::<Result<Vec<_>, _>>()?;
            let mut edges = Vec::new();
            for e in &v.outputs {
                let edge = &graph.edges[*e];
                let pos = graph.vertices[edge.to].inputs.iter().position(|x| x == e).unwrap_or(0);
                let targets = if forward(*e) {
                    vec![(senders[edge.to][i].clone(), channel_base[edge.to][pos])]
                } else {
                    let ch = channel_base[edge.to][pos] + i as u32;
                    senders[edge.to].iter().map(|tx| (tx.clone(), ch)).collect()
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
            tasks.push(Task {
                vertex: v.id,
                subtask: i,
                chain: Chain { ops },
                outputs: Outputs { edges, metrics },
                input: receivers[v.id][i].take(),
                channels,
                idle: idle_at_start[v.id][i],
                source: readers[v.id][i].take(),
            });
        }
    }
    drop(senders);
    state.set_status(JobStatus::Running);
    let mut handles = Vec::new();
    for mut t in tasks {
        let st = state.clone();
        let opts = opts.clone();
        let vname = graph.vertices[t.vertex].name();
        let h = std::thread::Builder::new()
            .name(format!("v{}-{}", t.vertex, t.subtask))
            .spawn(move || {
                let r = match t.source.take() {
                    Some(reader) => run_source(reader, t.idle, &mut t.chain, &mut t.outputs, &st, &opts),
                    None => match t.input.take() {
                        Some(rx) => run_operator(rx, &t.channels, t.idle, &mut t.chain, &mut t.outputs, &st),
                        None => Err(OpError::Other("subtask has no input".into())),
                    },
                };
                SubtaskMetrics::add(&t.outputs.metrics.late_records_dropped, t.chain.late_records_dropped());
                if let Err(e) = r {
                    st.fail(format!("job `{}` failed in {} (subtask {}): {e}", st.job_id, vname, t.subtask));
                }
            })
            .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
        handles.push(h);
    }
    for h in handles {
        if h.join().is_err() {
            state.fail("a subtask thread panicked".into());
        }
    }
    if let Some(e) = state.error() {
        state.set_status(JobStatus::Failed);
        return Err(EngineError::Task { job: state.job_id.clone(), vertex: String::new(), subtask: 0, message: e });
    }
    if state.cancel.load(Ordering::SeqCst) {
        state.set_status(JobStatus::Canceled);
    } else {
        state.set_status(JobStatus::Finished);
    }
    Ok(())
}

fn forward(chain: &mut Chain, outputs: &mut Outputs, ev: Event) -> Result<Result<(), Disconnected>, OpError> {
    for out in chain.push(ev)? {
        if let Err(d) = outputs.emit(out)? {
            return Ok(Err(d));
        }
    }
    Ok(Ok(()))
}

fn finish(chain: &mut Chain, outputs: &mut Outputs) -> Result<(), OpError> {
    if forward(chain, outputs, Event::Watermark(i64::MAX))?.is_err() {
        return Ok(());
    }
    for out in chain.finish()? {
        if outputs.emit(out)?.is_err() {
            return Ok(());
        }
    }
    let _ = outputs.broadcast(|| Msg::End);
    Ok(())
}

fn run_source(
    mut reader: Box<dyn sluice_connectors::SourceReader>,
    idle_at_start: bool,
    chain: &mut Chain,
    outputs: &mut Outputs,
    state: &JobState,
    opts: &RunOptions,
) -> Result<(), OpError> {
    let m = outputs.metrics.clone();
    // Downstream subtasks already count a source without work as idle.
    let mut idle = idle_at_start;
    let mut last_data = Instant::now();
    loop {
        if state.cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        let t = Instant::now();
        let bp_before = m.backpressured_ns.load(Ordering::Relaxed);
        match reader.poll()? {
            SourceEvent::Batch(b) => {
                last_data = Instant::now();
                if idle {
                    idle = false;
                    if outputs.broadcast(|| Msg::Idle(false)).is_err() {
                        return Ok(());
                    }
                }
                SubtaskMetrics::add(&m.records_in, b.num_rows() as u64);
                SubtaskMetrics::add(&m.bytes_in, b.get_array_memory_size() as u64);
                if forward(chain, outputs, Event::Batch(b))?.is_err() {
                    return Ok(());
                }
                let bp = m.backpressured_ns.load(Ordering::Relaxed).saturating_sub(bp_before);
                SubtaskMetrics::add(&m.busy_ns, (t.elapsed().as_nanos() as u64).saturating_sub(bp));
            }
            SourceEvent::Idle => {
                SubtaskMetrics::add(&m.idle_ns, t.elapsed().as_nanos() as u64);
                if !idle && !opts.idle_timeout.is_zero() && last_data.elapsed() >= opts.idle_timeout {
                    idle = true;
                    if outputs.broadcast(|| Msg::Idle(true)).is_err() {
                        return Ok(());
                    }
                }
                let pause = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                SubtaskMetrics::add(&m.idle_ns, pause.elapsed().as_nanos() as u64);
            }
            SourceEvent::End => break,
        }
        if let Some(p) = reader.pending_records() {
            m.pending_records.store(p, Ordering::Relaxed);
        }
        m.skipped_records.store(reader.skipped_records(), Ordering::Relaxed);
    }
    m.skipped_records.store(reader.skipped_records(), Ordering::Relaxed);
    m.pending_records.store(0, Ordering::Relaxed);
    finish(chain, outputs)
}

fn run_operator(
    rx: Receiver<Envelope>,
    idle_channels: &[bool],
    idle_at_start: bool,
    chain: &mut Chain,
    outputs: &mut Outputs,
    state: &JobState,
) -> Result<(), OpError> {
    let m = outputs.metrics.clone();
    let mut inputs: Vec<InputState> =
        idle_channels.iter().map(|idle| InputState { watermark: NO_WATERMARK, idle: *idle, ended: false }).collect();
    let mut current = NO_WATERMARK;
    let mut idle = idle_at_start;
    loop {
        let t = Instant::now();
        let env = match rx.recv() {
            Ok(e) => e,
            // Every upstream subtask is gone without ending: the job is stopping.
            Err(_) => return Ok(()),
        };
        SubtaskMetrics::add(&m.idle_ns, t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        let bp_before = m.backpressured_ns.load(Ordering::Relaxed);
        let ch = env.channel as usize;
        let Some(input) = inputs.get_mut(ch) else {
            return Err(OpError::Other(format!("message on unknown channel {ch}")));
        };
        let mut recompute = false;
        match env.msg {
            Msg::Batch(b) => {
                SubtaskMetrics::add(&m.records_in, b.num_rows() as u64);
                SubtaskMetrics::add(&m.bytes_in, b.get_array_memory_size() as u64);
                if forward(chain, outputs, Event::Batch(b))?.is_err() {
                    return Ok(());
                }
            }
            Msg::Watermark(w) => {
                if w > input.watermark {
                    input.watermark = w;
                    recompute = true;
                }
            }
            Msg::Idle(flag) => {
                input.idle = flag;
                recompute = true;
            }
            Msg::End => {
                input.ended = true;
                recompute = true;
            }
        }
        if recompute {
            let all_ended = inputs.iter().all(|i| i.ended);
            // The minimum over active inputs; None when every input is idle or ended.
            let active_min = inputs.iter().filter(|i| !i.ended && !i.idle).map(|i| i.watermark).min();
            let combined = if all_ended { Some(i64::MAX) } else { active_min };
            if active_min.is_none() && !all_ended && !idle {
                idle = true;
                if outputs.broadcast(|| Msg::Idle(true)).is_err() {
                    return Ok(());
                }
            } else if active_min.is_some() && idle {
                idle = false;
                if outputs.broadcast(|| Msg::Idle(false)).is_err() {
                    return Ok(());
                }
            }
            if all_ended {
                current = i64::MAX;
                m.watermark.store(current, Ordering::Relaxed);
                finish(chain, outputs)?;
                return Ok(());
            }
            if let Some(w) = combined
                && w > current
            {
                current = w;
                m.watermark.store(w, Ordering::Relaxed);
                if forward(chain, outputs, Event::Watermark(w))?.is_err() {
                    return Ok(());
                }
            }
        }
        let bp = m.backpressured_ns.load(Ordering::Relaxed).saturating_sub(bp_before);
        SubtaskMetrics::add(&m.busy_ns, (t.elapsed().as_nanos() as u64).saturating_sub(bp));
        if state.cancel.load(Ordering::Relaxed) && state.error().is_some() {
            return Ok(());
        }
    }
}
