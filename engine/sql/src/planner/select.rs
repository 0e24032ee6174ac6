//! A SELECT: its WHERE, and its SELECT list over a plain relation or a window
//! TVF.

use std::ops::ControlFlow;

use arrow::datatypes::DataType;
use datafusion_common::Column;
use datafusion_expr::ExprSchemable;
use sqlparser::ast::{self, Expr as SqlExpr, GroupByExpr, Select, SelectItem};

use super::aggregate::{Windowing, contains_aggregate};
use super::grouping_sets::grouping_sets;
use super::over::is_over_aggregation;
use super::query::FromItem;
use super::rank::{pending_rank, select_item_has_window_call};
use super::scalar_subquery::Scalars;
use super::subquery::take_subqueries;
use super::subquery_mark::Clause;
use super::window::is_window_col;
use super::{Planner, df_err, ident_name, pos_of, project, unsupported};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{PlanNode, Rel, WindowKind};
use crate::parser::{expr_position, object_name};
use crate::types::flink_name;

pub(super) fn select_item_expr(item: &SelectItem) -> Option<&SqlExpr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

impl Planner {
    pub(super) fn plan_select(&mut self, s: &Select, pos: Position) -> Result<Rel, SqlError> {
        let pos = pos_of(s, pos);
        match self.scalar_subqueries(s, pos) {
            Some((rewritten, scalars)) => self.plan_select_with(&rewritten, pos, scalars),
            None => self.plan_select_with(s, pos, Scalars::default()),
        }
    }

    /// A SELECT whose scalar subqueries (see `scalar_subquery`) are `scalars`.
    fn plan_select_with(&mut self, s: &Select, pos: Position, scalars: Scalars) -> Result<Rel, SqlError> {
        let distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::On(_)) => {
                return Err(SqlError::new(pos, "SELECT DISTINCT ON is not Flink SQL; use SELECT DISTINCT or GROUP BY"));
            }
        };
        if s.from.is_empty() {
            return Err(SqlError::new(pos, "a SELECT needs a FROM clause"));
        }
        if s.qualify.is_some() {
            return Err(unsupported(pos, "QUALIFY"));
        }
        let group_by = match &s.group_by {
            GroupByExpr::Expressions(e, m) if m.is_empty() => e.clone(),
            _ => {
                return Err(unsupported(
                    pos,
                    "GROUP BY ALL and GROUP BY ... WITH ROLLUP / CUBE (write ROLLUP (...) or CUBE (...) among the keys)",
                ));
            }
        };
        let aggregating = !group_by.is_empty()
            || s.having.is_some()
            || s.projection.iter().filter_map(select_item_expr).any(contains_aggregate);
        let over = s.projection.iter().any(select_item_has_window_call);
        let over_agg = over && is_over_aggregation(&s.projection);
        if over && aggregating {
            return Err(SqlError::new(
                pos,
                if over_agg {
                    "OVER aggregations in a SELECT with GROUP BY or plain aggregates are not supported; aggregate in a subquery and apply the OVER aggregation in an enclosing query"
                } else {
                    "ROW_NUMBER() OVER (...) in a SELECT with GROUP BY or aggregates is not supported; rank the aggregated rows in an enclosing query"
                },
            ));
        }
        // `[NOT] IN (subquery)` and `[NOT] EXISTS (subquery)` conjuncts of the
        // WHERE semi- or anti-join the FROM clause.
        // Conditions with subqueries elsewhere (under OR or NOT) are mark joins.
        let (subqueries, nested, where_rest) = take_subqueries(s.selection.as_ref(), pos);
        // Joins in FROM take the WHERE conditions they can use; the rest is left.
        let (from, selection) = self.plan_from_clause(&s.from, where_rest.as_ref(), pos)?;
        // Scalar subqueries bring a column each (hidden from `*`), before
        // the aggregation or after it.
        let Scalars { before, after } = scalars;
        let hidden = before.len();
        let after = self.scalar_values(after)?;
        let from = match from {
            _ if subqueries.is_empty() && nested.is_empty() && before.is_empty() => from,
            FromItem::Plain(rel) => {
                let rel = self.subquery_joins(rel, subqueries, Clause::Where)?;
                let mut rel = self.scalar_joins(rel, before)?;
                for c in &nested {
                    rel = self.filter_with_subqueries(rel, c, Clause::Where, pos)?;
                }
                FromItem::Plain(rel)
            }
            FromItem::Window { .. } => {
                return Err(unsupported(pos, "a subquery in the WHERE or SELECT list of a window TVF's query"));
            }
        };
        match from {
            FromItem::Plain(rel) => {
                if aggregating && distinct {
                    return Err(unsupported(
                        pos,
                        "SELECT DISTINCT with aggregates (aggregate in a subquery, then SELECT DISTINCT)",
                    ));
                }
                if pending_rank(&rel) && !aggregating {
                    if over_agg {
                        return Err(SqlError::new(
                            pos,
                            "an OVER aggregation over the result of ROW_NUMBER() is not supported; filter the ROW_NUMBER() on its row number (WHERE rn <= N) first",
                        ));
                    }
                    if over {
                        return Err(SqlError::new(
                            pos,
                            "ROW_NUMBER() OVER (...) over the result of another ROW_NUMBER() is not supported; filter the first one on its row number (WHERE rn <= N) first",
                        ));
                    }
                    let rel = self.plan_top_n(rel, s, pos)?;
                    return if distinct { distinct_rows(rel, pos) } else { Ok(rel) };
                }
                if over {
                    if distinct {
                        return Err(unsupported(pos, "SELECT DISTINCT with OVER (...)"));
                    }
                    if over_agg {
                        return self.plan_over_aggregate(rel, s, pos, true);
                    }
                    return self.plan_over_select(rel, s, pos, true);
                }
                if aggregating {
                    let rel = match &selection {
                        Some(w) => self.filter(rel, w, pos)?,
                        None => rel,
                    };
                    if let Some(sets) = grouping_sets(&group_by) {
                        if !after.is_empty() {
                            return Err(unsupported(
                                pos,
                                "a scalar subquery in the SELECT list or HAVING of a GROUPING SETS, ROLLUP or CUBE aggregation",
                            ));
                        }
                        let schema = rel.schema.clone();
                        return self.plan_grouping_sets(&schema, sets, s, pos, &mut |p, gb, sel| {
                            p.plan_aggregation(rel.clone(), gb, sel, pos, Vec::new())
                        });
                    }
                    return self.plan_aggregation(rel, &group_by, s, pos, after);
                }
                let rel = match &selection {
                    Some(w) => self.filter(rel, w, pos)?,
                    None => rel,
                };
                let rel = self.plan_projection_hiding(rel, &s.projection, pos, hidden)?;
                if distinct { distinct_rows(rel, pos) } else { Ok(rel) }
            }
            FromItem::Window { input, window, partition_by, qualifier } => {
                // A WHERE over the input's columns is applied before the window.
                let wschema = self.window_schema(&input, &window, qualifier.as_deref(), pos)?;
                let mut input = input;
                let mut late_filter = None;
                if let Some(w) = &selection {
                    let refs_window = {
                        let mut found = false;
                        let _ = ast::visit_expressions(w, |x| {
                            if is_window_col(x).is_some() {
                                found = true;
                            }
                            ControlFlow::<()>::Continue(())
                        });
                        found
                    };
                    if refs_window {
                        late_filter = Some(w.clone());
                    } else {
                        input = self.filter(input, w, pos)?;
                    }
                }
                if aggregating {
                    if late_filter.is_some() {
                        return Err(unsupported(pos, "a WHERE on window columns before a window aggregation"));
                    }
                    if let Some(sets) = grouping_sets(&group_by) {
                        if !after.is_empty() {
                            return Err(unsupported(
                                pos,
                                "a scalar subquery in the SELECT list or HAVING of a GROUPING SETS, ROLLUP or CUBE aggregation",
                            ));
                        }
                        return self.plan_grouping_sets(&wschema, sets, s, pos, &mut |p, gb, sel| {
                            let windowing = Windowing {
                                window: window.clone(),
                                partition_by: partition_by.clone(),
                                attached: None,
                            };
                            p.plan_window_aggregate(input.clone(), windowing, gb, sel, pos, Vec::new())
                        });
                    }
                    let windowing = Windowing { window, partition_by, attached: None };
                    return self.plan_window_aggregate(input, windowing, &group_by, s, pos, after);
                }
                if distinct {
                    return Err(unsupported(
                        pos,
                        "SELECT DISTINCT over a window TVF (write GROUP BY window_start, window_end and the columns)",
                    ));
                }
                if matches!(window.kind, WindowKind::Session { .. }) {
                    return Err(unsupported(
                        pos,
                        if over {
                            "a Window Top-N over SESSION windows"
                        } else {
                            "SESSION without an aggregation (GROUP BY window_start, window_end)"
                        },
                    ));
                }
                let rowtime = Some(wschema.fields().len() - 1);
                let mut rel = Rel {
                    node: PlanNode::WindowAssign { input: Box::new(input), window },
                    schema: wschema,
                    rowtime,
                    updating: false,
                    unique_key: None,
                };
                if let Some(w) = late_filter {
                    rel = self.filter(rel, &w, pos)?;
                }
                if over_agg {
                    return self.plan_over_aggregate(rel, s, pos, false);
                }
                if over {
                    // A Window Top-N when its PARTITION BY holds window_start and window_end.
                    return self.plan_over_select(rel, s, pos, false);
                }
                self.plan_projection(rel, &s.projection, pos)
            }
        }
    }

    /// An aggregation of a plain relation by `group_by`: a group window's
    /// (`GROUP BY TUMBLE(ts, ...)`), a window-attached one, or a non-windowed one;
    /// `after` are the scalar subqueries its SELECT list and HAVING read.
    fn plan_aggregation(
        &mut self,
        rel: Rel,
        group_by: &[SqlExpr],
        s: &Select,
        pos: Position,
        after: Vec<Rel>,
    ) -> Result<Rel, SqlError> {
        if let Some(gw) = self.group_window(&rel, group_by, s, pos)? {
            let session = matches!(gw.window.kind, WindowKind::Session { .. });
            let partition_by = if session { gw.keys } else { vec![] };
            let windowing = Windowing { window: gw.window, partition_by, attached: None };
            return self.plan_window_aggregate(rel, windowing, &gw.group_by, &gw.select, pos, after);
        }
        if let Some((window, attached)) = self.attached_windows(&rel, group_by, pos) {
            let windowing = Windowing { window, partition_by: vec![], attached: Some(attached) };
            return self.plan_window_aggregate(rel, windowing, group_by, s, pos, after);
        }
        self.plan_group_aggregate(rel, group_by, s, pos, after)
    }

    pub(super) fn filter(&self, rel: Rel, w: &SqlExpr, pos: Position) -> Result<Rel, SqlError> {
        if pending_rank(&rel) {
            // The WHERE of a query that reads a ROW_NUMBER() (an aggregation
            // over a Top-N): it holds the Top-N's range.
            return self.filter_top_n(rel, w, pos);
        }
        if contains_aggregate(w) {
            return Err(SqlError::new(expr_position(w, pos), "aggregates are not allowed in WHERE; use HAVING"));
        }
        let predicate = self.plan_expr(w, &rel.schema, pos)?;
        let t = predicate.get_type(&rel.schema).map_err(df_err(pos))?;
        if t != DataType::Boolean && t != DataType::Null {
            return Err(SqlError::new(
                expr_position(w, pos),
                format!("WHERE must be a BOOLEAN condition, not {}", flink_name(&t)),
            ));
        }
        let schema = rel.schema.clone();
        let (rowtime, updating, unique_key) = (rel.rowtime, rel.updating, rel.unique_key.clone());
        Ok(Rel { node: PlanNode::Filter { input: Box::new(rel), predicate }, schema, rowtime, updating, unique_key })
    }

    pub(super) fn plan_projection(&self, rel: Rel, items: &[SelectItem], pos: Position) -> Result<Rel, SqlError> {
        self.plan_projection_hiding(rel, items, pos, 0)
    }

    /// A SELECT list over `rel`, whose last `hidden` columns `*` does not expand to.
    pub(super) fn plan_projection_hiding(
        &self,
        rel: Rel,
        items: &[SelectItem],
        pos: Position,
        hidden: usize,
    ) -> Result<Rel, SqlError> {
        let mut exprs = Vec::new();
        let visible = rel.schema.fields().len().saturating_sub(hidden);
        for (i, item) in items.iter().enumerate() {
            match item {
                SelectItem::Wildcard(_) => {
                    for (q, f) in rel.schema.iter().take(visible) {
                        exprs.push((Expr::Column(Column::new(q.cloned(), f.name())), f.name().clone()));
                    }
                }
                SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                    let q = object_name(n);
                    let before = exprs.len();
                    for (fq, f) in rel.schema.iter().take(visible) {
                        if fq.is_some_and(|fq| fq.table() == q) {
                            exprs.push((Expr::Column(Column::new(fq.cloned(), f.name())), f.name().clone()));
                        }
                    }
                    if exprs.len() == before {
                        return Err(SqlError::new(pos_of(item, pos), format!("`{q}.*`: no such table in FROM")));
                    }
                }
                SelectItem::UnnamedExpr(e) => {
                    let planned = self.plan_expr(e, &rel.schema, pos)?;
                    let name = match (&planned, ident_name(e)) {
                        (Expr::Column(c), _) => c.name.clone(),
                        (_, Some(n)) => n.to_string(),
                        _ => format!("EXPR${i}"),
                    };
                    exprs.push((planned, name));
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    exprs.push((self.plan_expr(expr, &rel.schema, pos)?, alias.value.clone()));
                }
                other => return Err(unsupported(pos_of(other, pos), &format!("select item `{other}`"))),
            }
        }
        uniquify(&mut exprs);
        project(rel, exprs, pos)
    }
}

/// `SELECT DISTINCT`: as Flink plans it, an aggregation grouped by every
/// column, without aggregates (an updating relation keyed by all columns).
pub(super) fn distinct_rows(rel: Rel, pos: Position) -> Result<Rel, SqlError> {
    let keys: Vec<Expr> = rel.schema.iter().map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name()))).collect();
    let fields: Vec<(Option<datafusion_common::TableReference>, std::sync::Arc<arrow::datatypes::Field>)> =
        rel.schema.fields().iter().map(|f| (None, f.clone())).collect();
    let schema = datafusion_common::DFSchema::new_with_metadata(fields, std::collections::HashMap::new())
        .map_err(|e| SqlError::new(pos, format!("{e}; give the columns distinct names with AS")))?;
    let n = keys.len();
    Ok(Rel {
        node: PlanNode::GroupAggregate { input: Box::new(rel), keys, aggs: vec![], position: pos },
        schema: std::sync::Arc::new(schema),
        rowtime: None,
        updating: true,
        unique_key: Some((0..n).collect()),
    })
}

/// Makes the names of a SELECT list unique as Calcite's `uniquify` does
/// (`SELECT a.id, b.id` over a join names its columns `id`, `id0`): a name seen
/// before in the list gets the first numeric suffix, from 0, not seen before.
fn uniquify(exprs: &mut [(Expr, String)]) {
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (_, name) in exprs.iter_mut() {
        if !used.contains(name.as_str()) {
            used.insert(name.clone());
            continue;
        }
        if let Some(unique) = (0..).map(|n| format!("{name}{n}")).find(|c| !used.contains(c)) {
            used.insert(unique.clone());
            *name = unique;
        }
    }
}
