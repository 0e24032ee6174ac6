use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, Int64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion_physical_expr::expressions::Column;

use super::*;
use crate::checkpoint::store::SectionRef;
use crate::operators::StreamEvent;

const MAX_PARALLELISM: usize = 16;

fn batch(keys: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(keys.to_vec()))]).unwrap()
}

fn key_group(k: i64) -> u32 {
    let col: arrow::array::ArrayRef = Arc::new(Int64Array::from(vec![k]));
    let h = crate::keygroup::hash_rows(&[col], 1).unwrap()[0];
    crate::keygroup::key_group(h, MAX_PARALLELISM) as u32
}

/// What the fake operator saw, in order.
#[derive(Default)]
struct Seen {
    restored: Vec<(u32, Vec<u8>)>,
    rows: Vec<i64>,
}

/// A keyed operator that fails on a row whose key group it has not restored.
struct Keyed {
    seen: Arc<Mutex<Seen>>,
    owned: BTreeSet<u32>,
}

impl StreamOperator for Keyed {
    fn name(&self) -> String {
        "Keyed".into()
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let mut seen = self.seen.lock().unwrap();
        for k in batch.column(0).as_primitive::<Int64Type>().values() {
            let kg = key_group(*k);
            if self.owned.contains(&kg) && !seen.restored.iter().any(|(g, _)| *g == kg) {
                return Err(OpError::Other(format!("row {k} of key group {kg} before its state")));
            }
            seen.rows.push(*k);
        }
        out.push(StreamEvent::Batch(batch));
        Ok(())
    }

    fn state_layout(&self) -> Option<String> {
        Some("keyed".into())
    }

    fn restore(&mut self, key_group: u32, state: &[u8]) -> Result<(), OpError> {
        if state == b"bad" {
            return Err(OpError::Other("damaged".into()));
        }
        self.seen.lock().unwrap().restored.push((key_group, state.to_vec()));
        Ok(())
    }
}

/// A `Lazy` over key groups `groups` (state: the key group's number as
/// text), and the chain's operators.
fn lazy_over(groups: &[u32]) -> (Lazy, Vec<Box<dyn StreamOperator>>, Arc<Mutex<Seen>>) {
    let owned: OwnedState = groups
        .iter()
        .map(|kg| (*kg, KeyGroupState::keyed(vec![(0, SectionRef::whole(kg.to_string().into_bytes()))])))
        .collect();
    let keys: Vec<PhysExpr> = vec![Arc::new(Column::new("k", 0))];
    let origin = Origin { location: "file:///sp".into(), vertex: "Keyed".into(), uid: "u1".into(), subtask: 0 };
    let lazy = Lazy::new(owned, vec![keys], MAX_PARALLELISM, origin).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let op = Keyed { seen: seen.clone(), owned: groups.iter().copied().collect() };
    (lazy, vec![Box::new(op)], seen)
}

fn keys_of(b: &RecordBatch) -> Vec<i64> {
    b.column(0).as_primitive::<Int64Type>().values().to_vec()
}

/// Drives `lazy` as the task loop does: each batch admitted, its rows that
/// may go processed, then one key group restored and its waiting rows
/// processed; at the end, every key group.
fn drive(lazy: &mut Lazy, ops: &mut [Box<dyn StreamOperator>], batches: &[Vec<i64>]) -> Result<(), OpError> {
    let mut out = Vec::new();
    for keys in batches {
        if let Some(now) = lazy.admit(0, batch(keys))? {
            ops[0].process_batch(now, &mut out)?;
        }
        for (_, rows) in lazy.restore_next(ops)?.unwrap_or_default() {
            ops[0].process_batch(rows, &mut out)?;
        }
    }
    while let Some(waited) = lazy.restore_next(ops)? {
        for (_, rows) in waited {
            ops[0].process_batch(rows, &mut out)?;
        }
    }
    Ok(())
}

#[test]
fn no_row_reaches_an_operator_before_its_key_groups_state_and_each_key_keeps_its_order() {
    let keys: Vec<i64> = (0..400).map(|i| (i * 7919) % 97).collect();
    let groups: BTreeSet<u32> = keys.iter().map(|k| key_group(*k)).collect();
    assert!(groups.len() > 8, "the keys span many key groups");
    let (mut lazy, mut ops, seen) = lazy_over(&groups.iter().copied().collect::<Vec<_>>());
    let batches: Vec<Vec<i64>> = keys.chunks(13).map(<[i64]>::to_vec).collect();
    drive(&mut lazy, &mut ops, &batches).unwrap();
    assert!(lazy.done());
    let seen = seen.lock().unwrap();
    // Every key group restored exactly once, with its own state.
    let restored: Vec<u32> = seen.restored.iter().map(|(g, _)| *g).collect();
    assert_eq!(restored.iter().copied().collect::<BTreeSet<_>>(), groups);
    assert_eq!(restored.len(), groups.len(), "a key group was restored twice: {restored:?}");
    assert!(seen.restored.iter().all(|(g, s)| s == g.to_string().as_bytes()));
    // Every row processed once; rows of one key in arrival order (here,
    // rows of a key are its occurrences, so per key the count must match and
    // the sequence of keys per key group must be a subsequence of the input).
    assert_eq!(seen.rows.len(), keys.len());
    for kg in &groups {
        let input: Vec<i64> = keys.iter().copied().filter(|k| key_group(*k) == *kg).collect();
        let processed: Vec<i64> = seen.rows.iter().copied().filter(|k| key_group(*k) == *kg).collect();
        assert_eq!(processed, input, "key group {kg} out of order");
    }
}

#[test]
fn rows_that_waited_longest_have_their_key_group_restored_first() {
    // Three keys of distinct key groups.
    let mut picked: Vec<i64> = Vec::new();
    for k in 0i64.. {
        if picked.iter().all(|p| key_group(*p) != key_group(k)) {
            picked.push(k);
        }
        if picked.len() == 3 {
            break;
        }
    }
    let (a, b, c) = (picked[0], picked[1], picked[2]);
    let (ga, gb, gc) = (key_group(a), key_group(b), key_group(c));
    let mut pending = vec![ga, gb, gc];
    pending.sort();
    let (mut lazy, _ops, _seen) = lazy_over(&pending);
    assert_eq!(lazy.next(), Some(pending[0]), "without waiting rows: in key group order");
    assert!(lazy.admit(0, batch(&[c, b])).unwrap().is_none(), "every row waits");
    assert!(lazy.has_waiting());
    assert_eq!(lazy.next(), Some(gc));
    lazy.admit(0, batch(&[a])).unwrap();
    assert_eq!(lazy.next(), Some(gc), "c arrived first");
}

#[test]
fn rows_of_restored_or_foreign_key_groups_pass_at_once_in_their_order() {
    let keys: Vec<i64> = (0..50).collect();
    let first = key_group(keys[0]);
    let (mut lazy, mut ops, _seen) = lazy_over(&[first]);
    let now = lazy.admit(0, batch(&keys)).unwrap().unwrap();
    let expected: Vec<i64> = keys.iter().copied().filter(|k| key_group(*k) != first).collect();
    assert_eq!(keys_of(&now), expected);
    let waited = lazy.restore_next(&mut ops).unwrap().unwrap();
    let waited: Vec<i64> = waited.iter().flat_map(|(_, b)| keys_of(b)).collect();
    assert_eq!(waited, keys.iter().copied().filter(|k| key_group(*k) == first).collect::<Vec<_>>());
    assert!(lazy.done());
    assert!(lazy.admit(0, batch(&keys)).unwrap().is_some_and(|b| b.num_rows() == keys.len()));
}

#[test]
fn a_damaged_key_group_fails_with_the_snapshot_vertex_and_uid() {
    let owned: OwnedState =
        [(3u32, KeyGroupState::keyed(vec![(0, SectionRef::whole(b"bad".to_vec()))]))].into_iter().collect();
    let origin =
        Origin { location: "s3://b/sp-1".into(), vertex: "GroupAggregate".into(), uid: "u7".into(), subtask: 1 };
    let keys: Vec<PhysExpr> = vec![Arc::new(Column::new("k", 0))];
    let mut lazy = Lazy::new(owned, vec![keys], MAX_PARALLELISM, origin).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut ops: Vec<Box<dyn StreamOperator>> = vec![Box::new(Keyed { seen, owned: BTreeSet::new() })];
    let err = lazy.restore_next(&mut ops).unwrap_err().to_string();
    assert!(err.contains("s3://b/sp-1") && err.contains("u7") && err.contains("damaged"), "{err}");
}

#[test]
fn nothing_to_restore_is_not_lazy_and_only_keyed_operators_can_hold_a_watermark() {
    let origin = Origin { location: "x".into(), vertex: "v".into(), uid: "u".into(), subtask: 0 };
    assert!(Lazy::new(OwnedState::new(), vec![], MAX_PARALLELISM, origin).is_none());
    let (_lazy, ops, _seen) = lazy_over(&[1]);
    assert!(watermark_needs_state(&ops), "operators read state on watermarks unless they say otherwise");
    assert!(!watermark_needs_state(&[]));
}
