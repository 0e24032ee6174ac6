//! A window aggregation on the disk backend with a budget so small that its
//! panes spill, run after run, against the same operator on the heap: what
//! fires, what a checkpoint writes (whole and as a base and changes), and
//! what restores from it must be the same.

use std::sync::Arc;

use super::super::view_tests::{MAX_PARALLELISM, batch, encode, entries_of, first, later, rows, window};
use super::super::{StreamEvent, StreamOperator};
use super::MAX_RUNS;
use crate::state::disk::{DiskBackend, with_backend};

/// Fails with the first line that differs, not every line.
fn same(got: &[String], want: &[String], what: &str) {
    let diff = got.iter().zip(want).find(|(g, w)| g != w);
    assert!(
        got.len() == want.len() && diff.is_none(),
        "{what}: {} lines against {}; first difference {diff:?}",
        got.len(),
        want.len()
    );
}

fn lines(out: &[StreamEvent]) -> Vec<String> {
    let mut lines = Vec::new();
    for e in out {
        if let StreamEvent::Batch(b) = e {
            for r in 0..b.num_rows() {
                let cells: Vec<String> =
                    b.columns().iter().map(|c| arrow::util::display::array_value_to_string(c, r).unwrap()).collect();
                lines.push(cells.join(","));
            }
        }
    }
    lines.sort();
    lines
}

/// The names of the window runs in the backend's directory.
fn run_files(backend: &DiskBackend) -> Vec<String> {
    std::fs::read_dir(backend.dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("window-run"))
        .collect()
}

/// Restores `state` (per key group, each a chain of entries or one full
/// encoding) into an operator on the heap.
fn restored(state: &[(u32, Vec<u8>)], chain: bool) -> Box<dyn StreamOperator> {
    let mut op = window();
    for kg in 0..MAX_PARALLELISM as u32 {
        let parts: Vec<&[u8]> = state.iter().filter(|(k, _)| *k == kg).map(|(_, b)| b.as_slice()).collect();
        if chain {
            op.restore(kg, &crate::state::entries::merge(&parts, 1).unwrap()).unwrap();
        } else {
            for p in parts {
                op.restore(kg, p).unwrap();
            }
        }
    }
    op
}

#[test]
fn spilled_panes_fire_checkpoint_and_restore_as_panes_in_memory_do() {
    let dir = tempfile::tempdir().unwrap();
    let backend = DiskBackend::open(Some(dir.path()), 16 << 10).unwrap();
    let mut disk = with_backend(Some(&backend), window);
    let mut heap = window();
    let (mut out_disk, mut out_heap) = (Vec::new(), Vec::new());
    for (op, out) in [(&mut disk, &mut out_disk), (&mut heap, &mut out_heap)] {
        op.process_batch(first(), out).unwrap();
        op.process_watermark(300, out).unwrap();
    }
    let spilled = disk.state_keys_on_disk().unwrap();
    assert!(spilled > 1000, "the panes spilled: {spilled} groups on disk");
    assert_eq!(heap.state_keys_on_disk(), Some(0), "panes on the heap backend never spill");
    let base = entries_of(disk.snapshot().unwrap().unwrap().as_ref(), false);

    // Updates to keys in runs, and new keys, batch after batch: the panes
    // spill again, and a pane's runs are merged when there are more than
    // MAX_RUNS; then a watermark fires the first window, which spilled.
    let later = later();
    for (op, out) in [(&mut disk, &mut out_disk), (&mut heap, &mut out_heap)] {
        for at in (0..later.num_rows()).step_by(200) {
            op.process_batch(later.slice(at, 200.min(later.num_rows() - at)), out).unwrap();
        }
        // Batches large enough to spill on their own (see MIN_RUN_BYTES),
        // over keys that repeat from batch to batch.
        for b in 0..12 {
            let rows: Vec<(i64, f64, &str, i64)> =
                (0..700).map(|j| (10_000 + (b * 700 + j) % 3000, 0.25, "m", 1100 + j % 800)).collect();
            op.process_batch(batch(&rows), out).unwrap();
        }
        op.process_batch(batch(&[(3, 1.0, "q", 1200), (9000, 4.0, "t", 1450), (5, 2.5, "a", 999)]), out).unwrap();
        op.process_watermark(1500, out).unwrap();
    }
    assert!(!lines(&out_heap).is_empty(), "the watermark fires a window");
    let runs = run_files(&backend);
    assert!(runs.len() <= 3 * MAX_RUNS, "at most MAX_RUNS runs for each of the 3 panes: {runs:?}");
    let newest = runs.iter().filter_map(|n| n.rsplit('-').next()?.parse::<usize>().ok()).max().unwrap_or(0);
    assert!(newest > runs.len() + 2 * MAX_RUNS, "runs were written ({newest}) and merged into fewer ({})", runs.len());
    same(&lines(&out_disk), &lines(&out_heap), "a spilled window fires what one in memory does");
    assert!(
        disk.state_keys().unwrap() > heap.state_keys().unwrap(),
        "keys in more than one run: {:?} against {:?}",
        disk.state_keys(),
        heap.state_keys()
    );

    let changes = entries_of(disk.snapshot().unwrap().unwrap().as_ref(), true);
    let whole = encode(disk.snapshot().unwrap().unwrap().as_ref());
    let expected = rows(heap.as_mut());
    assert!(expected.len() > 1000, "{}", expected.len());
    let chained: Vec<(u32, Vec<u8>)> = base.into_iter().chain(changes).collect();
    same(&rows(restored(&chained, true).as_mut()), &expected, "restored from a base and its changes");
    same(&rows(restored(&whole, false).as_mut()), &expected, "restored from a full snapshot");
    same(&rows(disk.as_mut()), &expected, "the spilled operator fires the rest");
}

#[test]
fn a_restore_beyond_the_budget_spills_and_runs_are_deleted_when_their_pane_fires() {
    let mut heap = window();
    let mut out = Vec::new();
    heap.process_batch(first(), &mut out).unwrap();
    heap.process_batch(later(), &mut out).unwrap();
    let state = encode(heap.snapshot().unwrap().unwrap().as_ref());
    let dir = tempfile::tempdir().unwrap();
    let backend = DiskBackend::open(Some(dir.path()), 16 << 10).unwrap();
    let mut disk = with_backend(Some(&backend), window);
    for (kg, bytes) in &state {
        disk.restore(*kg, bytes).unwrap();
    }
    assert!(disk.state_keys_on_disk().unwrap() > 0, "the restore spilled");
    let runs = || run_files(&backend).len();
    assert!(runs() > 0);
    same(&rows(disk.as_mut()), &rows(heap.as_mut()), "a restored, spilled window");
    assert_eq!(runs(), 0, "every pane fired, and its runs are gone");
    assert_eq!(disk.state_keys_on_disk(), Some(0));
    drop(Arc::clone(&backend));
}
