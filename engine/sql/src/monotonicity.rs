//! Modified monotonicity, as Flink's `FlinkRelMdModifiedMonotonicity` derives
//! it: how each column's value can change when an updating relation replaces
//! a row (`-U` then `+U`) for the same key.
//!
//! Flink uses it to decide which aggregates must apply retractions: a MAX over
//! a column that only increases (a running COUNT, say) never needs to retract
//! its input, so Flink's `GroupAggFunction` runs a MAX that ignores `-U` rows;
//! likewise a MIN over a column that only decreases. Its results between
//! updates then differ from a retracting MAX, so Sluice must decide exactly as
//! Flink does to print the same changelog.
//!
//! Differences from Flink: SUM is never monotonic here (Flink derives a
//! non-negative SUM from the value intervals of filters), and nodes this module
//! does not know give no monotonicity (`None`, as Flink's default).

use crate::expr::Expr;
use crate::logical::{AggCall, AggFunc, PlanNode, Rel};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mono {
    /// Never modified (every column of an append-only relation).
    Constant,
    Increasing,
    Decreasing,
    NotMonotonic,
}

/// Each column's modified monotonicity, or `None` when the relation may
/// delete rows or the monotonicity is unknown.
pub fn modified(rel: &Rel) -> Option<Vec<Mono>> {
    let n = rel.schema.fields().len();
    if !rel.updating {
        return Some(vec![Mono::Constant; n]);
    }
    match &rel.node {
        PlanNode::Filter { input, .. } => modified(input),
        PlanNode::Project { input, exprs } => {
            let m = modified(input)?;
            Some(exprs.iter().map(|e| expr_mono(e, input, &m)).collect())
        }
        PlanNode::Union { inputs } => {
            let all = inputs.iter().map(modified).collect::<Option<Vec<_>>>()?;
            let head = all.first()?.clone();
            Some(if all.iter().all(|m| *m == head) { head } else { vec![Mono::NotMonotonic; n] })
        }
        PlanNode::GroupAggregate { input, keys, aggs, .. } => aggregate(input, keys, aggs),
        // Flink: the unique key is constant, every other column may change.
        PlanNode::ChangelogNormalize { keys, .. } => {
            Some((0..n).map(|i| if keys.contains(&i) { Mono::Constant } else { Mono::NotMonotonic }).collect())
        }
        _ => None,
    }
}

/// The output monotonicity of an aggregation (keys, then aggregates); `None`
/// when a key can be modified, since a row then moves between groups.
fn aggregate(input: &Rel, keys: &[Expr], aggs: &[AggCall]) -> Option<Vec<Mono>> {
    let m = modified(input)?;
    if keys.iter().any(|k| expr_mono(k, input, &m) != Mono::Constant) {
        return None;
    }
    let updates = m.iter().any(|x| *x != Mono::Constant);
    let mut out = vec![Mono::Constant; keys.len()];
    for a in aggs {
        let own = match a.func {
            AggFunc::Count | AggFunc::Max => Mono::Increasing,
            AggFunc::Min => Mono::Decreasing,
            AggFunc::Sum
            | AggFunc::Avg
            | AggFunc::FirstValue
            | AggFunc::LastValue
            | AggFunc::ListAgg
            | AggFunc::StddevPop
            | AggFunc::StddevSamp
            | AggFunc::VarPop
            | AggFunc::VarSamp => Mono::NotMonotonic,
        };
        let mono = match &a.arg {
            // A COUNT keeps increasing whatever its argument does.
            Some(arg) if updates && a.func != AggFunc::Count && expr_mono(arg, input, &m) != own => Mono::NotMonotonic,
            _ => own,
        };
        out.push(mono);
    }
    Some(out)
}

/// The monotonicity of an expression over `input`: a column's (also through
/// a CAST), else not monotonic (Flink's projections).
fn expr_mono(e: &Expr, input: &Rel, m: &[Mono]) -> Mono {
    if m.iter().all(|x| *x == Mono::Constant) {
        return Mono::Constant;
    }
    match e {
        Expr::Column(c) => input.schema.index_of_column(c).ok().and_then(|i| m.get(i).copied()),
        Expr::Cast(c) => Some(expr_mono(&c.expr, input, m)),
        Expr::Alias(a) => Some(expr_mono(&a.expr, input, m)),
        _ => None,
    }
    .unwrap_or(Mono::NotMonotonic)
}

/// Which aggregate calls of an aggregation apply retractions, as Flink's
/// `AggregateUtil.deriveAggCallNeedRetractions` decides from the
/// aggregation's own output monotonicity: all of them over an updating input,
/// except a MAX whose result only increases and a MIN whose result only
/// decreases; none over an append-only input.
pub fn retracting(input: &Rel, keys: &[Expr], aggs: &[AggCall]) -> Vec<bool> {
    if !input.updating {
        return vec![false; aggs.len()];
    }
    let m = aggregate(input, keys, aggs);
    aggs.iter()
        .enumerate()
        .map(|(i, a)| {
            let mono = m.as_ref().map(|m| m[keys.len() + i]);
            !matches!((a.func, mono), (AggFunc::Max, Some(Mono::Increasing)) | (AggFunc::Min, Some(Mono::Decreasing)))
        })
        .collect()
}
