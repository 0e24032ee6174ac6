//! [`StateValue::heap_size`] against the bytes values really allocate: the
//! disk backend's memory budget counts keyed state by it. This test binary's
//! allocator counts the bytes each thread has live, so other tests running
//! beside it do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::codec::{Reader, Writer};
use super::keyed::StateValue;
use super::ttl::Stamped;
use super::value::Val;
use crate::operators::dedup::Kept;
use crate::operators::group_agg::Group;
use crate::operators::group_agg::accs::Acc;
use crate::operators::join::logic::{Entry, Sides};
use crate::operators::normalize::LastRow;
use crate::operators::packed::PackedRow;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Decodes `N` copies of `value` (as a restore or an unspill makes them) and
/// checks that their estimate covers the bytes they allocated, and is at
/// most a quarter more (block rounding) plus 16 bytes a value.
fn check<V: StateValue + std::fmt::Debug>(what: &str, value: V) {
    const N: usize = 1000;
    let mut w = Writer::new();
    value.encode(&mut w);
    let mut held: Vec<V> = Vec::with_capacity(N);
    // One decode first: what a decoder keeps per thread (a scratch buffer)
    // is not per value.
    drop(V::decode(&mut Reader::new(&w.buf)).unwrap());
    let before = live();
    for _ in 0..N {
        held.push(V::decode(&mut Reader::new(&w.buf)).unwrap());
    }
    let allocated = (live() - before) as usize;
    let estimated: usize = held.iter().map(|v| v.heap_size().expect("an estimate")).sum();
    assert!(
        estimated >= allocated && estimated <= allocated + allocated / 4 + 16 * N,
        "{what}: estimated {estimated} heap bytes for {N} values that allocated {allocated}: {value:?}"
    );
}

#[test]
fn value_estimates_cover_what_values_allocate() {
    let long = "0123456789abcdef".repeat(4);
    let accs = vec![
        Acc::Count(3),
        Acc::SumI64 { sum: 5, n: 3 },
        Acc::ExtremeStr { max: true, value: Some(long.clone().into()) },
        Acc::ExtremeI64 { max: true, value: Some(7) },
    ];
    check("a group", Group::for_test(3, accs));
    let cells = vec![Val::I64(1), Val::Str(long.clone().into()), Val::Null, Val::Str("short".into()), Val::F64(0.5)];
    check("a kept row", Stamped { written: 1, value: Kept::Row { row: PackedRow::pack(&cells), ts: 5 } });
    check("a last row", Stamped { written: 1, value: LastRow::for_test(cells) });
    let entry = |n: usize| Entry { row: vec![7u8; n].into(), count: 1, assoc: 0, written: 0 };
    check("join sides", Sides { rows: [vec![entry(40), entry(90)], vec![entry(12)]] });
}
