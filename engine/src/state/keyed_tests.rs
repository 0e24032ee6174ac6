//! Tests of [`super::keyed`] and [`super::keyed_view`].

use std::sync::Arc;

use super::StateView;
use super::codec::Reader;
use super::keyed::*;
use super::keyed_view::KeyedView;
use crate::operators::KeyGroupWriters;
use crate::operators::window::Keys;
use crate::state::entries;

#[test]
fn a_view_keeps_the_values_of_its_moment_and_restores_them() {
    let keys = Arc::new(Keys::new(vec![], vec![]).unwrap());
    let mut s: KeyedState<i64> = KeyedState::default();
    s.insert(b"", 1);
    let view = s.view(keys.clone());
    *s.get_mut(b"").unwrap() = 2;
    let mut out = KeyGroupWriters::new();
    view.encode(128, &mut out, &|| true).unwrap();
    let mut back: KeyedState<i64> = KeyedState::default();
    back.restore(&out[&0].buf).unwrap();
    assert_eq!(back.get(b""), Some(&1));
    assert_eq!(s.remove(b""), Some(2));
    assert!(s.is_empty());
    s.insert(b"x", 3);
    assert_eq!(s.entries().len(), 1);
}

/// The records of a view as `encode` writes them, per key group.
fn full(view: &KeyedView<i64>) -> KeyGroupWriters<'static> {
    let mut out = KeyGroupWriters::new();
    view.encode(8, &mut out, &|| true).unwrap();
    out
}

fn as_map(records: &[u8]) -> std::collections::BTreeMap<Vec<u8>, i64> {
    let mut r = Reader::new(records);
    let mut m = std::collections::BTreeMap::new();
    while !r.is_empty() {
        let k = r.bytes().unwrap().to_vec();
        m.insert(k, r.i64().unwrap());
    }
    m
}

/// Keys of one BIGINT column, as the keyed exchange encodes them.
fn int_keys() -> (Arc<Keys>, impl Fn(u64) -> Vec<u8>) {
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::DataType;
    use datafusion_physical_expr::expressions::Column;
    let col: Arc<dyn datafusion_physical_expr::PhysicalExpr> = Arc::new(Column::new("k", 0));
    let keys = Arc::new(Keys::new(vec![col], vec![DataType::Int64]).unwrap());
    let converter = arrow::row::RowConverter::new(vec![arrow::row::SortField::new(DataType::Int64)]).unwrap();
    let key = move |i: u64| {
        let col: ArrayRef = Arc::new(Int64Array::from(vec![i as i64]));
        converter.convert_columns(&[col]).unwrap().row(0).as_ref().to_vec()
    };
    (keys, key)
}

/// Random puts, updates, removes and sweeps over `n_keys` keys, a view after
/// each round: the chain of a base and the changes of each later view merges,
/// per key group, into what a full encoding of the last view writes, and that
/// equals a model of the state. Returns the most keys that were ever on disk.
fn random_rounds(mut s: KeyedState<i64>, n_keys: u64, ops: usize) -> usize {
    use crate::state::EntryView;
    let (keys, key) = int_keys();
    let mut model: std::collections::BTreeMap<Vec<u8>, i64> = Default::default();
    let mut chains: std::collections::BTreeMap<u32, Vec<Vec<u8>>> = Default::default();
    let mut spilled = 0;
    let mut rng = 7u64;
    let mut next = || {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        rng >> 33
    };
    for round in 0..8 {
        for _ in 0..ops {
            let k = key(next() % n_keys);
            match next() % 8 {
                0 => {
                    assert_eq!(s.remove(&k), model.remove(&k), "round {round}");
                }
                1 | 2 => {
                    if let Some(v) = s.get_mut(&k) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&k) {
                        *v += 1;
                    }
                }
                3 => assert_eq!(s.get(&k), model.get(&k), "round {round}"),
                _ => {
                    s.insert(&k, round);
                    model.insert(k, round);
                }
            }
            spilled = spilled.max(s.spilled());
        }
        if round == 5 {
            // A sweep, as a join's TTL does: every value changes, odd ones go.
            s.retain_mut(|v| {
                *v += 100;
                *v % 2 == 0
            });
            model.retain(|_, v| {
                *v += 100;
                *v % 2 == 0
            });
        }
        s.health().unwrap();
        assert_eq!(s.len(), model.len(), "round {round}");
        let view = s.view(keys.clone());
        let mut out = KeyGroupWriters::new();
        if round == 0 {
            assert!(!view.knows_changes(), "the first view knows no earlier one");
            view.encode_base(8, &mut out, &|| true).unwrap();
        } else {
            assert!(view.knows_changes());
            view.encode_changes(8, 0..8, &mut out, &|| true).unwrap();
        }
        for (kg, w) in out {
            chains.entry(kg).or_default().push(w.buf);
        }
        // Later writes, loads and spills change nothing the view writes.
        for i in 0..n_keys / 2 {
            s.insert(&key(i), -1);
        }
        let want = full(&view);
        let mut all = std::collections::BTreeMap::new();
        for kg in 0..8 {
            let chain: Vec<&[u8]> =
                chains.get(&kg).map(|c| c.iter().map(|b| b.as_slice()).collect()).unwrap_or_default();
            let merged = entries::merge(&chain, 1).unwrap();
            let expect = want.get(&kg).map(|w| as_map(&w.buf)).unwrap_or_default();
            assert_eq!(as_map(&merged), expect, "round {round}, key group {kg}");
            all.extend(expect);
        }
        assert_eq!(all, model, "round {round}: the view is the state at its barrier");
        for i in 0..n_keys / 2 {
            match model.get(&key(i)) {
                Some(v) => s.insert(&key(i), *v),
                None => {
                    s.remove(&key(i));
                    0
                }
            };
        }
    }
    spilled
}

#[test]
fn a_base_and_the_changes_of_each_later_view_merge_into_the_state_of_the_last() {
    assert_eq!(random_rounds(KeyedState::default(), 300, 200), 0);
}

#[test]
fn on_the_disk_backend_views_and_changes_hold_spilled_keys_too() {
    let dir = tempfile::tempdir().unwrap();
    // About 200 keys fit the heap's share of 40 KiB; the state has 3,000.
    let backend = crate::state::disk::DiskBackend::open(Some(dir.path()), 40 << 10).unwrap();
    let s = crate::state::disk::with_backend(Some(&backend), KeyedState::default);
    let spilled = random_rounds(s, 3000, 4000);
    assert!(spilled > 1000, "most keys were on disk at some point: {spilled}");
}

#[test]
fn changes_hold_only_what_was_written() {
    use crate::state::EntryView;
    let keys = Arc::new(Keys::new(vec![], vec![]).unwrap());
    let mut s: KeyedState<i64> = KeyedState::default();
    for i in 0..1000u32 {
        s.insert(&i.to_le_bytes(), 1);
    }
    let _ = s.view(keys.clone());
    *s.get_mut(&5u32.to_le_bytes()).unwrap() = 2;
    s.remove(&6u32.to_le_bytes());
    let _ = s.get(&7u32.to_le_bytes());
    let view = s.view(keys);
    let mut out = KeyGroupWriters::new();
    view.encode_changes(128, 0..128, &mut out, &|| true).unwrap();
    let mut base = KeyGroupWriters::new();
    view.encode_base(128, &mut base, &|| true).unwrap();
    let bytes = |w: &KeyGroupWriters| w.values().map(|w| w.buf.len()).sum::<usize>();
    assert_eq!(entries::merge(&[&base[&0].buf, &out[&0].buf], 1).unwrap().len(), 999 * (4 + 4 + 8));
    assert!(bytes(&out) * 100 < bytes(&base), "{} of {}", bytes(&out), bytes(&base));
}
