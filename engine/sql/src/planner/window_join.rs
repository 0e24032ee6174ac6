//! Window joins: a join of two windowed inputs on their `window_start` and
//! `window_end`, as Flink's `WindowJoinUtil.satisfyWindowJoin`. An input is
//! windowed when it has window properties ([`window_props`], Flink's
//! `FlinkRelMdWindowProperties`): a window TVF, a window aggregation, a Window
//! Top-N or an earlier window join, through filters and projections that pass
//! the window columns through unchanged.
//!
//! A join is a window join when both inputs are windowed by the same window
//! TVF, on time attributes of the same type, and its equality keys pair a `window_start` of each side and a
//! `window_end` of each side. Those two pairs leave the keys (the join meets
//! the rows of one window end); the other keys and conditions stay. Anything
//! short of that (only one of the equalities, different windows) is a regular
//! join, as in Flink, which only logs why.
//!
//! A window join's output is append-only. It keeps a time attribute, as Flink
//! keeps both inputs' ([`window_join_rowtime`]), and it is windowed in turn by
//! the window columns of each side that the join never null-pads.

use crate::expr::Expr;
use crate::logical::{PlanNode, Rel, WindowJoin, WindowKind};

/// The window columns of a relation and the window TVF they come from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WindowProps {
    pub starts: Vec<usize>,
    pub ends: Vec<usize>,
    pub times: Vec<usize>,
    pub kind: WindowKind,
    pub time_zone: Option<String>,
}

/// The window properties of a relation, when it has them.
pub(super) fn window_props(rel: &Rel) -> Option<WindowProps> {
    match &rel.node {
        PlanNode::WindowAssign { input, window } => {
            let n = input.schema.fields().len();
            Some(WindowProps {
                starts: vec![n],
                ends: vec![n + 1],
                times: vec![n + 2],
                kind: window.kind,
                time_zone: window.time_zone.clone(),
            })
        }
        // Output: window_start, window_end, window_time, keys..., aggregates...
        PlanNode::WindowAggregate { window, .. } => Some(WindowProps {
            starts: vec![0],
            ends: vec![1],
            times: vec![2],
            kind: window.kind,
            time_zone: window.time_zone.clone(),
        }),
        PlanNode::Filter { input, .. } | PlanNode::Rank { input, window: Some(_), .. } => window_props(input),
        PlanNode::Project { input, exprs } => {
            let w = window_props(input)?;
            // Every output column that passes input column `col` through.
            let passed = |cols: &[usize]| -> Vec<usize> {
                exprs
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| {
                        matches!(e, Expr::Column(c) if input.schema.index_of_column(c).is_ok_and(|i| cols.contains(&i)))
                    })
                    .map(|(i, _)| i)
                    .collect()
            };
            Some(WindowProps { starts: passed(&w.starts), ends: passed(&w.ends), times: passed(&w.times), ..w })
        }
        PlanNode::Join { left, right, kind, window: Some(_), .. } => {
            let (l, r) = (window_props(left)?, window_props(right)?);
            let n_left = left.schema.fields().len();
            // The columns of a null-padded side are no window columns.
            let both = |l: &[usize], r: &[usize]| -> Vec<usize> {
                let mut cols = if kind.right_outer() { vec![] } else { l.to_vec() };
                if !kind.left_outer() {
                    cols.extend(r.iter().map(|c| c + n_left));
                }
                cols
            };
            Some(WindowProps {
                starts: both(&l.starts, &r.starts),
                ends: both(&l.ends, &r.ends),
                times: both(&l.times, &r.times),
                ..l
            })
        }
        _ => None,
    }
}

/// Whether `left` and `right` joined on the key pairs (`left_keys[i]` over
/// `left`, `right_keys[i]` over `right`) make a window join; if so, takes the
/// `window_start` and `window_end` pairs out of the keys and returns the
/// windows.
pub(super) fn window_join(
    left: &Rel,
    right: &Rel,
    left_keys: &mut Vec<Expr>,
    right_keys: &mut Vec<Expr>,
) -> Option<WindowJoin> {
    let (l, r) = (window_props(left)?, window_props(right)?);
    // The same windows on time attributes of the same type (both TIMESTAMP or
    // both TIMESTAMP_LTZ, which alone have a time zone), as Flink requires.
    if l.kind != r.kind || l.time_zone.is_some() != r.time_zone.is_some() {
        return None;
    }
    let column = |e: &Expr, rel: &Rel| match e {
        Expr::Column(c) => rel.schema.index_of_column(c).ok(),
        _ => None,
    };
    // Per key pair: a window start pair, a window end pair, or a key.
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for (i, (lk, rk)) in left_keys.iter().zip(right_keys.iter()).enumerate() {
        let (Some(lc), Some(rc)) = (column(lk, left), column(rk, right)) else { continue };
        if l.starts.contains(&lc) && r.starts.contains(&rc) {
            starts.push(i);
        } else if l.ends.contains(&lc) && r.ends.contains(&rc) {
            ends.push((i, lc, rc));
        }
    }
    let &(_, left_end, right_end) = ends.first()?;
    if starts.is_empty() {
        return None;
    }
    let window_pairs: Vec<usize> = starts.into_iter().chain(ends.iter().map(|e| e.0)).collect();
    let keep = |keys: &mut Vec<Expr>| {
        let mut i = 0;
        keys.retain(|_| {
            i += 1;
            !window_pairs.contains(&(i - 1))
        });
    };
    keep(left_keys);
    keep(right_keys);
    Some(WindowJoin { kind: l.kind, left_end, right_end, time_zone: l.time_zone })
}

/// The time attribute of a window join's output: the left input's, else the
/// right input's. (Flink keeps both inputs' time attributes; Sluice's
/// relations carry one.)
pub(super) fn window_join_rowtime(left: &Rel, right: &Rel) -> Option<usize> {
    left.rowtime.or(right.rowtime.map(|c| c + left.schema.fields().len()))
}
