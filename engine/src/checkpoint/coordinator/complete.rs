//! Completing a checkpoint or savepoint once every subtask has acknowledged:
//! `_metadata` written last, the fence checked, the terminal marker written
//! before the last commit, the sinks told to commit, retention; or failing it.
//!
//! Invariants (see [`crate::checkpoint`]):
//! - `_metadata` is written only when every subtask acknowledged or finished,
//!   and never over an existing one;
//! - output is committed only after `_metadata` is durable and the fence holds,
//!   and only by checkpoints and stop-with-savepoints ([`super::commits`]);
//! - a job that ends writes its terminal marker before the sinks' last commit,
//!   and commits nothing if it cannot.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::super::error::SnapshotError;
use super::super::lineage::{Fence, OWNER};
use super::super::metadata::{FORMAT_VERSION, Metadata, SnapshotKind, SubtaskState, VertexState};
use super::super::store::{self, Terminal};
use super::{AwaitCommit, CheckpointCoordinator, Cluster, Ending, Pending, commits};
use crate::job::{SavepointStatus, SnapshotStatus, rfc3339};

impl CheckpointCoordinator {
    pub(super) fn try_complete(&mut self, cluster: &dyn Cluster) -> Option<Ending> {
        let p = self.pending.as_ref()?;
        let id = p.barrier.id;
        let done = self
            .subtasks
            .iter()
            .all(|k| p.acks.contains_key(k) || self.finished.get(k).is_some_and(|(_, last)| *last < id));
        if !done {
            return None;
        }
        let p = self.pending.take()?;
        if self.job.user_cancel.load(Ordering::SeqCst) {
            self.fail(
                p,
                "the job is being canceled (SIGTERM or POST /v1/job/cancel); nothing more is committed".into(),
                true,
                cluster,
            );
            return None;
        }
        if let Some(e) = crate::failpoint::hit("checkpoint.before-metadata") {
            self.fail(p, e, true, cluster);
            return None;
        }
        let metadata = match self.complete(&p) {
            Ok(m) => m,
            Err(e) => {
                self.fail(p, e.to_string(), true, cluster);
                return None;
            }
        };
        // `_metadata` is durable: a newer generation that starts from now on sees
        // this snapshot. Commit only if none started before (lineage invariant 1).
        // If one did, the snapshot stays: that generation may have restored it.
        match self.fence.as_ref().map(Fence::check) {
            Some(Ok(Some(why))) => {
                tracing::error!("job `{}`: {why}", self.job.job_id);
                self.fenced = Some(why.clone());
                self.fail(p, why.clone(), false, cluster);
                self.job.fail(why);
                return None;
            }
            Some(Err(e)) => {
                self.fail(p, format!("cannot verify this coordinator's generation: {e}"), false, cluster);
                return None;
            }
            Some(Ok(None)) | None => {}
        }
        crate::failpoint::hit("checkpoint.before-commit");
        let location = p.barrier.dir.uri();
        let duration = p.started.elapsed().as_millis() as u64;
        self.job.update_checkpoint(p.barrier.id, |r| {
            r.status = SnapshotStatus::Completed;
            r.duration_ms = duration;
            r.size_bytes = metadata.total_size();
            r.written_bytes = metadata.written_size();
            r.alignment_ms = p.alignment_ms;
        });
        for ((vertex, subtask), state) in &p.acks {
            if let Some(m) = self.job.subtasks.iter().find(|m| m.vertex == *vertex && m.subtask == *subtask) {
                m.state_bytes.store(state.sections.iter().map(|s| s.len).sum(), Ordering::Relaxed);
            }
        }
        tracing::info!(
            "job `{}`: {:?} {} complete in {duration} ms ({} bytes, {} written, alignment {} ms)",
            self.job.job_id,
            p.barrier.kind,
            p.barrier.id,
            metadata.total_size(),
            metadata.written_size(),
            p.alignment_ms
        );
        if let Some(t) = &p.savepoint {
            self.job.set_savepoint(t, SavepointStatus::completed(&location));
        }
        if p.barrier.kind == SnapshotKind::Checkpoint
            && let Some(job_dir) = &self.opts.job_dir
            && let Err(e) = store::retain(job_dir, self.opts.retained, p.barrier.id)
        {
            tracing::warn!("job `{}`: cannot delete old checkpoints: {e}", self.job.job_id);
        }
        let ending = if p.barrier.stop {
            Some(Ending::Stopped { location: location.clone() })
        } else if p.is_final {
            Some(Ending::Finished { location: location.clone() })
        } else {
            None
        };
        // Output is committed by checkpoints and by a stop-with-savepoint only.
        if !commits(&p.barrier) {
            return None;
        }
        if let Some(ending) = &ending
            && let Err(e) = self.write_terminal(ending)
        {
            // Without the marker a restart could resume past this snapshot: commit nothing.
            self.job.fail(format!("cannot write the terminal marker: {e}"));
            return None;
        }
        self.latest = Some(p.barrier.dir.clone());
        let reached = cluster.commit(p.barrier.id);
        if let Some(e) = crate::failpoint::hit("checkpoint.committed") {
            self.job.fail(e);
        }
        if let Some(ending) = ending {
            if reached.is_empty() {
                return Some(ending);
            }
            self.await_commit = Some(AwaitCommit { id: p.barrier.id, waiting: reached, ending });
        }
        // Subtasks that finished while this checkpoint was in flight.
        self.maybe_final(cluster);
        None
    }

    /// Writes the state of finished subtasks and `_metadata`.
    fn complete(&self, p: &Pending) -> Result<Metadata, SnapshotError> {
        let dir = &p.barrier.dir;
        let mut files = p.files.clone();
        let mut by_vertex: BTreeMap<usize, Vec<SubtaskState>> = BTreeMap::new();
        for &(v, s) in &self.subtasks {
            let state = match p.acks.get(&(v, s)) {
                Some(st) => st.clone(),
                None => {
                    let snap = self.finished.get(&(v, s)).map(|f| &f.0).cloned().unwrap_or_default();
                    let (state, file) = store::write_subtask(dir, &self.vertices[v].uid, s, &snap)?;
                    files.extend(file);
                    state
                }
            };
            by_vertex.entry(v).or_default().push(state);
        }
        let vertices = self
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| VertexState {
                uid: v.uid.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                operators: v.operators.clone(),
                subtasks: by_vertex.remove(&i).unwrap_or_default(),
            })
            .collect();
        let metadata = Metadata {
            format_version: FORMAT_VERSION,
            generation: self.fence.as_ref().map_or(0, |f| f.generation),
            job_id: self.job.job_id.clone(),
            checkpoint_id: p.barrier.id,
            kind: p.barrier.kind,
            max_parallelism: self.max_parallelism,
            timestamp: rfc3339(p.trigger_time),
            vertices,
            files,
            checksum: None,
        };
        store::write_metadata(dir, &metadata)?;
        Ok(metadata)
    }

    /// Marks a checkpoint failed. With `clean_up`, its files go (but not the
    /// directory's reservation, so that no other generation reuses the id
    /// while late uploads of this one may still arrive).
    pub(super) fn fail(&mut self, p: Pending, reason: String, clean_up: bool, cluster: &dyn Cluster) {
        tracing::warn!(
            "job `{}`: {:?} {} failed: {reason}; the job goes on",
            self.job.job_id,
            p.barrier.kind,
            p.barrier.id
        );
        let duration = p.started.elapsed().as_millis() as u64;
        self.job.update_checkpoint(p.barrier.id, |r| {
            r.status = SnapshotStatus::Failed;
            r.duration_ms = duration;
            r.failure = Some(reason.clone());
        });
        if let Some(t) = &p.savepoint {
            self.job.set_savepoint(t, SavepointStatus::failed(&reason));
        }
        if p.barrier.stop {
            cluster.resume();
        }
        // An incremental checkpoint's directory stays: subtasks that wrote their
        // changes into it build their next checkpoints on those files. Retention
        // deletes it once no retained checkpoint refers to it.
        let incremental = p.barrier.kind == SnapshotKind::Checkpoint && p.barrier.incremental;
        if !clean_up || incremental {
            return;
        }
        // Best effort: the storage may be what failed.
        let dir = &p.barrier.dir;
        let removed = dir
            .list("")
            .and_then(|objects| objects.iter().filter(|o| o.path != OWNER).try_for_each(|o| dir.delete(&o.path)));
        if let Err(e) = removed {
            tracing::debug!("cannot clean up {}: {e}", dir.uri());
        }
    }

    /// Writes the terminal marker before the last commit, so that a restart of
    /// this deployment stays terminal instead of resuming past the snapshot.
    fn write_terminal(&self, ending: &Ending) -> Result<(), SnapshotError> {
        let Some(job_dir) = &self.opts.job_dir else { return Ok(()) };
        let (reason, location) = match ending {
            Ending::Finished { location } => ("FINISHED", location),
            Ending::Stopped { location } => ("STOPPED", location),
        };
        let t = Terminal {
            reason: reason.into(),
            location: location.clone(),
            time: rfc3339(SystemTime::now()),
            generation: self.fence.as_ref().map_or(0, |f| f.generation),
        };
        Ok(store::write_terminal(job_dir, &t)?)
    }
}
