//! Restoring a job from a snapshot: compatibility checks, and which bytes go
//! to which new subtask. State is matched to vertices by uid; keyed state goes
//! to the subtask that owns its key group at the new parallelism; every source
//! subtask sees every split (the connector picks its own); sinks get every
//! committable, to commit again, idempotently, before the job starts.
//! Keyed state written as entries (incremental checkpoints) is merged per
//! operator and key group, base first, before the operator reads it, so
//! operators restore from either form alike. Keyed state is handed out per
//! key group ([`owned_keyed`]), undecoded, so that a subtask may decode it
//! lazily (see `runtime::lazy`).

use std::collections::BTreeMap;

use super::coordinator::VertexMeta;
use super::metadata::{SectionKind, VertexState};
use super::store::{Loaded, SectionRef};
use crate::error::EngineError;
use crate::keygroup;
use crate::state::entries;

fn restore_error(loaded: &Loaded, message: impl ToString) -> EngineError {
    EngineError::Restore { location: loaded.location.clone(), message: message.to_string() }
}

/// Checks that the snapshot can be restored into the new job.
pub fn check(
    loaded: &Loaded,
    vertices: &[VertexMeta],
    max_parallelism: usize,
    allow_non_restored: bool,
) -> Result<(), EngineError> {
    let m = &loaded.metadata;
    if m.max_parallelism != max_parallelism {
        return Err(restore_error(
            loaded,
            format!(
                "the snapshot was taken with maxParallelism {} but the job has {max_parallelism}; key groups cannot move between them (set pipeline.max-parallelism to {})",
                m.max_parallelism, m.max_parallelism
            ),
        ));
    }
    for old in &m.vertices {
        let has_state = old.subtasks.iter().any(|s| !s.sections.is_empty());
        let Some(new) = vertices.iter().find(|v| v.uid == old.uid) else {
            if has_state && !allow_non_restored {
                return Err(restore_error(
                    loaded,
                    format!(
                        "state of operator `{}` (uid {}) has no matching operator in the job; pass --allow-non-restored-state to skip it",
                        old.name, old.uid
                    ),
                ));
            }
            if has_state {
                tracing::warn!(
                    "{}: skipping the state of `{}` (uid {}): no matching operator",
                    loaded.location,
                    old.name,
                    old.uid
                );
            }
            continue;
        };
        if new.parallelism > max_parallelism {
            return Err(restore_error(
                loaded,
                format!("`{}`: parallelism {} exceeds maxParallelism {max_parallelism}", new.name, new.parallelism),
            ));
        }
        for op in &old.operators {
            let matching = new.operators.iter().find(|o| o.index == op.index);
            match matching {
                Some(n) if n.layout == op.layout => {}
                Some(n) => {
                    return Err(restore_error(
                        loaded,
                        format!(
                            "operator `{}` (uid {}): incompatible state; the snapshot holds `{}` but the job's operator keeps `{}`",
                            n.name, old.uid, op.layout, n.layout
                        ),
                    ));
                }
                None if has_keyed_state(old, op.index) => {
                    return Err(restore_error(
                        loaded,
                        format!(
                            "operator `{}` (uid {}): the job's vertex `{}` has no operator for this state",
                            op.name, old.uid, new.name
                        ),
                    ));
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// Whether any old subtask wrote keyed state for the operator at `index`.
fn has_keyed_state(old: &VertexState, index: usize) -> bool {
    old.subtasks.iter().flat_map(|s| &s.sections).any(|x| {
        matches!(x.kind, SectionKind::Keyed { operator, .. } | SectionKind::Entries { operator, .. } if operator == index)
    })
}

/// A sink's restored committables and writer states.
pub struct SinkRestore {
    pub committables: Vec<Vec<u8>>,
    pub states: Vec<Vec<u8>>,
}

/// The keyed state of one key group, still encoded: each section of keyed
/// state with its operator, in manifest order, and each operator's chain of
/// entries sections (a base, then the changes of each later checkpoint).
#[derive(Default)]
pub struct KeyGroupState {
    keyed: Vec<(usize, SectionRef)>,
    chains: BTreeMap<usize, Vec<SectionRef>>,
}

/// The keyed state a new subtask owns, by key group.
pub type OwnedState = BTreeMap<u32, KeyGroupState>;

impl KeyGroupState {
    /// Hands the key group's state to `restore`, as (operator index in the
    /// chain, records): each section of keyed state, then each operator's
    /// chain of entries, merged. A chain is merged only when its turn comes
    /// and dropped after it, so a restore holds one merged chain at a time,
    /// not a second copy of the state.
    pub fn restore(
        &self,
        key_group: u32,
        mut restore: impl FnMut(usize, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        for (operator, section) in &self.keyed {
            restore(*operator, section.bytes())?;
        }
        for (operator, chain) in &self.chains {
            // The oldest snapshot's sections (one file) are the chain's base.
            let base = chain.iter().take_while(|s| s.same_file(&chain[0])).count();
            let sections: Vec<&[u8]> = chain.iter().map(SectionRef::bytes).collect();
            let merged = entries::merge(&sections, base)
                .map_err(|e| format!("operator {operator}, key group {key_group}: damaged state entries: {e}"))?;
            restore(*operator, &merged)?;
        }
        Ok(())
    }

    /// A key group with one section of keyed state per operator, in order.
    pub fn keyed(sections: Vec<(usize, SectionRef)>) -> KeyGroupState {
        KeyGroupState { keyed: sections, chains: BTreeMap::new() }
    }

    /// The encoded bytes, before merging.
    pub fn bytes(&self) -> u64 {
        let chains = self.chains.values().flatten();
        self.keyed.iter().map(|(_, s)| s).chain(chains).map(|s| s.bytes().len() as u64).sum()
    }
}

/// The keyed state that subtask `subtask` of `parallelism` owns, by key
/// group, as references into the loaded files: nothing is decoded yet.
pub fn owned_keyed(loaded: &Loaded, uid: &str, subtask: usize, parallelism: usize) -> Result<OwnedState, EngineError> {
    let mut owned = OwnedState::new();
    let Some(v) = loaded.metadata.vertex(uid) else { return Ok(owned) };
    let range = keygroup::range(subtask, loaded.metadata.max_parallelism, parallelism);
    for s in &v.subtasks {
        for sec in &s.sections {
            let (SectionKind::Keyed { operator, key_group } | SectionKind::Entries { operator, key_group }) = sec.kind
            else {
                continue;
            };
            if !range.contains(&(key_group as usize)) {
                continue;
            }
            let file = s.file_of(sec).ok_or_else(|| restore_error(loaded, "a section of keyed state names no file"))?;
            let bytes = loaded.section(file, sec.offset, sec.len).map_err(|e| restore_error(loaded, e))?;
            let group = owned.entry(key_group).or_default();
            match sec.kind {
                SectionKind::Entries { .. } => group.chains.entry(operator).or_default().push(bytes),
                _ => group.keyed.push((operator, bytes)),
            }
        }
    }
    Ok(owned)
}

/// A sink vertex's writer states with the old subtask that wrote each.
pub fn sink_states_by_subtask(loaded: &Loaded, uid: &str) -> Result<Vec<(usize, Vec<u8>)>, EngineError> {
    let Some(v) = loaded.metadata.vertex(uid) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for s in &v.subtasks {
        for sec in s.sections.iter().filter(|x| matches!(x.kind, SectionKind::SinkState)) {
            let Some(file) = s.file_of(sec) else { continue };
            let bytes = loaded.section(file, sec.offset, sec.len).map_err(|e| restore_error(loaded, e))?;
            out.push((s.subtask, bytes.bytes().to_vec()));
        }
    }
    Ok(out)
}

/// Every section of one kind of a vertex, across its old subtasks.
fn sections_of(
    loaded: &Loaded,
    uid: &str,
    want: impl Fn(&SectionKind) -> bool,
) -> Result<Option<Vec<Vec<u8>>>, EngineError> {
    let Some(v) = loaded.metadata.vertex(uid) else { return Ok(None) };
    let mut out = Vec::new();
    for s in &v.subtasks {
        for sec in s.sections.iter().filter(|x| want(&x.kind)) {
            let Some(file) = s.file_of(sec) else { continue };
            out.push(loaded.section(file, sec.offset, sec.len).map_err(|e| restore_error(loaded, e))?.bytes().to_vec());
        }
    }
    Ok(Some(out))
}

/// Every split of a source vertex; `None` if the snapshot does not have it.
pub fn splits_for(loaded: &Loaded, uid: &str) -> Result<Option<Vec<Vec<u8>>>, EngineError> {
    sections_of(loaded, uid, |k| matches!(k, SectionKind::Split))
}

/// A sink vertex's committables and writer states.
pub fn sink_for(loaded: &Loaded, uid: &str) -> Result<Option<SinkRestore>, EngineError> {
    let c = sections_of(loaded, uid, |k| matches!(k, SectionKind::Committable { .. }))?;
    let s = sections_of(loaded, uid, |k| matches!(k, SectionKind::SinkState))?;
    Ok(c.zip(s).map(|(committables, states)| SinkRestore { committables, states }))
}
