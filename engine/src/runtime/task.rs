//! The loop of one subtask that reads channels (the source loop is
//! [`super::source_task`]), with watermark combination, barrier alignment,
//! lazy restore, snapshots, and sink commits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use sluice_connectors::SourceReader;

use super::channel::{CONTROL, Disconnected, Envelope, Msg};
use super::lazy::{Lazy, watermark_needs_state};
pub use super::outputs::{OutEdge, Outputs};
use super::snapshot::{Job, SnapshotWorker, Subtask, Taken};
use crate::checkpoint::metadata::SectionKind;
use crate::checkpoint::{Barrier, CoordMsg, SourceControl};
use crate::error::OpError;
use crate::job::JobState;
use crate::metrics::cpu::SubtaskCpu;
use crate::metrics::{NO_WATERMARK, SubtaskMetrics, unknown_as_max};
use crate::operators::{Chain, StreamEvent};

/// The log target of the line that gives each checkpoint's task-thread pause
/// (`SLUICE_LOG=warn,snapshot_pause=info`).
pub const PAUSE_TARGET: &str = "snapshot_pause";

/// The checkpoint id a subtask snapshots with when its input has ended.
pub const FINAL: u64 = u64::MAX;

/// The checkpoint that makes output pre-committed under `id` visible. A
/// finished sink's last output (`FINAL`) is covered by the first checkpoint
/// after the last one the sink took part in: only that one holds the sink's
/// final state, so an earlier one completing must not commit it.
fn covering_checkpoint(id: u64, last_checkpoint: u64) -> u64 {
    if id == FINAL { last_checkpoint + 1 } else { id }
}

/// Takes out the committables that checkpoint `id` covers.
fn ready_to_commit(uncommitted: &mut Vec<(u64, Vec<u8>)>, id: u64) -> Vec<Vec<u8>> {
    let (ready, rest): (Vec<_>, Vec<_>) = uncommitted.drain(..).partition(|(c, _)| *c <= id);
    *uncommitted = rest;
    ready.into_iter().map(|(_, c)| c).collect()
}

/// What a subtask knows about checkpointing.
pub struct TaskCtx {
    pub vertex: usize,
    pub subtask: usize,
    pub uid: String,
    pub state: Arc<JobState>,
    pub coord: Sender<CoordMsg>,
    pub max_parallelism: usize,
    /// The vertex's parallelism: with the subtask, which key groups it owns.
    pub parallelism: usize,
    pub exactly_once: bool,
    pub is_sink: bool,
    /// Sink output pre-committed and not yet committed, by checkpoint id.
    pub uncommitted: Vec<(u64, Vec<u8>)>,
    pub last_checkpoint: u64,
    /// Encodes and writes this subtask's snapshots off its thread.
    pub snapshots: SnapshotWorker,
    /// Key groups of a restore not decoded yet (see [`super::lazy`]).
    pub lazy: Option<Lazy>,
}

impl TaskCtx {
    pub(super) fn stopping(&self) -> bool {
        self.state.cancel.load(Ordering::Relaxed)
    }

    /// Snapshots the chain (and the reader's splits) for checkpoint `id`:
    /// views of keyed state, to be encoded off this thread (see
    /// [`super::snapshot`]), and the sections that are taken here.
    fn snapshot(&mut self, chain: &mut Chain, reader: Option<&dyn SourceReader>, id: u64) -> Result<Taken, OpError> {
        if self.lazy.is_some() {
            return Err(OpError::Other(format!(
                "internal error: snapshot {id} of subtask {} of vertex {} before its state was restored",
                self.subtask, self.vertex
            )));
        }
        let mut snap = Taken::default();
        let mut sink_state = None;
        // Without exactly-once output, a finished sink has made its output
        // visible already and has nothing to pre-commit.
        let pre_commit = self.exactly_once || id != FINAL;
        // Without checkpoint storage no checkpoint takes a finished subtask's
        // keyed state, and Flink keeps none for finished tasks either: the
        // final snapshot skips encoding it (a tenth of some bounded jobs' time).
        let keyed = self.exactly_once || id != FINAL;
        for (i, op) in chain.ops.iter_mut().enumerate() {
            if keyed && let Some(view) = op.snapshot()? {
                snap.keyed.push((i, view));
            }
            if !pre_commit {
                continue;
            }
            if let Some(s) = op.pre_commit(id)? {
                if !s.committable.is_empty() {
                    self.uncommitted.push((covering_checkpoint(id, self.last_checkpoint), s.committable));
                }
                sink_state = Some(s.state);
            }
        }
        if let Some(r) = reader {
            for split in r.snapshot()? {
                snap.sections.push((SectionKind::Split, split));
            }
        }
        for (cid, c) in &self.uncommitted {
            snap.sections.push((SectionKind::Committable { checkpoint: *cid }, c.clone()));
        }
        if let Some(s) = sink_state {
            snap.sections.push((SectionKind::SinkState, s));
        }
        Ok(snap)
    }

    /// Who the snapshot worker writes and reports for.
    fn worker_subtask(&self) -> Subtask {
        Subtask {
            vertex: self.vertex,
            subtask: self.subtask,
            uid: self.uid.clone(),
            max_parallelism: self.max_parallelism,
            parallelism: self.parallelism,
            coord: self.coord.clone(),
            scope: self.state.job_id.clone(),
        }
    }

    /// Hands the snapshot to the worker, which encodes, writes and acknowledges it.
    fn upload(&mut self, barrier: &Barrier, taken: Taken, alignment: Duration, pause: Duration) {
        let job = Job {
            id: barrier.id,
            kind: barrier.kind,
            incremental: barrier.incremental,
            dir: barrier.dir.clone(),
            taken,
            alignment_ms: alignment.as_millis() as u64,
            pause_us: pause.as_micros() as u64,
        };
        let who = self.worker_subtask();
        self.snapshots.submit(&who, job);
    }

    /// Takes a snapshot on an aligned barrier and forwards the barrier.
    pub(super) fn on_barrier(
        &mut self,
        barrier: &Barrier,
        chain: &mut Chain,
        outputs: &mut Outputs,
        reader: Option<&dyn SourceReader>,
        alignment: Duration,
    ) -> Result<Result<(), Disconnected>, OpError> {
        if barrier.drain && reader.is_some() {
            // Flink's --drain: fire every window before the savepoint.
            if forward(chain, outputs, StreamEvent::Watermark(i64::MAX))?.is_err() {
                return Ok(Err(Disconnected));
            }
        }
        let paused = Instant::now();
        let snap = self.snapshot(chain, reader, barrier.id)?;
        outputs.metrics.state_keys.store(unknown_as_max(chain.state_keys()), Ordering::Relaxed);
        outputs.metrics.state_keys_on_disk.store(unknown_as_max(chain.state_keys_on_disk()), Ordering::Relaxed);
        self.last_checkpoint = barrier.id;
        self.upload(barrier, snap, alignment, paused.elapsed());
        // The bench (scripts/bench_state.py) reads this line: the processing stall per checkpoint.
        tracing::info!(
            target: PAUSE_TARGET,
            "checkpoint {}: vertex {} subtask {}: task thread paused {} us",
            barrier.id,
            self.vertex,
            self.subtask,
            paused.elapsed().as_micros()
        );
        let b = barrier.clone();
        Ok(outputs.broadcast(|| Msg::Barrier(b.clone())))
    }

    /// Commits the sink output that checkpoint `id` covers.
    pub(super) fn commit(&mut self, chain: &mut Chain, id: u64) -> Result<(), OpError> {
        let committables = ready_to_commit(&mut self.uncommitted, id);
        if !committables.is_empty()
            && let Some(sink) = chain.ops.last_mut()
        {
            sink.commit(&committables)?;
        }
        let _ = self.coord.send(CoordMsg::Committed { id, vertex: self.vertex, subtask: self.subtask });
        Ok(())
    }

    /// Input has ended: report the final state; an exactly-once sink then
    /// waits for the checkpoint that covers its last output, committing what
    /// earlier checkpoints cover on the way.
    pub(super) fn finished(
        &mut self,
        chain: &mut Chain,
        reader: Option<&dyn SourceReader>,
        inbox: Inbox,
    ) -> Result<(), OpError> {
        // Encoded here: nothing is left to process, and an error fails the job.
        let snapshot = self.snapshot(chain, reader, FINAL)?.encode(self.max_parallelism, &|| true)?;
        let _ = self.coord.send(CoordMsg::Finished {
            vertex: self.vertex,
            subtask: self.subtask,
            snapshot,
            last_checkpoint: self.last_checkpoint,
        });
        if !(self.is_sink && self.exactly_once) {
            return Ok(());
        }
        crate::failpoint::hit("sink.finished");
        while !self.stopping() {
            match inbox.next_commit(Duration::from_millis(50)) {
                Ok(Some(id)) => {
                    self.commit(chain, id)?;
                    if id > self.last_checkpoint {
                        return Ok(());
                    }
                }
                Ok(None) => {}
                Err(Disconnected) => return Ok(()),
            }
        }
        Ok(())
    }
}

/// Where a subtask's commit notifications arrive: its input queue, or a
/// source's control channel.
pub(super) enum Inbox<'a> {
    Queue(&'a Receiver<Envelope>),
    Control(&'a Receiver<SourceControl>),
}

impl Inbox<'_> {
    /// The next commit notification; `None` on timeout or another message.
    fn next_commit(&self, timeout: Duration) -> Result<Option<u64>, Disconnected> {
        let r = match self {
            Inbox::Queue(rx) => rx.recv_timeout(timeout).map(|e| match e.msg {
                Msg::Commit(id) => Some(id),
                _ => None,
            }),
            Inbox::Control(rx) => rx.recv_timeout(timeout).map(|c| match c {
                SourceControl::Commit(id) => Some(id),
                _ => None,
            }),
        };
        match r {
            Ok(x) => Ok(x),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Disconnected),
        }
    }
}

pub fn forward(chain: &mut Chain, outputs: &mut Outputs, ev: StreamEvent) -> Result<Result<(), Disconnected>, OpError> {
    forward_from(chain, outputs, 0, ev)
}

/// [`forward`] of an event from input `input` of the vertex (see
/// [`Chain::push_from`]).
fn forward_from(
    chain: &mut Chain,
    outputs: &mut Outputs,
    input: usize,
    ev: StreamEvent,
) -> Result<Result<(), Disconnected>, OpError> {
    for out in chain.push_from(input, ev)? {
        if let Err(d) = outputs.emit(out)? {
            return Ok(Err(d));
        }
    }
    Ok(Ok(()))
}

/// How much of a lazy restore to do now.
#[derive(Clone, Copy, PartialEq)]
enum Restoring {
    /// The next key group.
    Next,
    /// Every key group that rows wait for: before a watermark passes them.
    Waited,
    /// Every key group: before a snapshot, a watermark that reads state, or the end.
    All,
}

/// Restores pending key groups of a lazy restore (see [`super::lazy`]) and
/// processes the rows that waited for them.
fn restore_pending(
    ctx: &mut TaskCtx,
    chain: &mut Chain,
    outputs: &mut Outputs,
    how: Restoring,
) -> Result<Result<(), Disconnected>, OpError> {
    while let Some(lazy) = ctx.lazy.as_mut() {
        if how == Restoring::Waited && !lazy.has_waiting() {
            break;
        }
        if let Some(waited) = lazy.restore_next(&mut chain.ops)? {
            for (input, rows) in waited {
                if forward_from(chain, outputs, input, StreamEvent::Batch(rows))?.is_err() {
                    return Ok(Err(Disconnected));
                }
            }
        }
        if ctx.lazy.as_ref().is_some_and(Lazy::done) {
            ctx.lazy = None;
        }
        if how == Restoring::Next {
            break;
        }
    }
    Ok(Ok(()))
}

/// End of input: the final watermark, then each operator's finish.
pub(super) fn finish_chain(chain: &mut Chain, outputs: &mut Outputs) -> Result<Result<(), Disconnected>, OpError> {
    if forward(chain, outputs, StreamEvent::Watermark(i64::MAX))?.is_err() {
        return Ok(Err(Disconnected));
    }
    for out in chain.finish()? {
        if outputs.emit(out)?.is_err() {
            return Ok(Err(Disconnected));
        }
    }
    Ok(Ok(()))
}

struct InputState {
    watermark: i64,
    idle: bool,
    ended: bool,
    /// Holding this channel's messages until the barrier is aligned.
    blocked: bool,
}

pub struct InputRun<'a> {
    pub rx: Receiver<Envelope>,
    pub credits: Vec<Arc<super::channel::Credit>>,
    pub idle_channels: Vec<bool>,
    /// Per channel, the vertex input (input edge) it belongs to.
    pub channel_inputs: Vec<usize>,
    pub idle_at_start: bool,
    pub ctx: &'a mut TaskCtx,
}

pub fn run_operator(r: InputRun, chain: &mut Chain, outputs: &mut Outputs) -> Result<(), OpError> {
    let InputRun { rx, credits, idle_channels, channel_inputs, idle_at_start, ctx } = r;
    let m = outputs.metrics.clone();
    let mut inputs: Vec<InputState> = idle_channels
        .iter()
        .map(|idle| InputState { watermark: NO_WATERMARK, idle: *idle, ended: false, blocked: false })
        .collect();
    let mut current = NO_WATERMARK;
    let mut idle = idle_at_start;
    // Barrier alignment: the barrier being aligned, since when, the held
    // messages, and held messages released for processing.
    let mut aligning: Option<(Barrier, Instant)> = None;
    let mut held: VecDeque<Envelope> = VecDeque::new();
    let mut replay: VecDeque<Envelope> = VecDeque::new();
    let mut cpu = SubtaskCpu::start(m.clone());
    loop {
        cpu.tick();
        let t = Instant::now();
        let env = match replay.pop_front() {
            Some(e) => e,
            // Restoring lazily: an idle input restores the next key group.
            None if ctx.lazy.is_some() => match rx.try_recv() {
                Ok(e) => e,
                Err(TryRecvError::Empty) => {
                    if ctx.stopping() || restore_pending(ctx, chain, outputs, Restoring::Next)?.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => return Ok(()),
            },
            None => match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => {
                    SubtaskMetrics::add(&m.idle_ns, t.elapsed().as_nanos() as u64);
                    if ctx.stopping() {
                        return Ok(());
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
        };
        SubtaskMetrics::add(&m.idle_ns, t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        let bp_before = m.backpressured_ns.load(Ordering::Relaxed);
        if env.channel == CONTROL {
            if let Msg::Commit(id) = env.msg {
                ctx.commit(chain, id)?;
            }
            continue;
        }
        let ch = env.channel as usize;
        let Some(input) = inputs.get_mut(ch) else {
            return Err(OpError::Other(format!("message on unknown channel {ch}")));
        };
        if input.blocked {
            held.push_back(env);
            continue;
        }
        let mut recompute = false;
        let mut check_alignment = false;
        match env.msg {
            Msg::Batch(b) => {
                m.took_in(b.num_rows() as u64);
                SubtaskMetrics::add(&m.bytes_in, b.get_array_memory_size() as u64);
                let from = channel_inputs.get(ch).copied().unwrap_or(0);
                let now = match ctx.lazy.as_mut() {
                    Some(lazy) => lazy.admit(from, b)?,
                    None => Some(b),
                };
                let r = match now {
                    Some(b) => forward_from(chain, outputs, from, StreamEvent::Batch(b))?,
                    None => Ok(()),
                };
                if let Some(c) = credits.get(ch) {
                    c.release();
                }
                // Restoring lazily: one key group after each batch, so all
                // of the state is in soon even while records keep coming.
                if r.is_err() || restore_pending(ctx, chain, outputs, Restoring::Next)?.is_err() {
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
                check_alignment = aligning.is_some();
            }
            Msg::Barrier(b) => {
                input.blocked = true;
                match &aligning {
                    Some((a, _)) if a.id == b.id => {}
                    Some((a, _)) => {
                        return Err(OpError::Other(format!(
                            "barrier {} arrived while aligning barrier {}; channels are out of order",
                            b.id, a.id
                        )));
                    }
                    None => aligning = Some((b, Instant::now())),
                }
                check_alignment = true;
            }
            Msg::Latency(read_us) => {
                if outputs.pass_marker(read_us, ctx.is_sink).is_err() {
                    return Ok(());
                }
            }
            Msg::Commit(_) => {}
        }
        if check_alignment
            && inputs.iter().all(|i| i.ended || i.blocked)
            && let Some((b, since)) = aligning.take()
        {
            if restore_pending(ctx, chain, outputs, Restoring::All)?.is_err()
                || ctx.on_barrier(&b, chain, outputs, None, since.elapsed())?.is_err()
            {
                return Ok(());
            }
            for i in inputs.iter_mut() {
                i.blocked = false;
            }
            // Held messages come before what is left to replay.
            held.extend(replay.drain(..));
            std::mem::swap(&mut held, &mut replay);
        }
        if recompute {
            let all_ended = inputs.iter().all(|i| i.ended);
            // The minimum over active inputs; None when every input is idle or ended.
            let active_min = inputs.iter().filter(|i| !i.ended && !i.idle).map(|i| i.watermark).min();
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
                if restore_pending(ctx, chain, outputs, Restoring::All)?.is_err()
                    || finish_chain(chain, outputs)?.is_err()
                {
                    return Ok(());
                }
                ctx.finished(chain, None, Inbox::Queue(&rx))?;
                let _ = outputs.broadcast(|| Msg::End);
                return Ok(());
            }
            if let Some(w) = active_min
                && w > current
            {
                current = w;
                m.watermark.store(w, Ordering::Relaxed);
                // A watermark never overtakes rows that wait for their state.
                // (Asked only while restoring: `state_layout` formats a string.)
                if ctx.lazy.is_some() {
                    let how = if watermark_needs_state(&chain.ops) { Restoring::All } else { Restoring::Waited };
                    if restore_pending(ctx, chain, outputs, how)?.is_err() {
                        return Ok(());
                    }
                }
                if forward(chain, outputs, StreamEvent::Watermark(w))?.is_err() {
                    return Ok(());
                }
            }
        }
        let bp = m.backpressured_ns.load(Ordering::Relaxed).saturating_sub(bp_before);
        SubtaskMetrics::add(&m.busy_ns, (t.elapsed().as_nanos() as u64).saturating_sub(bp));
        if ctx.stopping() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_sinks_last_output_waits_for_the_checkpoint_after_its_last_one() {
        // The sink took part in checkpoint 4, then finished while 4 was completing.
        let last = 4;
        let mut uncommitted =
            vec![(3, b"c3".to_vec()), (4, b"c4".to_vec()), (covering_checkpoint(FINAL, last), b"end".to_vec())];
        assert_eq!(ready_to_commit(&mut uncommitted, 3), [b"c3".to_vec()]);
        assert_eq!(
            ready_to_commit(&mut uncommitted, 4),
            [b"c4".to_vec()],
            "checkpoint 4 does not cover the last output"
        );
        assert_eq!(ready_to_commit(&mut uncommitted, 5), [b"end".to_vec()]);
        assert!(uncommitted.is_empty());
        assert_eq!(covering_checkpoint(7, last), 7);
    }
}
