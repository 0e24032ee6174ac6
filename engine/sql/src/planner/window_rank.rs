//! Window Top-N: a Top-N whose PARTITION BY holds `window_start` and
//! `window_end` of a window TVF or a window aggregation (through filters and
//! projections that pass both through) ranks each window once, when it fires.

use crate::expr::Expr;
use crate::logical::{PlanNode, Rel, SortKey, WindowRank};

/// The windows of a relation: its `window_start` and `window_end` columns,
/// the time zone windows align to, and its time column (the window TVF's time
/// attribute, or a window aggregation's `window_time`), when it has them.
struct Windows {
    start: usize,
    end: usize,
    time_zone: Option<String>,
    time: Option<usize>,
}

fn window_columns(rel: &Rel) -> Option<Windows> {
    match &rel.node {
        PlanNode::WindowAssign { input, window } => {
            let n = input.schema.fields().len();
            Some(Windows { start: n, end: n + 1, time_zone: window.time_zone.clone(), time: Some(window.time_col) })
        }
        // Output: window_start, window_end, window_time, keys..., aggregates...
        PlanNode::WindowAggregate { window, .. } => {
            Some(Windows { start: 0, end: 1, time_zone: window.time_zone.clone(), time: Some(2) })
        }
        PlanNode::Filter { input, .. } => window_columns(input),
        PlanNode::Project { input, exprs } => {
            let w = window_columns(input)?;
            let passed = |col: usize| {
                exprs
                    .iter()
                    .position(|e| matches!(e, Expr::Column(c) if input.schema.index_of_column(c).ok() == Some(col)))
            };
            Some(Windows {
                start: passed(w.start)?,
                end: passed(w.end)?,
                time_zone: w.time_zone,
                time: w.time.and_then(passed),
            })
        }
        _ => None,
    }
}

/// Whether a Top-N over `input` partitioned by `partition` is a Window Top-N,
/// with, if it orders by the window's time column alone, whether ascending.
pub(super) fn window_rank(input: &Rel, partition: &[Expr], order: &[SortKey]) -> Option<(WindowRank, Option<bool>)> {
    let w = window_columns(input)?;
    let is = |e: &Expr, col: usize| matches!(e, Expr::Column(c) if input.schema.index_of_column(c).ok() == Some(col));
    let has = |col: usize| partition.iter().any(|p| is(p, col));
    if !(has(w.start) && has(w.end)) {
        return None;
    }
    let on_time = match (order, w.time) {
        ([k], Some(t)) if is(&k.expr, t) => Some(k.asc),
        _ => None,
    };
    Some((WindowRank { end_col: w.end, time_zone: w.time_zone, later_wins_ties: false }, on_time))
}
