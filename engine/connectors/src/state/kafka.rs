//! The kafka connector's checkpoint state: source splits (`K`), sink
//! committables (`T`) and sink states (`X`); see the table in the parent module.

use super::{Dec, Enc, StateError, TAG_KAFKA_SINK_STATE, TAG_KAFKA_SPLIT, TAG_KAFKA_TXN};

/// One topic-partition and the offset of the next record to read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartitionSplit {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    /// A bounded read's stop offset (exclusive).
    pub stop: Option<i64>,
}

fn text(b: &[u8], what: &'static str) -> Result<String, StateError> {
    String::from_utf8(b.to_vec()).map_err(|_| StateError::NameNotUtf8 { what })
}

impl PartitionSplit {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StateError> {
        Ok(Enc::new(TAG_KAFKA_SPLIT)
            .u32(self.partition as u32)
            .u64(self.next_offset as u64)
            .opt_u64(self.stop.map(|s| s as u64))
            .bytes(self.topic.as_bytes())?
            .finish())
    }

    pub(crate) fn decode(blob: &[u8]) -> Result<Self, StateError> {
        let mut d = Dec::new(blob, TAG_KAFKA_SPLIT)?;
        let partition = d.u32()? as i32;
        let next_offset = d.u64()? as i64;
        let stop = d.opt_u64()?.map(|s| s as i64);
        let topic = text(d.bytes()?, "a kafka source split")?;
        d.end()?;
        Ok(PartitionSplit { topic, partition, next_offset, stop })
    }
}

/// A pre-committed transaction, to commit when its checkpoint completes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TxnCommittable {
    pub checkpoint: u64,
    pub transactional_id: String,
}

impl TxnCommittable {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StateError> {
        Ok(Enc::new(TAG_KAFKA_TXN).u64(self.checkpoint).bytes(self.transactional_id.as_bytes())?.finish())
    }

    pub(crate) fn decode(blob: &[u8]) -> Result<Self, StateError> {
        let mut d = Dec::new(blob, TAG_KAFKA_TXN)?;
        let checkpoint = d.u64()?;
        let transactional_id = text(d.bytes()?, "a kafka sink committable")?;
        d.end()?;
        Ok(TxnCommittable { checkpoint, transactional_id })
    }
}

/// Where a sink subtask's transactional ids stood at a checkpoint: ids after
/// `sequence` may belong to transactions that must be aborted on recovery.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KafkaSinkState {
    pub prefix: String,
    pub subtask: u32,
    pub sequence: u64,
}

impl KafkaSinkState {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StateError> {
        Ok(Enc::new(TAG_KAFKA_SINK_STATE).u32(self.subtask).u64(self.sequence).bytes(self.prefix.as_bytes())?.finish())
    }

    pub(crate) fn decode(blob: &[u8]) -> Result<Self, StateError> {
        let mut d = Dec::new(blob, TAG_KAFKA_SINK_STATE)?;
        let subtask = d.u32()?;
        let sequence = d.u64()?;
        let prefix = text(d.bytes()?, "a kafka sink state")?;
        d.end()?;
        Ok(KafkaSinkState { prefix, subtask, sequence })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_blobs_round_trip() {
        let s = PartitionSplit { topic: "orders".into(), partition: 3, next_offset: 1234, stop: Some(2000) };
        assert_eq!(PartitionSplit::decode(&s.encode().unwrap()).unwrap(), s);
        let c = TxnCommittable { checkpoint: 9, transactional_id: "p-0-4".into() };
        assert_eq!(TxnCommittable::decode(&c.encode().unwrap()).unwrap(), c);
        let k = KafkaSinkState { prefix: "p".into(), subtask: 2, sequence: 17 };
        assert_eq!(KafkaSinkState::decode(&k.encode().unwrap()).unwrap(), k);
        assert_eq!(
            TxnCommittable::decode(&s.encode().unwrap()).unwrap_err().to_string(),
            "expected a kafka sink committable but found a kafka source split"
        );
    }
}
