//! Subqueries in WHERE: `k [NOT] IN (SELECT ...)` and `[NOT] EXISTS (SELECT
//! ...)`, each a conjunct of the WHERE, planned as Flink's subquery removal
//! plans them: a semi join (IN, EXISTS) or an anti join (NOT IN, NOT EXISTS)
//! of the FROM clause with the subquery.
//!
//! - `k IN (q)`: the condition is `k = q's column`.
//! - `k NOT IN (q)` is true when no row of `q` equals `k` *and* none makes the
//!   equality unknown (a NULL on either side): the condition is `(k = c) IS
//!   NOT FALSE`. When both sides are NOT NULL that is `k = c`, a key; else the
//!   join has no key and runs in one subtask, as in Flink.
//! - `EXISTS (SELECT ... FROM t WHERE ...)`: the conjuncts of the subquery's
//!   WHERE that read the outer query's columns (its correlation) become the
//!   join's condition; the others filter `t`. An uncorrelated EXISTS joins
//!   without a key.
//!
//! The same conjuncts of a HAVING join the aggregation's rows (uncorrelated:
//! Flink 2.3 fails to plan a correlated EXISTS there). Subqueries elsewhere in
//! a WHERE or HAVING (under OR or NOT) are mark joins (`subquery_mark`); in a
//! SELECT list or ON they are refused.

use datafusion_common::Column;
use datafusion_expr::ExprSchemable;
use sqlparser::ast::{BinaryOperator, Expr as SqlExpr, GroupByExpr, Query, SetExpr, UnaryOperator};

use super::aggregate::contains_aggregate;
use super::join::{join_schema, split_sql_conjuncts};
use super::query::FromItem;
use super::select::select_item_expr;
use super::subquery_mark::{Clause, has_subquery};
use super::{Planner, requalify};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{JoinKind, Rel};
use crate::parser::expr_position;

/// One subquery conjunct of a WHERE.
pub(super) enum Subquery {
    In { expr: Box<SqlExpr>, query: Box<Query>, negated: bool, position: Position },
    Exists { query: Box<Query>, negated: bool, position: Position },
}

/// A WHERE's (or HAVING's) conjuncts split three ways: the subquery conjuncts
/// (semi and anti joins), the conjuncts that hold subqueries elsewhere (mark
/// joins, see `subquery_mark`), and the rest, ANDed.
pub(super) fn take_subqueries(
    selection: Option<&SqlExpr>,
    pos: Position,
) -> (Vec<Subquery>, Vec<SqlExpr>, Option<SqlExpr>) {
    let Some(w) = selection else { return (Vec::new(), Vec::new(), None) };
    let mut conjuncts = Vec::new();
    split_sql_conjuncts(w, &mut conjuncts);
    let (mut subqueries, mut nested, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for c in conjuncts {
        match as_subquery(&c, false, expr_position(&c, pos)) {
            Some(s) => subqueries.push(s),
            None if has_subquery(&c) => nested.push(c),
            None => rest.push(c),
        }
    }
    let rest = rest.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    });
    (subqueries, nested, rest)
}

fn as_subquery(e: &SqlExpr, negate: bool, position: Position) -> Option<Subquery> {
    match e {
        SqlExpr::Nested(inner) => as_subquery(inner, negate, position),
        SqlExpr::UnaryOp { op: UnaryOperator::Not, expr } => as_subquery(expr, !negate, position),
        SqlExpr::InSubquery { expr, subquery, negated } => {
            Some(Subquery::In { expr: expr.clone(), query: subquery.clone(), negated: *negated != negate, position })
        }
        SqlExpr::Exists { subquery, negated } => {
            Some(Subquery::Exists { query: subquery.clone(), negated: *negated != negate, position })
        }
        _ => None,
    }
}

impl Planner {
    /// `left` semi- or anti-joined with each subquery in turn.
    pub(super) fn subquery_joins(
        &mut self,
        mut left: Rel,
        subqueries: Vec<Subquery>,
        clause: Clause,
    ) -> Result<Rel, SqlError> {
        for (i, s) in subqueries.into_iter().enumerate() {
            left = match s {
                Subquery::In { expr, query, negated, position } => {
                    let right = self.plan_query(&query, position).map_err(|e| correlated_in(e, clause))?;
                    self.in_subquery(left, &expr, right, negated, i, position)?
                }
                Subquery::Exists { query, negated, position } => {
                    self.exists(left, &query, negated, clause, position)?
                }
            };
        }
        Ok(left)
    }

    fn in_subquery(
        &mut self,
        left: Rel,
        expr: &SqlExpr,
        right: Rel,
        negated: bool,
        n: usize,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let what = if negated { "NOT IN (subquery)" } else { "IN (subquery)" };
        if right.schema.fields().len() != 1 {
            return Err(SqlError::new(
                pos,
                format!("{what}: the subquery must select exactly one column, not {}", right.schema.fields().len()),
            ));
        }
        // The subquery's column under a name of its own, which no column of
        // the outer query can shadow.
        let right = requalify(right, &format!("__in{n}"), pos)?;
        let l = self.plan_expr(expr, &left.schema, pos)?;
        let r = Expr::Column(Column::from(right.schema.qualified_field(0)));
        let (l, r) = self.common_key(&l, &r, &left, &right, pos)?;
        let nullable = l.nullable(&left.schema).unwrap_or(true) || r.nullable(&right.schema).unwrap_or(true);
        let schema = join_schema(&left, &right, JoinKind::Inner, pos)?;
        let eq = l.eq(r);
        let (kind, cond) = match (negated, nullable) {
            (false, _) => (JoinKind::Semi, eq),
            (true, false) => (JoinKind::Anti, eq),
            (true, true) => (JoinKind::Anti, eq.is_not_false()),
        };
        self.join_planned(left, right, kind, cond, schema, pos)
    }

    fn exists(
        &mut self,
        left: Rel,
        query: &Query,
        negated: bool,
        clause: Clause,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let kind = if negated { JoinKind::Anti } else { JoinKind::Semi };
        let (right, correlation) = self.exists_input(query, pos)?;
        if clause == Clause::Having && !correlation.is_empty() {
            return Err(SqlError::new(pos, CORRELATED_IN_HAVING));
        }
        let schema = join_schema(&left, &right, JoinKind::Inner, pos)?;
        let mut cond = Expr::Literal(true.into(), None);
        for c in &correlation {
            let e = self.plan_expr(c, &schema, expr_position(c, pos))?;
            cond = if matches!(cond, Expr::Literal(..)) { e } else { cond.and(e) };
        }
        self.join_planned(left, right, kind, cond, schema, pos)
    }

    /// An EXISTS subquery's rows, filtered by the conditions of its WHERE that
    /// read them alone, and the conditions that read the outer query (its
    /// correlation, only of a plain `SELECT ... FROM ... WHERE`).
    pub(super) fn exists_input(&mut self, query: &Query, pos: Position) -> Result<(Rel, Vec<SqlExpr>), SqlError> {
        // A plain SELECT ... FROM ... WHERE: its correlation joins.
        let plain = match query.body.as_ref() {
            SetExpr::Select(s)
                if query.with.is_none()
                    && query.order_by.is_none()
                    && query.limit_clause.is_none()
                    && matches!(&s.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty())
                    && s.having.is_none()
                    && s.distinct.is_none()
                    && !s.projection.iter().filter_map(select_item_expr).any(contains_aggregate) =>
            {
                Some(s)
            }
            _ => None,
        };
        let Some(s) = plain else {
            // Anything else must not read the outer query.
            let right = self.plan_query(query, pos).map_err(|e| correlated(e, pos))?;
            return Ok((right, Vec::new()));
        };
        let (from, selection) = self.plan_from_clause(&s.from, s.selection.as_ref(), pos)?;
        let FromItem::Plain(mut right) = from else {
            return Err(SqlError::new(pos, "EXISTS over a window TVF is not supported yet"));
        };
        let mut conjuncts = Vec::new();
        if let Some(w) = &selection {
            split_sql_conjuncts(w, &mut conjuncts);
        }
        // The conjuncts that read the subquery's FROM alone filter it.
        let (inner, correlation): (Vec<SqlExpr>, Vec<SqlExpr>) =
            conjuncts.into_iter().partition(|c| self.plan_expr(c, &right.schema, pos).is_ok());
        for c in &inner {
            right = self.filter(right, c, pos)?;
        }
        Ok((right, correlation))
    }
}

/// Why a correlated EXISTS in HAVING is refused.
pub(super) const CORRELATED_IN_HAVING: &str = "a correlated EXISTS subquery in HAVING is not supported (Flink 2.3 fails to plan it, with a NullPointerException); correlate it in the WHERE of a query over the aggregation";

/// An error planning an IN subquery, which must not read the outer query's
/// columns.
pub(super) fn correlated_in(e: SqlError, clause: Clause) -> SqlError {
    let Some(column) = e.message.strip_prefix("No field named ") else { return e };
    let column = column.split(['.', ' ']).take(2).collect::<Vec<_>>().join(".");
    let why = match clause {
        Clause::Having => "a correlated IN subquery in HAVING is not supported (Flink 2.3 fails to plan it too)",
        Clause::Where => {
            "a correlated IN subquery is not supported yet; write it as EXISTS (SELECT ... WHERE inner.c = outer.k AND <correlation>)"
        }
    };
    SqlError::new(e.position, format!("IN (subquery): the subquery reads `{column}` of the outer query: {why}"))
}

/// An error planning a subquery that may read the outer query's columns.
fn correlated(e: SqlError, pos: Position) -> SqlError {
    if e.message.contains("No field named") {
        SqlError::new(
            pos,
            format!(
                "EXISTS (subquery): {}; a correlated EXISTS subquery must be a plain SELECT ... FROM ... WHERE (no GROUP BY, aggregates, DISTINCT, ORDER BY or LIMIT), whose WHERE relates it to the outer query",
                e.message.trim_end_matches('.')
            ),
        )
    } else {
        e
    }
}
