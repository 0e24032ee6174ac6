//! Regular, interval and window joins in FROM: `a [INNER | LEFT | RIGHT | FULL] [OUTER] JOIN b ON ...`
//! (chained, over tables, views and subqueries) and comma joins
//! (`FROM a, b WHERE a.k = b.k`, inner joins whose conditions come from WHERE).
//!
//! The ON condition is split into equality keys (a conjunct `l = r` where `l`
//! reads only one input and `r` only the other) and a residual predicate over
//! the joined row. Both key expressions are cast to one type, so that the keyed
//! exchange hashes equal values of both inputs to the same key group. A join
//! needs at least one key: Sluice, as Flink's streaming join, keys its state by
//! them.
//!
//! `JOIN r FOR SYSTEM_TIME AS OF l.ts` is a temporal join, planned in
//! `temporal_join`; a join with `UNNEST(...)` is planned in `unnest`.
//!
//! The output is the left columns, then the right ones, each with its
//! qualifier; the side an outer join pads is nullable. A regular join's output
//! has no time attribute (Flink materializes it), and it is updating when an
//! input is or when the join is an outer one (padded rows get retracted).
//! Interval joins (`interval`) and window joins (`window_join`) are
//! append-only and keep a time attribute.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion_common::{DFSchema, DFSchemaRef};
use datafusion_expr::utils::{conjunction, split_conjunction};
use datafusion_expr::{BinaryExpr, ExprSchemable, Operator};
use sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, Join, JoinConstraint, JoinOperator, TableFactor, TableWithJoins,
};

use super::aggregate::contains_aggregate;
use super::insert::as_inserts;
use super::interval::interval_bounds;
use super::join_push::{Side, push_down, side_of};
use super::query::FromItem;
use super::unnest::as_unnest;
use super::window_join::{window_join, window_join_rowtime};
use super::{Planner, df_err, pos_of};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{JoinKind, PlanNode, Rel, TimeInterval, WindowKind};
use crate::parser::expr_position;
use crate::types::flink_name;

const NEEDS_KEY: &str = "Sluice needs an equality condition between the two inputs of a join, such as ON a.k = b.k, to key the rows each input keeps; joins without one (cross joins, conditions of inequalities only) are not supported";

impl Planner {
    /// The FROM clause and the WHERE left over once comma joins took their
    /// conditions from it.
    pub(super) fn plan_from_clause(
        &mut self,
        from: &[TableWithJoins],
        selection: Option<&SqlExpr>,
        pos: Position,
    ) -> Result<(FromItem, Option<SqlExpr>), SqlError> {
        if let [single] = from
            && single.joins.is_empty()
        {
            return Ok((self.plan_from(&single.relation, pos)?, selection.cloned()));
        }
        let mut items = from.iter();
        let Some(first) = items.next() else {
            return Err(SqlError::new(pos, "a SELECT needs a FROM clause"));
        };
        let mut acc = self.plan_joins(first, pos)?;
        let mut conjuncts: Vec<SqlExpr> = Vec::new();
        if let Some(w) = selection {
            split_sql_conjuncts(w, &mut conjuncts);
        }
        for twj in items {
            let item_pos = pos_of(&twj.relation, pos);
            // `a, UNNEST(a.arr)` reads the items before it: a cross join with them.
            if let Some(unnest) = as_unnest(&twj.relation) {
                acc = self.unnest(acc, &unnest, false, item_pos)?;
                acc = self.plan_join_chain(acc, &twj.joins, pos)?;
                continue;
            }
            // `a, r FOR SYSTEM_TIME AS OF a.ts`: a temporal join, as Flink's
            // `LogicalCorrelateToJoinFromTemporalTableRule` (with a filter) plans it.
            let version = match &twj.relation {
                TableFactor::Table { version: Some(version), .. } => Some(version),
                _ => None,
            };
            let right = match version {
                Some(_) => self.temporal_side(&twj.relation, item_pos)?,
                None => self.plan_joins(twj, pos)?,
            };
            // The WHERE conjuncts that read only these inputs join them.
            let joined = join_schema(&acc, &right, JoinKind::Inner, item_pos)?;
            let (mine, rest): (Vec<SqlExpr>, Vec<SqlExpr>) =
                conjuncts.into_iter().partition(|c| self.plan_expr(c, &joined, item_pos).is_ok());
            conjuncts = rest;
            let on = mine.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
                left: Box::new(a),
                op: BinaryOperator::And,
                right: Box::new(b),
            });
            let Some(on) = on else {
                return Err(SqlError::new(item_pos, format!("{NEEDS_KEY}; add a WHERE condition that equates them")));
            };
            acc = match version {
                Some(version) => {
                    let as_of = super::temporal_join::as_of_time(version, item_pos)?;
                    let joined = self.temporal_join_with(acc, right, as_of, JoinKind::Inner, &on, item_pos)?;
                    self.plan_join_chain(joined, &twj.joins, pos)?
                }
                None => self.join(acc, right, JoinKind::Inner, &on, item_pos)?,
            };
        }
        // WHERE conditions go into the joins as far as they keep their
        // meaning; what cannot be planned here is left to the WHERE, which
        // reports why.
        let mut planned = Vec::new();
        let mut rest = Vec::new();
        for c in conjuncts {
            match self.plan_expr(&c, &acc.schema, pos) {
                Ok(e)
                    if !contains_aggregate(&c)
                        && e.get_type(&acc.schema).is_ok_and(|t| t == arrow::datatypes::DataType::Boolean) =>
                {
                    planned.push(e)
                }
                _ => rest.push(c),
            }
        }
        let acc = push_down(acc, planned);
        let rest = rest.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        });
        Ok((FromItem::Plain(acc), rest))
    }

    /// One FROM item with its chain of `JOIN`s.
    fn plan_joins(&mut self, twj: &TableWithJoins, pos: Position) -> Result<Rel, SqlError> {
        let acc = self.join_input(&twj.relation, pos)?;
        self.plan_join_chain(acc, &twj.joins, pos)
    }

    /// `acc` joined with each of `joins` in turn.
    fn plan_join_chain(&mut self, mut acc: Rel, joins: &[Join], pos: Position) -> Result<Rel, SqlError> {
        for j in joins {
            let jpos = pos_of(&j.relation, pos);
            if let Some(unnest) = as_unnest(&j.relation) {
                acc = self.unnest_join(acc, &j.join_operator, &unnest, jpos)?;
                continue;
            }
            let (kind, constraint) = match &j.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinKind::Inner, c),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
                JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (JoinKind::Right, c),
                JoinOperator::FullOuter(c) => (JoinKind::Full, c),
                JoinOperator::CrossJoin(_) => return Err(SqlError::new(jpos, format!("CROSS JOIN: {NEEDS_KEY}"))),
                other => {
                    let name = match other {
                        JoinOperator::Semi(_) => "SEMI JOIN",
                        JoinOperator::LeftSemi(_) => "LEFT SEMI JOIN",
                        JoinOperator::RightSemi(_) => "RIGHT SEMI JOIN",
                        JoinOperator::Anti(_) => "ANTI JOIN",
                        JoinOperator::LeftAnti(_) => "LEFT ANTI JOIN",
                        JoinOperator::RightAnti(_) => "RIGHT ANTI JOIN",
                        JoinOperator::CrossApply => "CROSS APPLY",
                        JoinOperator::OuterApply => "OUTER APPLY",
                        JoinOperator::AsOf { .. } => "ASOF JOIN",
                        JoinOperator::StraightJoin(_) => "STRAIGHT_JOIN",
                        _ => "this join",
                    };
                    return Err(SqlError::new(
                        jpos,
                        format!(
                            "{name} is not supported; Sluice supports [INNER] JOIN, LEFT [OUTER] JOIN, RIGHT [OUTER] JOIN and FULL [OUTER] JOIN with ON"
                        ),
                    ));
                }
            };
            let on = match constraint {
                JoinConstraint::On(e) => e,
                JoinConstraint::Using(_) => {
                    return Err(SqlError::new(
                        jpos,
                        "JOIN ... USING (...) is not supported yet; write the condition with ON, as in ON a.k = b.k",
                    ));
                }
                JoinConstraint::Natural => {
                    return Err(SqlError::new(
                        jpos,
                        "NATURAL JOIN is not supported; write the condition with ON, as in ON a.k = b.k",
                    ));
                }
                JoinConstraint::None => {
                    return Err(SqlError::new(jpos, format!("a JOIN without ON: {NEEDS_KEY}")));
                }
            };
            acc = match &j.relation {
                TableFactor::Table { version: Some(version), .. } => {
                    self.temporal_join(acc, &j.relation, version, kind, on, jpos)?
                }
                relation => {
                    let right = self.join_input(relation, pos)?;
                    self.join(acc, right, kind, on, jpos)?
                }
            };
        }
        Ok(acc)
    }

    /// A relation joined: a table, view or subquery, or a window TVF (as
    /// `SELECT *` of it would be).
    fn join_input(&mut self, f: &TableFactor, pos: Position) -> Result<Rel, SqlError> {
        let pos = pos_of(f, pos);
        match f {
            TableFactor::Derived { lateral: true, .. } => {
                return Err(SqlError::new(pos, "LATERAL subqueries are not supported yet"));
            }
            TableFactor::Table { version: Some(_), .. } => {
                return Err(SqlError::new(pos, super::temporal_join::NOT_RIGHT_OF_JOIN));
            }
            f if as_unnest(f).is_some() => return Err(SqlError::new(pos, super::unnest::UNCORRELATED)),
            _ => {}
        }
        match self.plan_from(f, pos)? {
            FromItem::Plain(rel) => Ok(rel),
            FromItem::Window { input, window, partition_by, qualifier } => {
                if matches!(window.kind, WindowKind::Session { .. }) || !partition_by.is_empty() {
                    return Err(SqlError::new(
                        pos,
                        "SESSION windows as a join input are not supported yet; aggregate each window first (GROUP BY window_start, window_end)",
                    ));
                }
                let schema = self.window_schema(&input, &window, qualifier.as_deref(), pos)?;
                let rowtime = Some(schema.fields().len() - 1);
                Ok(Rel {
                    node: PlanNode::WindowAssign { input: Box::new(input), window },
                    schema,
                    rowtime,
                    updating: false,
                    unique_key: None,
                })
            }
        }
    }

    /// Joins two relations on a condition.
    pub(super) fn join(
        &self,
        left: Rel,
        right: Rel,
        kind: JoinKind,
        on: &SqlExpr,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let on_pos = expr_position(on, pos);
        let schema = join_schema(&left, &right, kind, pos)?;
        let cond = self.plan_expr(on, &schema, pos)?;
        self.join_planned(left, right, kind, cond, schema, on_pos)
    }

    /// Joins two relations on a condition planned over `schema`, their joined
    /// columns ([`join_schema`]).
    pub(super) fn join_planned(
        &self,
        left: Rel,
        right: Rel,
        kind: JoinKind,
        cond: Expr,
        schema: DFSchemaRef,
        on_pos: Position,
    ) -> Result<Rel, SqlError> {
        let t = cond.get_type(&schema).map_err(df_err(on_pos))?;
        if t != arrow::datatypes::DataType::Boolean {
            return Err(SqlError::new(on_pos, format!("a join condition must be BOOLEAN, not {}", flink_name(&t))));
        }
        let n_left = left.schema.fields().len();
        let side = |e: &Expr| side_of(&schema, n_left, e);
        let (mut left_keys, mut right_keys, mut residual) = (Vec::new(), Vec::new(), Vec::new());
        // Conditions on one input that only decide whether its rows match
        // (that input is not kept padded) filter that input before the join.
        let (mut push_left, mut push_right) = (Vec::new(), Vec::new());
        for c in split_conjunction(&cond) {
            if let Expr::BinaryExpr(BinaryExpr { left: l, op: Operator::Eq, right: r }) = c {
                let pair = match (side(l), side(r)) {
                    (Side::Left, Side::Right) => Some((l.as_ref(), r.as_ref())),
                    (Side::Right, Side::Left) => Some((r.as_ref(), l.as_ref())),
                    _ => None,
                };
                if let Some((lk, rk)) = pair {
                    let (lk, rk) = self.common_key(lk, rk, &left, &right, on_pos)?;
                    left_keys.push(lk);
                    right_keys.push(rk);
                    continue;
                }
            }
            match side(c) {
                // An anti join emits the left rows that such a condition rejects.
                Side::Left if !kind.left_outer() && kind != JoinKind::Anti => push_left.push(c.clone()),
                Side::Right if !kind.right_outer() => push_right.push(c.clone()),
                _ => residual.push(c.clone()),
            }
        }
        // A window join (both inputs windowed alike, joined on their window
        // starts and ends) first, as Flink's rules; else an interval join.
        if kind.left_only() {
            return Ok(semi_anti_join(left, right, kind, left_keys, right_keys, residual, [push_left, push_right]));
        }
        let window = window_join(&left, &right, &mut left_keys, &mut right_keys);
        let interval = if window.is_some() { None } else { interval_of(&left, &right, &schema, &residual) };
        if left_keys.is_empty() && interval.is_none() && window.is_none() {
            return Err(SqlError::new(on_pos, NEEDS_KEY));
        }
        if let Some(i) = &interval
            && i.lower > i.upper
        {
            return Err(SqlError::new(
                on_pos,
                format!(
                    "the time bounds of this interval join leave no interval: {} ms <= left time - right time <= {} ms",
                    i.lower, i.upper
                ),
            ));
        }
        let (left, right) = (push_down(left, push_left), push_down(right, push_right));
        let (left, right) = match interval {
            Some(_) => (as_inserts(left), as_inserts(right)),
            None => (left, right),
        };
        // An interval join emits only inserts (padded rows once their time has
        // passed), and its output keeps the left input's time attribute; a
        // window join emits only inserts (each window once, when it fires).
        let timed = interval.is_some() || window.is_some();
        let updating = !timed && (left.updating || right.updating || kind != JoinKind::Inner);
        let rowtime = if window.is_some() { window_join_rowtime(&left, &right) } else { interval.and(left.rowtime) };
        let columns = |keys: &[Expr], rel: &Rel| -> Option<Vec<usize>> {
            keys.iter()
                .map(|k| match k {
                    Expr::Column(c) => rel.schema.index_of_column(c).ok(),
                    _ => None,
                })
                .collect()
        };
        let unique_key = if timed {
            None
        } else {
            join_unique_key(
                [left.unique_key.as_deref(), right.unique_key.as_deref()],
                [columns(&left_keys, &left), columns(&right_keys, &right)],
                n_left,
                kind,
            )
        };
        Ok(Rel {
            node: PlanNode::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                left_keys,
                right_keys,
                residual: conjunction(residual),
                interval,
                temporal: None,
                window,
            },
            schema,
            rowtime,
            updating,
            unique_key,
        })
    }

    /// A key pair cast to one type, each over its own input.
    pub(super) fn common_key(
        &self,
        l: &Expr,
        r: &Expr,
        left: &Rel,
        right: &Rel,
        pos: Position,
    ) -> Result<(Expr, Expr), SqlError> {
        let lt = l.get_type(&left.schema).map_err(df_err(pos))?;
        let rt = r.get_type(&right.schema).map_err(df_err(pos))?;
        if lt == rt {
            return Ok((l.clone(), r.clone()));
        }
        let t = datafusion_expr::type_coercion::binary::comparison_coercion(&lt, &rt).ok_or_else(|| {
            SqlError::new(
                pos,
                format!("join keys `{l}` and `{r}`: {} and {} have no common type", flink_name(&lt), flink_name(&rt)),
            )
        })?;
        let cast = |e: &Expr, from: &arrow::datatypes::DataType| {
            if *from == t { e.clone() } else { datafusion_expr::cast(e.clone(), t.clone()) }
        };
        Ok((cast(l, &lt), cast(r, &rt)))
    }
}

/// A semi or anti join (`kind`): the left rows that have a match (semi) or
/// none (anti), as Flink's `StreamingSemiAntiJoinOperator`. It has no time
/// attribute and keeps the left input's unique key. A semi join is updating
/// when an input is (its rows take the kinds of the rows that make them
/// match, as Flink forwards them); an anti join always is: a match that
/// comes later retracts the left row.
fn semi_anti_join(
    left: Rel,
    right: Rel,
    kind: JoinKind,
    left_keys: Vec<Expr>,
    right_keys: Vec<Expr>,
    residual: Vec<Expr>,
    [push_left, push_right]: [Vec<Expr>; 2],
) -> Rel {
    let (left, right) = (push_down(left, push_left), push_down(right, push_right));
    let updating = kind == JoinKind::Anti || left.updating || right.updating;
    Rel {
        schema: left.schema.clone(),
        rowtime: None,
        updating,
        unique_key: left.unique_key.clone(),
        node: PlanNode::Join {
            left: Box::new(left),
            right: Box::new(right),
            kind,
            left_keys,
            right_keys,
            residual: conjunction(residual),
            interval: None,
            temporal: None,
            window: None,
        },
    }
}

/// The time bounds of an interval join of `left` and `right` (whose output is
/// `schema`) in the conjuncts of its condition, when both inputs are
/// append-only with time attributes and the conjuncts bound them both ways.
pub(super) fn interval_of(left: &Rel, right: &Rel, schema: &DFSchema, conjuncts: &[Expr]) -> Option<TimeInterval> {
    let (lt, rt) = (left.rowtime?, right.rowtime?);
    // An insert-only Top-1 is read as inserts (`as_inserts`), as Flink does.
    let updating = |r: &Rel| r.updating && !super::insert::flink_insert_only(r);
    if updating(left) || updating(right) {
        return None;
    }
    let column = |i: usize| {
        let (q, f) = schema.qualified_field(i);
        datafusion_common::Column::new(q.cloned(), f.name())
    };
    let n_left = left.schema.fields().len();
    interval_bounds(conjuncts, &column(lt), &column(n_left + rt)).map(|b| TimeInterval {
        left_time: lt,
        right_time: rt,
        ..b
    })
}

/// The unique (upsert) key of a join's output, as Flink's `FlinkRelMdUpsertKeys`
/// derives it: an input's key survives only if it contains that input's join
/// key columns (the output is distributed by the join key); when the other
/// input has at most one row per join key (its join key contains its unique
/// key) and this input is never null-padded, this input's key is one of the
/// output; otherwise both surviving keys together are. `unique` and
/// `join_cols` are per input, in its own columns (`None` for a join key that
/// is not a plain column); the result is in output columns.
fn join_unique_key(
    unique: [Option<&[usize]>; 2],
    join_cols: [Option<Vec<usize>>; 2],
    n_left: usize,
    kind: JoinKind,
) -> Option<Vec<usize>> {
    let contains = |key: &[usize], cols: &[usize]| cols.iter().all(|c| key.contains(c));
    // Input i has at most one row per join key.
    let at_most_one = |i: usize| match (unique[i], &join_cols[i]) {
        (Some(k), Some(cols)) => contains(cols, k),
        _ => false,
    };
    // Input i's key, when it contains its join key.
    let kept = |i: usize| match (unique[i], &join_cols[i]) {
        (Some(k), Some(cols)) if contains(k, cols) => Some(k.to_vec()),
        _ => None,
    };
    let shift = |k: Vec<usize>| k.into_iter().map(|c| c + n_left).collect::<Vec<_>>();
    if let Some(k) = kept(0)
        && at_most_one(1)
        && !kind.right_outer()
    {
        return Some(k);
    }
    if let Some(k) = kept(1)
        && at_most_one(0)
        && !kind.left_outer()
    {
        return Some(shift(k));
    }
    let (l, r) = (kept(0)?, kept(1)?);
    Some(l.into_iter().chain(shift(r)).collect())
}

/// Left columns, then right ones; the padded side of an outer join nullable.
pub(super) fn join_schema(left: &Rel, right: &Rel, kind: JoinKind, pos: Position) -> Result<DFSchemaRef, SqlError> {
    let side = |rel: &Rel, padded: bool| {
        rel.schema
            .iter()
            .map(|(q, f)| {
                let f = if padded && !f.is_nullable() {
                    Arc::new(f.as_ref().clone().with_nullable(true))
                } else {
                    f.clone()
                };
                (q.cloned(), f)
            })
            .collect::<Vec<_>>()
    };
    let mut fields = side(left, kind.right_outer());
    fields.extend(side(right, kind.left_outer()));
    DFSchema::new_with_metadata(fields, HashMap::new()).map(Arc::new).map_err(|e| {
        SqlError::new(
            pos,
            format!("{e}; give the joined tables or subqueries distinct aliases (FROM a JOIN b AS x ON ...)"),
        )
    })
}

/// The conjuncts of a SQL condition (`a AND b AND c`), parentheses removed.
pub(super) fn split_sql_conjuncts(e: &SqlExpr, out: &mut Vec<SqlExpr>) {
    match e {
        SqlExpr::BinaryOp { left, op: BinaryOperator::And, right } => {
            split_sql_conjuncts(left, out);
            split_sql_conjuncts(right, out);
        }
        SqlExpr::Nested(inner) if matches!(inner.as_ref(), SqlExpr::BinaryOp { op: BinaryOperator::And, .. }) => {
            split_sql_conjuncts(inner, out)
        }
        other => out.push(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keys_of_a_join_follow_flinks_upsert_keys() {
        // (left key, right key, left join cols, right join cols, kind) -> output key; 3 left columns.
        /// Keys of the inputs, their join columns, the kind, and the output's key.
        struct Case(Option<Vec<usize>>, Option<Vec<usize>>, Vec<usize>, Vec<usize>, JoinKind, Option<Vec<usize>>);
        let cases = [
            // Append-only inputs: no key.
            Case(None, None, vec![0], vec![0], JoinKind::Inner, None),
            // The right side has one row per join key: the left key is the output's.
            Case(Some(vec![0]), Some(vec![1]), vec![0], vec![1], JoinKind::Inner, Some(vec![0])),
            Case(Some(vec![0]), Some(vec![1]), vec![0], vec![1], JoinKind::Left, Some(vec![0])),
            // ... unless the left side is padded (RIGHT, FULL): then both keys.
            Case(Some(vec![0]), Some(vec![1]), vec![0], vec![1], JoinKind::Full, Some(vec![0, 4])),
            // A key that does not contain the join key does not survive.
            Case(Some(vec![2]), Some(vec![1]), vec![0], vec![1], JoinKind::Inner, None),
            // One side without a key, the other unique per join key: nothing to keep.
            Case(None, Some(vec![1]), vec![0], vec![1], JoinKind::Inner, None),
            // Right keyed by (k, x) joined on k: the left is unique per k, the right key survives.
            Case(Some(vec![0]), Some(vec![0, 1]), vec![0], vec![0], JoinKind::Inner, Some(vec![3, 4])),
        ];
        for Case(l, r, lj, rj, kind, want) in cases {
            let got = join_unique_key([l.as_deref(), r.as_deref()], [Some(lj.clone()), Some(rj.clone())], 3, kind);
            assert_eq!(got, want, "{l:?} {r:?} on {lj:?} = {rj:?} ({kind})");
        }
        assert_eq!(join_unique_key([Some(&[0]), Some(&[0])], [None, Some(vec![0])], 3, JoinKind::Inner), None);
    }
}
