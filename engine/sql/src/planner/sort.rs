//! `ORDER BY` and `LIMIT` in a streaming query, as Flink plans them:
//! - `ORDER BY` starting with the event-time attribute ascending, without a
//!   limit, is a temporal sort ([`PlanNode::TemporalSort`]): rows are held
//!   until the watermark passes their time, then emitted by time and the
//!   other keys (append-only; the time attribute is kept);
//! - `ORDER BY ... LIMIT n [OFFSET m]` (or `FETCH`) is a global Top-N without
//!   the row number (Flink's `SortLimit`): an updating result;
//! - `LIMIT n` alone keeps the first n rows (Flink's `Limit`), append-only
//!   over an append-only input;
//! - anything else is refused with Flink's reasoning.
//!
//! `ORDER BY` keys are expressions over the query's output columns, or over a
//! plain SELECT's FROM columns that its list leaves out (hidden, then dropped).

use datafusion_common::Column;
use sqlparser::ast::{
    Expr as SqlExpr, GroupByExpr, Ident, LimitClause, OrderByKind, Query, SelectItem, SetExpr, Value,
};

use super::{Planner, project};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{PlanNode, RankRange, Rel, SortKey};
use crate::parser::expr_position;

impl Planner {
    /// [`Planner::plan_sort`], or, when ORDER BY reads columns of a plain
    /// SELECT's FROM that the SELECT list leaves out (`SELECT a FROM t ORDER BY
    /// ts`), the SELECT planned again with them as hidden columns, sorted, and
    /// the hidden columns dropped, as Calcite plans it.
    pub(super) fn plan_sorted(&mut self, rel: Rel, q: &Query, pos: Position) -> Result<Rel, SqlError> {
        let keys = match &q.order_by {
            Some(ob) => match &ob.kind {
                OrderByKind::Expressions(keys) => keys.clone(),
                OrderByKind::All(_) => return self.plan_sort(rel, q, pos),
            },
            None => return self.plan_sort(rel, q, pos),
        };
        let missing: Vec<usize> =
            (0..keys.len()).filter(|&i| self.plan_expr(&keys[i].expr, &rel.schema, pos).is_err()).collect();
        let SetExpr::Select(s) = q.body.as_ref() else { return self.plan_sort(rel, q, pos) };
        let plain =
            s.group_by == GroupByExpr::Expressions(vec![], vec![]) && s.having.is_none() && s.distinct.is_none();
        if missing.is_empty() || !plain {
            return self.plan_sort(rel, q, pos);
        }
        let mut select = s.as_ref().clone();
        let mut query = q.clone();
        let mut sorted_keys = keys.clone();
        for &i in &missing {
            let alias = Ident::new(format!("__order{i}"));
            select.projection.push(SelectItem::ExprWithAlias { expr: keys[i].expr.clone(), alias: alias.clone() });
            sorted_keys[i].expr = SqlExpr::Identifier(alias);
        }
        *query.body = SetExpr::Select(Box::new(select));
        if let Some(ob) = query.order_by.as_mut() {
            ob.kind = OrderByKind::Expressions(sorted_keys);
        }
        let n = rel.schema.fields().len();
        let extended = match self.plan_set_expr(&query.body, pos) {
            Ok(r) => r,
            // The keys read neither the output nor the FROM: the first error says why.
            Err(_) => return self.plan_sort(rel, q, pos),
        };
        let sorted = self.plan_sort(extended, &query, pos)?;
        let exprs: Vec<(Expr, String)> = sorted
            .schema
            .iter()
            .take(n)
            .map(|(qual, f)| (Expr::Column(Column::new(qual.cloned(), f.name())), f.name().clone()))
            .collect();
        project(sorted, exprs, pos)
    }

    /// Applies a query's ORDER BY and LIMIT (if any) to its planned body.
    pub(super) fn plan_sort(&mut self, rel: Rel, q: &Query, pos: Position) -> Result<Rel, SqlError> {
        let (limit, offset) = limit_and_offset(q, pos)?;
        let mut order = Vec::new();
        let mut order_pos = pos;
        if let Some(ob) = &q.order_by {
            let OrderByKind::Expressions(keys) = &ob.kind else {
                return Err(SqlError::new(pos, "ORDER BY ALL is not supported; list the columns"));
            };
            if let Some(first) = keys.first() {
                order_pos = expr_position(&first.expr, pos);
            }
            for o in keys {
                let opos = expr_position(&o.expr, pos);
                if o.with_fill.is_some() {
                    return Err(SqlError::new(opos, "WITH FILL is not supported"));
                }
                let asc = o.options.asc.unwrap_or(true);
                let expr = self.plan_expr(&o.expr, &rel.schema, opos)?;
                order.push(SortKey { expr, asc, nulls_first: o.options.nulls_first.unwrap_or(asc) });
            }
        }
        match (order.is_empty(), limit) {
            (true, None) => Ok(rel),
            (false, None) => temporal_sort(rel, order, order_pos),
            (_, Some(n)) => {
                let updating = rel.updating || !order.is_empty();
                // Without ORDER BY, rows enter in arrival order and none
                // leaves: the first n rows, appended (Flink's Limit).
                let unique_key = if updating { None } else { rel.unique_key.clone() };
                Ok(Rel {
                    schema: rel.schema.clone(),
                    rowtime: None,
                    updating,
                    unique_key,
                    node: PlanNode::Rank {
                        input: Box::new(rel),
                        partition: vec![],
                        order,
                        range: Some(RankRange { start: offset + 1, end: offset + n }),
                        output_rank: false,
                        window: None,
                        position: pos,
                    },
                })
            }
        }
    }
}

/// `ORDER BY time_attribute [ASC], keys...` without a limit.
fn temporal_sort(rel: Rel, order: Vec<SortKey>, pos: Position) -> Result<Rel, SqlError> {
    let on_time = match (&order[0].expr, rel.rowtime) {
        (Expr::Column(c), Some(t)) => rel.schema.index_of_column(c).ok() == Some(t),
        _ => false,
    };
    if rel.updating {
        return Err(SqlError::new(
            pos,
            "ORDER BY over an updating result is not supported in a streaming query; add LIMIT for a Top-N",
        ));
    }
    if !on_time || !order[0].asc {
        return Err(SqlError::new(
            pos,
            "a streaming query can be sorted only by its event-time attribute ascending first (ORDER BY ts [, ...]), as in Flink; add LIMIT for a Top-N by other columns",
        ));
    }
    Ok(Rel {
        schema: rel.schema.clone(),
        rowtime: rel.rowtime,
        updating: false,
        unique_key: rel.unique_key.clone(),
        node: PlanNode::TemporalSort { input: Box::new(rel), order },
    })
}

/// The query's row limit and offset, each a non-negative integer literal.
fn limit_and_offset(q: &Query, pos: Position) -> Result<(Option<u64>, u64), SqlError> {
    let count = |e: &SqlExpr, what: &str| -> Result<u64, SqlError> {
        match e {
            SqlExpr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse::<u64>().ok(),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            SqlError::new(expr_position(e, pos), format!("{what} must be a non-negative integer, not `{e}`"))
        })
    };
    let (mut limit, mut offset) = (None, 0);
    match &q.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset { limit: l, offset: o, limit_by }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::new(pos, "LIMIT ... BY is not supported"));
            }
            if let Some(l) = l {
                limit = Some(count(l, "LIMIT")?);
            }
            if let Some(o) = o {
                offset = count(&o.value, "OFFSET")?;
            }
        }
        Some(LimitClause::OffsetCommaLimit { offset: o, limit: l }) => {
            offset = count(o, "OFFSET")?;
            limit = Some(count(l, "LIMIT")?);
        }
    }
    if let Some(f) = &q.fetch {
        if f.with_ties || f.percent {
            return Err(SqlError::new(pos, "FETCH ... WITH TIES and PERCENT are not supported"));
        }
        limit = Some(match &f.quantity {
            Some(e) => count(e, "FETCH")?,
            None => 1,
        });
    }
    if limit.is_none() && offset > 0 {
        return Err(SqlError::new(
            pos,
            "OFFSET without LIMIT or FETCH is not supported in a streaming query, as in Flink",
        ));
    }
    if limit == Some(0) {
        return Err(SqlError::new(pos, "LIMIT 0 returns no rows; remove the query instead"));
    }
    Ok((limit, offset))
}
