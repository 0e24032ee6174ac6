//! Recovery of an exactly-once Kafka sink, before any writer of a restored
//! (or fresh) job starts; the protocol and its invariants are stated in
//! `sink.rs`. What recovery does with each transaction is decided from the
//! coordinator's state alone ([`restored_action`], [`lingering_action`]).

use std::collections::BTreeMap;

use rdkafka::producer::Producer;

use super::protocol::{self, TRANSACTIONAL_ID_NOT_FOUND};
use super::sink::{Deliveries, default_prefix, hint, new_producer, transactional_id};
use super::{Guarantee, KafkaConfig, REQUEST_TIMEOUT, kafka_error};
use crate::state::kafka::{KafkaSinkState, TxnCommittable};
use crate::{ConnectorError, SinkContext};

/// What recovery does with one transactional id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Action {
    /// End the open transaction with a commit (`EndTxn`).
    Commit,
    /// Nothing: committed already, or nothing open.
    Nothing,
    /// Abort whatever is open and bump the epoch (`InitProducerId`), so a zombie
    /// producer of the id can commit nothing.
    Fence,
    /// The transaction was aborted: its rows are lost (the broker's timeout passed).
    Lost,
}

/// A transaction that the restored checkpoint covers, in a coordinator `state`.
pub(crate) fn restored_action(state: &str) -> Action {
    match state {
        "Ongoing" => Action::Commit,
        // Committed already, by the writer before the crash or by an earlier recovery.
        "PrepareCommit" | "CompleteCommit" | "Empty" => Action::Nothing,
        _ => Action::Lost,
    }
}

/// A transaction of an old writer after the restored checkpoint: it belongs to
/// no completed checkpoint. `Empty` is fenced too: a live zombie producer may
/// not have added a partition yet.
pub(crate) fn lingering_action(state: &str) -> Action {
    match state {
        "Ongoing" | "Empty" | "PrepareEpochFence" => Action::Fence,
        _ => Action::Nothing,
    }
}

/// Commits a restored committable's transaction through its coordinator.
pub(super) fn commit_restored(table: &str, cfg: &KafkaConfig, c: &TxnCommittable) -> Result<(), ConnectorError> {
    let mut client = protocol::Client::new(&cfg.bootstrap, REQUEST_TIMEOUT);
    let err = |m: String| kafka_error(table, m);
    let id = &c.transactional_id;
    let state = client.describe(id).map_err(|e| err(format!("cannot describe transaction '{id}': {e}")))?;
    if state.error_code == TRANSACTIONAL_ID_NOT_FOUND {
        // Expired (transactional.id.expiration.ms) long after it was committed.
        return Ok(());
    }
    if state.error_code != protocol::NONE {
        return Err(err(format!("cannot describe transaction '{id}': {}", protocol::error_name(state.error_code))));
    }
    match restored_action(&state.state) {
        Action::Commit => {
            let code = client
                .end_txn(id, state.producer_id, state.producer_epoch, true)
                .map_err(|e| err(format!("cannot commit transaction '{id}': {e}")))?;
            if code != protocol::NONE {
                return Err(err(format!(
                    "cannot commit transaction '{id}' of checkpoint {}: {}",
                    c.checkpoint,
                    protocol::error_name(code)
                )));
            }
            Ok(())
        }
        Action::Nothing => Ok(()),
        Action::Fence | Action::Lost => {
            let other = &state.state;
            // Aborted: the broker's transaction timeout passed before recovery, as
            // in Flink this loses the rows; say so loudly.
            eprintln!(
                "sluice: table `{table}`: transaction '{id}' of completed checkpoint {} is {other}: its rows are lost; the job was down longer than 'properties.transaction.timeout.ms' ({} ms)",
                c.checkpoint, cfg.transaction_timeout_ms
            );
            Ok(())
        }
    }
}

/// Aborts (and fences) a transactional id's open transaction by initializing
/// a producer with that id.
fn abort_by_init(table: &str, cfg: &KafkaConfig, id: &str) -> Result<(), ConnectorError> {
    let p = new_producer(table, cfg, &Deliveries::default(), 0, Some(id))?;
    p.init_transactions(REQUEST_TIMEOUT)
        .map_err(|e| kafka_error(table, format!("cannot abort the lingering transaction '{id}': {}", hint(&e))))
}

/// Recovery of an exactly-once Kafka sink before any writer starts; see the
/// module's protocol. `committables` are those of the restored checkpoint.
pub(crate) fn recover(ctx: &SinkContext, cfg: &KafkaConfig, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
    if cfg.guarantee != Guarantee::ExactlyOnce {
        return Ok(());
    }
    let state_err = |source| ConnectorError::State { table: ctx.table.clone(), source };
    for c in committables {
        commit_restored(&ctx.table, cfg, &TxnCommittable::decode(c).map_err(state_err)?)?;
    }
    let prefix = cfg.transactional_id_prefix.clone().unwrap_or_else(|| default_prefix(ctx));
    // Where each old writer stood: its last pre-committed sequence.
    let mut from: BTreeMap<usize, u64> = BTreeMap::new();
    for s in ctx.restored_states.iter().flatten() {
        let s = KafkaSinkState::decode(s).map_err(state_err)?;
        from.insert(s.subtask as usize, s.sequence + 1);
    }
    // New writers start after every restored sequence (see `KafkaSink::new`);
    // ids up to there may hold transactions of an attempt that never checkpointed.
    let floor = from.values().max().copied().unwrap_or(1);
    let mut client = protocol::Client::new(&cfg.bootstrap, REQUEST_TIMEOUT);
    let mut subtask = 0;
    loop {
        let start = from.get(&subtask).copied().unwrap_or(floor);
        let mut found = 0;
        let mut sequence = start;
        loop {
            let id = transactional_id(&prefix, subtask, sequence);
            let state = client
                .describe(&id)
                .map_err(|e| kafka_error(&ctx.table, format!("cannot describe transaction '{id}': {e}")))?;
            if state.error_code == TRANSACTIONAL_ID_NOT_FOUND {
                if sequence >= floor {
                    break;
                }
            } else {
                found += 1;
                if lingering_action(&state.state) == Action::Fence {
                    abort_by_init(&ctx.table, cfg, &id)?;
                }
            }
            sequence += 1;
        }
        // Subtasks beyond this parallelism and the restored one's wrote only if
        // an attempt had more: probe until one never did.
        let known = subtask < ctx.parallelism || from.contains_key(&subtask);
        if !known && found == 0 {
            break;
        }
        subtask += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_commits_only_what_the_checkpoint_covers_and_fences_the_rest() {
        assert_eq!(restored_action("Ongoing"), Action::Commit);
        for done in ["PrepareCommit", "CompleteCommit", "Empty"] {
            assert_eq!(restored_action(done), Action::Nothing, "{done}");
        }
        for aborted in ["PrepareAbort", "CompleteAbort", "Dead"] {
            assert_eq!(restored_action(aborted), Action::Lost, "{aborted}");
        }
        for open in ["Ongoing", "Empty", "PrepareEpochFence"] {
            assert_eq!(lingering_action(open), Action::Fence, "{open}");
        }
        for ended in ["PrepareCommit", "CompleteCommit", "PrepareAbort", "CompleteAbort"] {
            assert_eq!(lingering_action(ended), Action::Nothing, "{ended}");
        }
    }
}
