//! Correlated scalar subqueries, as Flink (Calcite's decorrelation) plans
//! them: `(SELECT MAX(b.price) FROM bid b WHERE b.auction = a.id)` becomes
//! the subquery's aggregation grouped by the inner side of its correlation
//! (`b.auction`), LEFT JOINed on `a.id = b.auction`; the subquery's SELECT
//! expression is then computed over the joined row, its aggregates read from
//! the joined group. An outer row without a group reads NULL for them, except
//! for COUNT, which reads 0 (Calcite's `CASE WHEN c IS NULL THEN 0 ELSE c`).
//!
//! Supported: `SELECT <expression> FROM ... WHERE ... [GROUP BY ...] [HAVING
//! ...]` whose WHERE conjuncts each read only the subquery's FROM (they filter
//! it) or equate an expression of it with one of the outer query (they
//! correlate it). A subquery without an aggregate (`SELECT b.price FROM bid b
//! WHERE b.auction = a.id`), or with its own GROUP BY or DISTINCT, must return at most one
//! row per outer row: as Flink's `SINGLE_VALUE`, each group of the
//! correlation counts its rows, and a second row fails the job.
//! Other correlations (`b.price > a.reserve`) are decorrelated through the
//! outer query's distinct values of the columns they read, as Calcite's value
//! generator: joined with the subquery's FROM on the correlation, the groups
//! are keyed by those values and joined back on them. That join needs an
//! equality among the conditions; Flink runs one without in a single
//! subtask, Sluice refuses it with an error.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::Field;
use datafusion_common::{Column, DFSchema, TableReference};
use datafusion_expr::ExprSchemable;
use sqlparser::ast::{
    self, BinaryOperator, Expr as SqlExpr, GroupByExpr, Ident, Select, SelectItem, SetExpr, VisitorMut,
};

use super::aggregate::{contains_aggregate, is_aggregate_name};
use super::join::{join_schema, split_sql_conjuncts};
use super::query::FromItem;
use super::scalar_subquery::{Scalar, select_template};
use super::select::select_item_expr;
use super::{Planner, df_err, requalify};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::functions::SINGLE_VALUE;
use crate::logical::{JoinKind, PlanNode, Rel};

/// Replaces the aggregate calls of a subquery's SELECT expression with the
/// joined group's columns (`<q>.__a<i>`), collecting them.
struct Aggregates {
    qualifier: String,
    calls: Vec<ast::Function>,
}

impl VisitorMut for Aggregates {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        let SqlExpr::Function(f) = e else { return ControlFlow::Continue(()) };
        let name = f.name.to_string().to_ascii_uppercase();
        if f.over.is_some() || !is_aggregate_name(&name) {
            return ControlFlow::Continue(());
        }
        let i = match self.calls.iter().position(|c| c == f) {
            Some(i) => i,
            None => {
                self.calls.push(f.clone());
                self.calls.len() - 1
            }
        };
        let column =
            SqlExpr::CompoundIdentifier(vec![Ident::new(self.qualifier.clone()), Ident::new(format!("__a{i}"))]);
        // A COUNT over no rows is 0, not NULL.
        *e = if name == "COUNT" {
            call("COALESCE", vec![column, SqlExpr::value(ast::Value::Number("0".into(), false))])
        } else {
            column
        };
        ControlFlow::Continue(())
    }
}

/// Replaces each of `from` with the expression of `to` at its index.
struct Replace<'a> {
    from: &'a [SqlExpr],
    to: &'a [SqlExpr],
}

impl VisitorMut for Replace<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if let Some(i) = self.from.iter().position(|f| f == e) {
            *e = self.to[i].clone();
        }
        ControlFlow::Continue(())
    }
}

/// A plain call of `name`.
fn function(name: &str, args: Vec<ast::FunctionArgExpr>) -> ast::Function {
    ast::Function {
        name: ast::ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(ast::FunctionArg::Unnamed).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    }
}

fn call(name: &str, args: Vec<SqlExpr>) -> SqlExpr {
    SqlExpr::Function(function(name, args.into_iter().map(ast::FunctionArgExpr::Expr).collect()))
}

/// `__single_value(COUNT(*), MAX(value))`: `value`, checked to be the only row.
pub(super) fn single_value_call(value: SqlExpr) -> SqlExpr {
    let count = function("COUNT", vec![ast::FunctionArgExpr::Wildcard]);
    let max = function("MAX", vec![ast::FunctionArgExpr::Expr(value)]);
    call(SINGLE_VALUE, vec![SqlExpr::Function(count), SqlExpr::Function(max)])
}

/// The aggregate calls that check that `value` has one row per group
/// (`COUNT(*)` and `MAX(value)`), and the value read from them
/// (`<qualifier>.__a0`, `<qualifier>.__a1`) through the check.
pub(super) fn single_value_of(value: SqlExpr, qualifier: &str) -> (Vec<ast::Function>, SqlExpr) {
    let count = function("COUNT", vec![ast::FunctionArgExpr::Wildcard]);
    let max = function("MAX", vec![ast::FunctionArgExpr::Expr(value)]);
    let column = |i: usize| SqlExpr::CompoundIdentifier(vec![Ident::new(qualifier), Ident::new(format!("__a{i}"))]);
    (vec![count, max], call(SINGLE_VALUE, vec![column(0), column(1)]))
}

/// The keys of a correlation as SELECT items named `__k<j>`.
fn key_items(keys: &[SqlExpr]) -> impl Iterator<Item = (SqlExpr, String)> + '_ {
    keys.iter().enumerate().map(|(j, k)| (k.clone(), format!("__k{j}")))
}

/// The SELECT of a subquery that correlation can be taken out of.
fn plain_select(q: &ast::Query) -> Option<&Select> {
    match q.body.as_ref() {
        SetExpr::Select(s)
            if q.with.is_none()
                && q.order_by.is_none()
                && q.limit_clause.is_none()
                && matches!(&s.group_by, GroupByExpr::Expressions(_, m) if m.is_empty())
                && matches!(&s.distinct, None | Some(ast::Distinct::Distinct | ast::Distinct::All)) =>
        {
            Some(s)
        }
        _ => None,
    }
}

fn strip_nested(e: &SqlExpr) -> &SqlExpr {
    match e {
        SqlExpr::Nested(inner) => strip_nested(inner),
        e => e,
    }
}

impl Planner {
    /// `outer` with a column for the correlated scalar subquery `scalar`;
    /// `unresolved` is the error planning it on its own gave.
    pub(super) fn correlated_scalar(
        &mut self,
        outer: Rel,
        scalar: &Scalar,
        unresolved: SqlError,
    ) -> Result<Rel, SqlError> {
        let pos = scalar.position;
        let Some(s) = plain_select(&scalar.query) else {
            return Err(SqlError::new(
                pos,
                format!(
                    "a correlated scalar subquery must be a SELECT [DISTINCT] ... FROM ... WHERE ... [GROUP BY ...] [HAVING ...] (no ORDER BY, LIMIT, WITH or set operation) in Sluice ({})",
                    unresolved.message.trim_end_matches('.')
                ),
            ));
        };
        let value = match s.projection.as_slice() {
            [item] => select_item_expr(item)
                .ok_or_else(|| SqlError::new(pos, "a scalar subquery must select exactly one column"))?,
            items => {
                return Err(SqlError::new(
                    pos,
                    format!("a scalar subquery must select exactly one column, not {}", items.len()),
                ));
            }
        };
        let (from, selection) = self.plan_from_clause(&s.from, s.selection.as_ref(), pos)?;
        let FromItem::Plain(mut inner) = from else {
            return Err(SqlError::new(pos, "a correlated scalar subquery over a window TVF is not supported yet"));
        };
        let mut conjuncts = Vec::new();
        if let Some(w) = &selection {
            split_sql_conjuncts(w, &mut conjuncts);
        }
        // The conjuncts that read the subquery's FROM alone filter it; the
        // others must each equate an inner expression with an outer one.
        let (local, correlation): (Vec<SqlExpr>, Vec<SqlExpr>) =
            conjuncts.into_iter().partition(|c| self.plan_expr(c, &inner.schema, pos).is_ok());
        if correlation.is_empty() {
            return Err(unresolved);
        }
        for c in &local {
            inner = self.filter(inner, c, pos)?;
        }
        let both = join_schema(&outer, &inner, JoinKind::Inner, pos)?;
        for c in &correlation {
            // A condition that reads neither query's columns is a mistake of its own.
            self.plan_expr(c, &both, pos)?;
        }
        let pairs: Option<Vec<(SqlExpr, SqlExpr)>> =
            correlation.iter().map(|c| self.correlation_pair(c, &inner, &outer)).collect();
        let (inner, inner_keys, outer_keys) = match pairs {
            Some(pairs) => {
                let (inner_keys, outer_keys) = pairs.into_iter().unzip();
                (inner, inner_keys, outer_keys)
            }
            None => self.value_generator(inner, &outer, &correlation, &scalar.alias, pos)?,
        };
        // The value over the joined row, read from the joined group.
        let qualifier = format!("{}_q", scalar.alias);
        let mut group_by = match &s.group_by {
            GroupByExpr::Expressions(g, _) => g.clone(),
            GroupByExpr::All(_) => Vec::new(),
        };
        // SELECT DISTINCT v: its rows grouped by v.
        if matches!(s.distinct, Some(ast::Distinct::Distinct)) {
            if !group_by.is_empty() || s.having.is_some() || contains_aggregate(value) {
                return Err(SqlError::new(
                    pos,
                    "a correlated scalar subquery with SELECT DISTINCT and aggregates or GROUP BY is not supported yet",
                ));
            }
            group_by.push(value.clone());
        }
        let (right, value) = if group_by.is_empty() && s.having.is_none() {
            self.aggregated_per_key(inner, &inner_keys, s, value, &qualifier, pos)?
        } else {
            self.grouped_per_key(inner, &inner_keys, &group_by, s, value, &qualifier, pos)?
        };
        let right = requalify(right, &qualifier, pos)?;
        // LEFT JOINed on the correlation.
        let n_outer = outer.schema.fields().len();
        let schema = join_schema(&outer, &right, JoinKind::Left, pos)?;
        let mut cond: Option<Expr> = None;
        for (j, o) in outer_keys.iter().enumerate() {
            let o = self.plan_expr(o, &schema, pos)?;
            let k = Expr::Column(Column::new(Some(TableReference::bare(qualifier.clone())), format!("__k{j}")));
            let eq = o.eq(k);
            cond = Some(match cond {
                Some(c) => c.and(eq),
                None => eq,
            });
        }
        let cond = cond.unwrap_or(Expr::Literal(true.into(), None));
        let joined = self.join_planned(outer, right, JoinKind::Left, cond, schema, pos)?;
        let value = self.plan_expr(&value, &joined.schema, pos)?;
        with_value(joined, n_outer, value, &scalar.alias, &qualifier, pos)
    }

    /// The subquery's aggregation grouped by its side of the correlation
    /// (`keys`, as `__k<j>`), its aggregates as `__a<i>`; and its SELECT
    /// expression over them (COUNTs read 0 where the outer row has no group).
    fn aggregated_per_key(
        &mut self,
        inner: Rel,
        keys: &[SqlExpr],
        s: &Select,
        value: &SqlExpr,
        qualifier: &str,
        pos: Position,
    ) -> Result<(Rel, SqlExpr), SqlError> {
        let mut value = value.clone();
        let mut aggregates = Aggregates { qualifier: qualifier.to_string(), calls: Vec::new() };
        let _ = ast::VisitMut::visit(&mut value, &mut aggregates);
        if aggregates.calls.is_empty() {
            // Without an aggregate, at most one row per outer row: Flink's
            // SINGLE_VALUE, checked when a group gets a second row.
            let (calls, checked) = single_value_of(value, qualifier);
            aggregates.calls = calls;
            value = checked;
        }
        let mut grouped = s.clone();
        grouped.projection = key_items(keys)
            .chain(aggregates.calls.iter().enumerate().map(|(i, f)| (SqlExpr::Function(f.clone()), format!("__a{i}"))))
            .map(|(expr, alias)| SelectItem::ExprWithAlias { expr, alias: Ident::new(alias) })
            .collect();
        grouped.selection = None;
        grouped.having = None;
        Ok((self.plan_group_aggregate(inner, keys, &grouped, pos, Vec::new())?, value))
    }

    /// A subquery with its own GROUP BY (or HAVING): its rows, grouped by its
    /// GROUP BY and its side of the correlation, then one per key of the
    /// correlation, checked as Flink's `SINGLE_VALUE` (a key with no row reads
    /// NULL, even for a COUNT).
    #[allow(clippy::too_many_arguments)]
    fn grouped_per_key(
        &mut self,
        inner: Rel,
        keys: &[SqlExpr],
        group_by: &[SqlExpr],
        s: &Select,
        value: &SqlExpr,
        qualifier: &str,
        pos: Position,
    ) -> Result<(Rel, SqlExpr), SqlError> {
        let mut rows = s.clone();
        rows.projection = key_items(keys)
            .chain(std::iter::once((value.clone(), "__v".to_string())))
            .map(|(expr, alias)| SelectItem::ExprWithAlias { expr, alias: Ident::new(alias) })
            .collect();
        rows.selection = None;
        let mut all = group_by.to_vec();
        all.extend(keys.iter().filter(|k| !group_by.contains(k)).cloned());
        let rows = self.plan_group_aggregate(inner, &all, &rows, pos, Vec::new())?;
        let (calls, checked) = single_value_of(SqlExpr::Identifier(Ident::new("__v")), qualifier);
        let key_columns: Vec<SqlExpr> =
            (0..keys.len()).map(|j| SqlExpr::Identifier(Ident::new(format!("__k{j}")))).collect();
        let mut per_key = select_template(pos)?;
        per_key.projection = key_items(&key_columns)
            .chain(calls.into_iter().enumerate().map(|(i, f)| (SqlExpr::Function(f), format!("__a{i}"))))
            .map(|(expr, alias)| SelectItem::ExprWithAlias { expr, alias: Ident::new(alias) })
            .collect();
        Ok((self.plan_group_aggregate(rows, &key_columns, &per_key, pos, Vec::new())?, checked))
    }

    /// A correlation that is not equalities alone, as Calcite decorrelates
    /// it: the outer query's distinct values of the columns it reads (its
    /// value generator), joined with the subquery's FROM on the correlation.
    /// Returns that join, and the generated values' columns (to group by) with
    /// the outer columns they stand for (to join back on).
    fn value_generator(
        &mut self,
        inner: Rel,
        outer: &Rel,
        correlation: &[SqlExpr],
        alias: &str,
        pos: Position,
    ) -> Result<(Rel, Vec<SqlExpr>, Vec<SqlExpr>), SqlError> {
        let reads = |e: &SqlExpr, rel: &Rel| self.plan_expr(e, &rel.schema, pos).is_ok();
        let mut refs: Vec<SqlExpr> = Vec::new();
        for c in correlation {
            let _ = ast::visit_expressions(c, |e| {
                if matches!(e, SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_))
                    && !refs.contains(e)
                    && !reads(e, &inner)
                    && reads(e, outer)
                {
                    refs.push(e.clone());
                }
                ControlFlow::<()>::Continue(())
            });
        }
        let qualifier = format!("{alias}_d");
        let generated: Vec<SqlExpr> = (0..refs.len())
            .map(|j| SqlExpr::CompoundIdentifier(vec![Ident::new(qualifier.clone()), Ident::new(format!("__d{j}"))]))
            .collect();
        let mut select = select_template(pos)?;
        select.projection = refs
            .iter()
            .enumerate()
            .map(|(j, r)| SelectItem::ExprWithAlias { expr: r.clone(), alias: Ident::new(format!("__d{j}")) })
            .collect();
        let values = self.plan_group_aggregate(outer.clone(), &refs, &select, pos, Vec::new())?;
        let values = requalify(values, &qualifier, pos)?;
        let mut on = correlation.to_vec();
        for c in on.iter_mut() {
            let _ = ast::VisitMut::visit(c, &mut Replace { from: &refs, to: &generated });
        }
        let on = on.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        });
        let on = on.ok_or_else(|| SqlError::new(pos, "internal: a correlation without conditions"))?;
        let joined = self.join(inner, values, JoinKind::Inner, &on, pos).map_err(|e| {
            if e.message.starts_with("Sluice needs an equality condition") {
                SqlError::new(
                    e.position,
                    "a correlated scalar subquery needs an equality with the outer query among its conditions (as b.auction = a.id), to key the join of its rows with the outer query's values; Flink runs one without it in a single subtask, Sluice does not yet",
                )
            } else {
                e
            }
        })?;
        Ok((joined, generated, refs))
    }

    /// `c` as (inner expression, outer expression) when it equates one of
    /// each.
    fn correlation_pair(&self, c: &SqlExpr, inner: &Rel, outer: &Rel) -> Option<(SqlExpr, SqlExpr)> {
        let SqlExpr::BinaryOp { left, op: BinaryOperator::Eq, right } = strip_nested(c) else {
            return None;
        };
        let pos = Position { line: 0, column: 0 };
        let reads = |e: &SqlExpr, rel: &Rel| self.plan_expr(e, &rel.schema, pos).is_ok();
        if reads(left, inner) && !reads(right, inner) && reads(right, outer) {
            Some((left.as_ref().clone(), right.as_ref().clone()))
        } else if reads(right, inner) && !reads(left, inner) && reads(left, outer) {
            Some((right.as_ref().clone(), left.as_ref().clone()))
        } else {
            None
        }
    }
}

/// The outer query's columns of `joined` (its first `n_outer`), and `value`
/// as the column `<qualifier>.<name>` after them.
fn with_value(
    joined: Rel,
    n_outer: usize,
    value: Expr,
    name: &str,
    qualifier: &str,
    pos: Position,
) -> Result<Rel, SqlError> {
    let mut fields = Vec::new();
    let mut exprs = Vec::new();
    for (q, f) in joined.schema.iter().take(n_outer) {
        fields.push((q.cloned(), f.clone()));
        exprs.push(Expr::Column(Column::new(q.cloned(), f.name())));
    }
    let t = value.get_type(&joined.schema).map_err(df_err(pos))?;
    let nullable = value.nullable(&joined.schema).map_err(df_err(pos))?;
    fields.push((Some(TableReference::bare(qualifier)), Arc::new(Field::new(name, t, nullable))));
    exprs.push(value);
    let schema = DFSchema::new_with_metadata(fields, HashMap::new()).map_err(df_err(pos))?;
    let rowtime = joined.rowtime.filter(|r| *r < n_outer);
    let unique_key = joined.unique_key.clone().filter(|k| k.iter().all(|c| *c < n_outer));
    let updating = joined.updating;
    Ok(Rel {
        node: PlanNode::Project { input: Box::new(joined), exprs },
        schema: Arc::new(schema),
        rowtime,
        updating,
        unique_key,
    })
}
