//! Where the conditions of a join go: which input a conjunct reads
//! ([`side_of`]), and predicates pushed into a join's inputs as far as they
//! keep their meaning ([`push_down`], as Flink's filter-into-join rules).

use datafusion_common::DFSchema;
use datafusion_expr::utils::{conjunction, split_conjunction};

use super::insert::as_inserts;
use super::join::interval_of;
use crate::expr::Expr;
use crate::logical::{JoinKind, PlanNode, Rel};

/// What a conjunct of a join condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Left,
    Right,
    /// Both inputs, or neither (a constant).
    Other,
}

/// Which input of a join (whose first `n_left` columns are the left input's)
/// an expression over the join's output reads.
pub(super) fn side_of(schema: &DFSchema, n_left: usize, e: &Expr) -> Side {
    let idx: Vec<Option<usize>> = e.column_refs().iter().map(|c| schema.index_of_column(c).ok()).collect();
    if idx.is_empty() || idx.iter().any(Option::is_none) {
        Side::Other
    } else if idx.iter().all(|i| i.is_some_and(|i| i < n_left)) {
        Side::Left
    } else if idx.iter().all(|i| i.is_some_and(|i| i >= n_left)) {
        Side::Right
    } else {
        Side::Other
    }
}

/// Filters a relation by predicates over its columns, pushed into joins as far
/// as they keep their meaning (as Flink's filter-into-join rules): a predicate
/// on one input goes below the join when that input is never null-padded in
/// the join's output; one on both inputs of an inner join joins its residual;
/// the rest filter the join's output.
pub(super) fn push_down(rel: Rel, preds: Vec<Expr>) -> Rel {
    if preds.is_empty() {
        return rel;
    }
    let Rel { node, schema, rowtime, updating, unique_key } = rel;
    let node = match node {
        PlanNode::Join { left, right, kind, left_keys, right_keys, residual, interval, temporal, window } => {
            let n_left = left.schema.fields().len();
            let (mut to_left, mut to_right, mut joined, mut above) = (vec![], vec![], vec![], vec![]);
            for p in preds {
                match side_of(&schema, n_left, &p) {
                    Side::Left if !kind.right_outer() => to_left.push(p),
                    // A filter below a versioned table would change which
                    // version is valid when; it filters the joined rows.
                    Side::Right if temporal.is_some() => above.push(p),
                    Side::Right if !kind.left_outer() => to_right.push(p),
                    _ if kind == JoinKind::Inner => joined.push(p),
                    _ => above.push(p),
                }
            }
            let (left, right) = (push_down(*left, to_left), push_down(*right, to_right));
            // WHERE conditions of an inner join may bound its times.
            let (mut interval, mut rowtime) = (interval, rowtime);
            if interval.is_none() && temporal.is_none() && window.is_none() && !joined.is_empty() {
                let mut all: Vec<Expr> = residual.iter().flat_map(|r| split_conjunction(r)).cloned().collect();
                all.extend(joined.iter().cloned());
                interval = interval_of(&left, &right, &schema, &all);
                rowtime = interval.and(left.rowtime).or(rowtime);
            }
            // An interval join emits only inserts.
            let (left, right, updating) = match interval {
                Some(_) => (as_inserts(left), as_inserts(right), false),
                None => (left, right, updating),
            };
            let residual = conjunction(residual.into_iter().chain(joined));
            let join = PlanNode::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                left_keys,
                right_keys,
                residual,
                interval,
                temporal,
                window,
            };
            let rel = Rel { node: join, schema, rowtime, updating, unique_key };
            return match conjunction(above) {
                None => rel,
                Some(predicate) => filter_node(rel, predicate),
            };
        }
        other => other,
    };
    let rel = Rel { node, schema, rowtime, updating, unique_key };
    match conjunction(preds) {
        None => rel,
        Some(predicate) => filter_node(rel, predicate),
    }
}

fn filter_node(rel: Rel, predicate: Expr) -> Rel {
    let (schema, rowtime, updating, unique_key) =
        (rel.schema.clone(), rel.rowtime, rel.updating, rel.unique_key.clone());
    Rel { node: PlanNode::Filter { input: Box::new(rel), predicate }, schema, rowtime, updating, unique_key }
}
