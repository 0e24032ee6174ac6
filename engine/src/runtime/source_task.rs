//! The loop of one source subtask: it polls its reader, takes checkpoint
//! triggers and commits from the coordinator, and reports the reader's gauges.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use sluice_connectors::{SourceEvent, SourceReader};

use super::channel::Msg;
use super::outputs::now_us;
use super::task::{Inbox, Outputs, TaskCtx, finish_chain, forward};
use crate::checkpoint::SourceControl;
use crate::error::OpError;
use crate::metrics::cpu::SubtaskCpu;
use crate::metrics::{SubtaskMetrics, unknown_as_max};
use crate::operators::{Chain, StreamEvent};

pub struct SourceRun<'a> {
    pub reader: Box<dyn SourceReader>,
    pub control: Receiver<SourceControl>,
    pub idle_at_start: bool,
    pub idle_timeout: Duration,
    /// How often to send a latency marker; zero: never.
    pub latency_interval: Duration,
    pub ctx: &'a mut TaskCtx,
}

pub fn run_source(mut s: SourceRun, chain: &mut Chain, outputs: &mut Outputs) -> Result<(), OpError> {
    let m = outputs.metrics.clone();
    // Downstream subtasks already count a source without work as idle.
    let mut idle = s.idle_at_start;
    report_source(s.reader.as_ref(), &m);
    let mut last_data = Instant::now();
    let mut last_marker = Instant::now();
    // Whether the last batch came from one split (per-split watermarks).
    let mut from_split = false;
    let mut cpu = SubtaskCpu::start(m.clone());
    // What buffer debloating last asked of the reader.
    let mut batch_rows = usize::MAX;
    loop {
        if s.ctx.stopping() {
            return Ok(());
        }
        match s.control.try_recv() {
            Ok(SourceControl::Trigger(b)) => {
                if s.ctx.on_barrier(&b, chain, outputs, Some(s.reader.as_ref()), Duration::ZERO)?.is_err() {
                    return Ok(());
                }
                s.reader.checkpoint_taken(b.id);
                if b.stop {
                    // Emit nothing more: wait for the job to end (after the
                    // commit), or to resume if the savepoint fails.
                    loop {
                        if s.ctx.stopping() {
                            return Ok(());
                        }
                        match s.control.recv_timeout(Duration::from_millis(20)) {
                            Ok(SourceControl::Resume) => break,
                            Ok(SourceControl::Commit(id)) => {
                                s.ctx.commit(chain, id)?;
                                s.reader.checkpoint_complete(id);
                            }
                            Ok(SourceControl::Trigger(_)) | Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return Ok(()),
                        }
                    }
                }
                continue;
            }
            Ok(SourceControl::Commit(id)) => {
                s.ctx.commit(chain, id)?;
                s.reader.checkpoint_complete(id);
                continue;
            }
            Ok(SourceControl::Resume) | Err(_) => {}
        }
        let t = Instant::now();
        cpu.tick();
        // Smaller batches while the channels are backpressured: a barrier then
        // waits behind less data at this source as well as in the channels.
        let rows = outputs.max_rows();
        if rows != batch_rows {
            batch_rows = rows;
            s.reader.set_batch_size(rows);
        }
        let bp_before = m.backpressured_ns.load(Ordering::Relaxed);
        let read_us = now_us();
        match s.reader.poll()? {
            SourceEvent::Batch(b) => {
                last_data = Instant::now();
                if idle {
                    idle = false;
                    if outputs.broadcast(|| Msg::Idle(false)).is_err() {
                        return Ok(());
                    }
                }
                m.took_in(b.num_rows() as u64);
                SubtaskMetrics::add(&m.bytes_in, b.get_array_memory_size() as u64);
                from_split = false;
                if let Some((split, owned)) = s.reader.batch_split() {
                    chain.source_split(split, &owned, s.idle_timeout);
                    from_split = true;
                }
                if forward(chain, outputs, StreamEvent::Batch(b))?.is_err() {
                    return Ok(());
                }
                if !s.latency_interval.is_zero() && last_marker.elapsed() >= s.latency_interval {
                    last_marker = Instant::now();
                    if outputs.pass_marker(read_us, s.ctx.is_sink).is_err() {
                        return Ok(());
                    }
                }
                let bp = m.backpressured_ns.load(Ordering::Relaxed).saturating_sub(bp_before);
                SubtaskMetrics::add(&m.busy_ns, (t.elapsed().as_nanos() as u64).saturating_sub(bp));
            }
            SourceEvent::Idle => {
                SubtaskMetrics::add(&m.idle_ns, t.elapsed().as_nanos() as u64);
                if !idle && !s.idle_timeout.is_zero() && last_data.elapsed() >= s.idle_timeout {
                    idle = true;
                    // Splits that went idle since the last batch no longer hold the
                    // watermark back: the assigner emits what the others allow before
                    // the subtask goes idle (else that watermark would never be emitted).
                    if std::mem::take(&mut from_split) {
                        for out in chain.source_idle()? {
                            if outputs.emit(out)?.is_err() {
                                return Ok(());
                            }
                        }
                    }
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
        report_source(s.reader.as_ref(), &m);
    }
    report_source(s.reader.as_ref(), &m);
    m.pending_records.store(0, Ordering::Relaxed);
    if finish_chain(chain, outputs)?.is_err() {
        return Ok(());
    }
    s.ctx.finished(chain, Some(s.reader.as_ref()), Inbox::Control(&s.control))?;
    let _ = outputs.broadcast(|| Msg::End);
    Ok(())
}

/// A source's gauges, as its reader knows them now; an unknown lag stays
/// unknown (never 0).
fn report_source(reader: &dyn SourceReader, m: &SubtaskMetrics) {
    m.pending_records.store(unknown_as_max(reader.pending_records()), Ordering::Relaxed);
    m.splits.store(unknown_as_max(reader.splits()), Ordering::Relaxed);
    m.skipped_records.store(reader.skipped_records(), Ordering::Relaxed);
}
