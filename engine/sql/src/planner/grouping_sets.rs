//! `GROUP BY GROUPING SETS ((a, b), (a), ())`, `ROLLUP (a, b)` and `CUBE (a, b)`,
//! beside plain keys (`GROUP BY a, ROLLUP (b, c)` is the cross product), over a
//! plain relation or a window TVF.
//!
//! Each grouping set is planned as its own aggregation of the same input, and
//! their results are a UNION ALL, which holds the rows of Flink's plan (an
//! `Expand` of each input row into one row per set, aggregated by the keys and
//! the set's id): in the SELECT list and HAVING, outside aggregate calls, a
//! key the set does not group by is a NULL of its type, and `GROUPING(k, ...)`
//! and `GROUPING_ID(k, ...)` are the set's bit vector (1 for a key it does not
//! group by, the first argument the highest bit), a BIGINT.

use std::ops::ControlFlow;

use datafusion_common::DFSchema;
use datafusion_expr::ExprSchemable;
use sqlparser::ast::{self, Expr as SqlExpr, Select, VisitorMut};

use super::aggregate::is_aggregate_name;
use super::{Planner, df_err, ident_name};
use crate::dialect::FlinkDialect;
use crate::error::{Position, SqlError};
use crate::expr::plain_args;
use crate::logical::Rel;
use crate::parser::expr_position;
use crate::types::flink_name;

/// The grouping sets of a GROUP BY, when it has GROUPING SETS, ROLLUP or CUBE.
pub(super) fn grouping_sets(group_by: &[SqlExpr]) -> Option<Vec<Vec<SqlExpr>>> {
    if !group_by.iter().any(|g| matches!(g, SqlExpr::GroupingSets(_) | SqlExpr::Rollup(_) | SqlExpr::Cube(_))) {
        return None;
    }
    let mut sets: Vec<Vec<SqlExpr>> = vec![Vec::new()];
    for g in group_by {
        let options: Vec<Vec<SqlExpr>> = match g {
            SqlExpr::GroupingSets(v) => v.clone(),
            SqlExpr::Rollup(v) => (0..=v.len()).rev().map(|i| v[..i].concat()).collect(),
            SqlExpr::Cube(v) => {
                let n = v.len();
                (0..1usize << n)
                    .map(|mask| (0..n).filter(|i| mask & (1 << (n - 1 - i)) == 0).flat_map(|i| v[i].clone()).collect())
                    .collect()
            }
            plain => vec![vec![plain.clone()]],
        };
        sets = sets.iter().flat_map(|s| options.iter().map(move |o| [s.clone(), o.clone()].concat())).collect();
    }
    Some(sets)
}

/// Whether two GROUP BY items are the same key.
fn same_key(a: &SqlExpr, b: &SqlExpr) -> bool {
    a == b || matches!((ident_name(a), ident_name(b)), (Some(x), Some(y)) if x == y)
}

/// Rewrites an expression of the SELECT list or HAVING for one grouping set.
struct ForSet<'a> {
    /// Every key of every set, with a NULL of its type.
    keys: &'a [(SqlExpr, SqlExpr)],
    set: &'a [SqlExpr],
    /// Depth inside aggregate calls, whose arguments are left alone.
    in_aggregate: usize,
    error: Option<SqlError>,
    fallback: Position,
}

fn is_aggregate_call(e: &SqlExpr) -> bool {
    matches!(e, SqlExpr::Function(f) if f.over.is_none() && is_aggregate_name(&f.name.to_string().to_ascii_uppercase()))
}

impl VisitorMut for ForSet<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if is_aggregate_call(e) {
            self.in_aggregate += 1;
            return ControlFlow::Continue(());
        }
        if self.in_aggregate > 0 {
            return ControlFlow::Continue(());
        }
        if let SqlExpr::Function(f) = e {
            let name = f.name.to_string().to_ascii_uppercase();
            if name == "GROUPING" || name == "GROUPING_ID" {
                let args = plain_args(f);
                let mut bits = 0i64;
                for a in &args {
                    if !self.keys.iter().any(|(k, _)| same_key(k, a)) {
                        self.error = Some(SqlError::new(
                            expr_position(a, self.fallback),
                            format!("{name}({a}): `{a}` is not a GROUP BY key"),
                        ));
                        return ControlFlow::Break(());
                    }
                    bits = (bits << 1) | i64::from(!self.set.iter().any(|k| same_key(k, a)));
                }
                *e = SqlExpr::Value(ast::Value::Number(bits.to_string(), true).into());
                return ControlFlow::Continue(());
            }
        }
        if let Some((_, null)) = self.keys.iter().find(|(k, _)| same_key(k, e))
            && !self.set.iter().any(|k| same_key(k, e))
        {
            *e = null.clone();
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if is_aggregate_call(e) {
            self.in_aggregate -= 1;
        }
        ControlFlow::Continue(())
    }
}

/// Plans the aggregation of one grouping set: its GROUP BY and its SELECT.
pub(super) type AggregateOne<'a> = dyn FnMut(&mut Planner, &[SqlExpr], &Select) -> Result<Rel, SqlError> + 'a;

impl Planner {
    /// The aggregation of an input (of `schema`) by each of `sets` (see [`grouping_sets`]),
    /// with `aggregate` planning one of them (its GROUP BY and SELECT), and
    /// the UNION ALL of their results.
    pub(super) fn plan_grouping_sets(
        &mut self,
        schema: &DFSchema,
        sets: Vec<Vec<SqlExpr>>,
        s: &Select,
        pos: Position,
        aggregate: &mut AggregateOne<'_>,
    ) -> Result<Rel, SqlError> {
        // Every key once, with a NULL of its type (window columns are always grouped).
        let mut keys: Vec<(SqlExpr, SqlExpr)> = Vec::new();
        for k in sets.iter().flatten() {
            if keys.iter().any(|(seen, _)| same_key(seen, k)) || super::window::is_window_col(k).is_some() {
                continue;
            }
            let kpos = expr_position(k, pos);
            let planned = self.plan_expr(k, schema, kpos)?;
            let t = planned.get_type(schema).map_err(df_err(kpos))?;
            keys.push((k.clone(), typed_null(&flink_name(&t), kpos)?));
        }
        let mut out: Option<Rel> = None;
        for set in &sets {
            let mut select = s.clone();
            let mut v = ForSet { keys: &keys, set, in_aggregate: 0, error: None, fallback: pos };
            for item in select.projection.iter_mut() {
                let _ = ast::VisitMut::visit(item, &mut v);
            }
            if let Some(h) = select.having.as_mut() {
                let _ = ast::VisitMut::visit(h, &mut v);
            }
            if let Some(e) = v.error {
                return Err(e);
            }
            let rel = aggregate(self, set, &select)?;
            out = Some(match out {
                None => rel,
                Some(acc) => self.union(acc, rel, pos)?,
            });
        }
        out.ok_or_else(|| SqlError::new(pos, "GROUPING SETS needs at least one grouping set"))
    }
}

/// `CAST(NULL AS <type>)` for a Flink type name.
fn typed_null(type_name: &str, pos: Position) -> Result<SqlExpr, SqlError> {
    let sql = format!("CAST(NULL AS {type_name})");
    sqlparser::parser::Parser::new(&FlinkDialect)
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::new(pos, format!("a NULL of type {type_name} for a grouping set: {e}")))
}
