//! Top-N and deduplication: `ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...)`
//! in a SELECT list, filtered on its result by the query that reads it (Flink's
//! Top-N pattern).
//!
//! Planning follows the SQL as written, in two steps:
//! 1. the SELECT with `ROW_NUMBER() OVER (...) AS rn` ([`Planner::plan_over_select`])
//!    plans a [`PlanNode::Rank`] without a range (the input's columns, then the row
//!    number) under a projection in SELECT-list order;
//! 2. the SELECT that reads it with `WHERE rn <= N` ([`Planner::plan_top_n`])
//!    takes the range from the conditions on the row number, keeps the row number
//!    in the Rank's output only when its SELECT list uses it (a range of one rank
//!    makes it a constant, appended above the Rank), and turns a Top-1 ordered
//!    by the event-time attribute without the row number into a
//!    [`PlanNode::Deduplicate`], as Flink's rules do; a PARTITION BY with
//!    `window_start` and `window_end` makes it a Window Top-N (`window_rank`).
//!
//! A Top-N reads an append-only or an updating input; a deduplication only an
//! append-only one (an updating input has no time attribute).
//!
//! Invariants:
//! - between the two steps the Rank is reached from the relation through
//!   projections only ([`pending_rank`]); a Rank that never gets a range is
//!   rejected at its INSERT ([`check_ranked`]) with the position of its
//!   `ROW_NUMBER()`;
//! - a window function anywhere else is rejected by the expression planner, so
//!   no DataFusion error about window functions reaches the user.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion_common::{DFSchema, TableReference};
use sqlparser::ast::{self, Expr as SqlExpr, FunctionArguments, Ident, Select, SelectItem, WindowType};

pub(super) use super::rank_bounds::{Bounds, narrow};
use super::{Planner, df_err, pos_of, project};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{PlanNode, RankRange, Rel, SortKey, WindowRank};
use crate::parser::expr_position;

/// The name of the row number column between the two steps.
const RANK_COLUMN: &str = "$row_number";

/// The window functions Flink knows that Sluice does not run, for clear errors.
const RANKING: [&str; 5] = ["RANK", "DENSE_RANK", "PERCENT_RANK", "CUME_DIST", "NTILE"];

/// The window function calls (`f(...) OVER ...`) in an expression, cloned.
pub(super) fn window_calls(e: &SqlExpr) -> Vec<ast::Function> {
    let mut found = Vec::new();
    let _ = ast::visit_expressions(e, |x| {
        if let SqlExpr::Function(f) = x
            && f.over.is_some()
        {
            found.push(f.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Whether an expression holds a window function call.
pub(super) fn has_window_call(e: &SqlExpr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        if matches!(x, SqlExpr::Function(f) if f.over.is_some()) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

pub(super) fn select_item_has_window_call(item: &SelectItem) -> bool {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => has_window_call(e),
        _ => false,
    }
}

/// Where a relation's pending Rank (one without a range) is, when the relation
/// reaches it through projections only.
pub(super) fn pending_rank(rel: &Rel) -> bool {
    match &rel.node {
        PlanNode::Rank { range: None, .. } => true,
        PlanNode::Project { input, .. } => pending_rank(input),
        _ => false,
    }
}

/// Rejects a plan that still holds a Rank without a range.
pub(super) fn check_ranked(rel: &Rel) -> Result<(), SqlError> {
    match &rel.node {
        PlanNode::Rank { range: None, position, .. } => Err(SqlError::new(
            *position,
            "ROW_NUMBER() OVER (...) must be filtered on its result by the query that reads it, as in SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY k ORDER BY c DESC) AS rn FROM t) WHERE rn <= 10: a streaming query runs it as a Top-N",
        )),
        PlanNode::Source(_) => Ok(()),
        PlanNode::Filter { input, .. }
        | PlanNode::Project { input, .. }
        | PlanNode::WindowAssign { input, .. }
        | PlanNode::WindowAggregate { input, .. }
        | PlanNode::GroupAggregate { input, .. }
        | PlanNode::ChangelogNormalize { input, .. }
        | PlanNode::Rank { input, .. }
        | PlanNode::TemporalSort { input, .. }
        | PlanNode::Deduplicate { input, .. }
        | PlanNode::OverAggregate { input, .. }
        | PlanNode::Unnest { input, .. } => check_ranked(input),
        PlanNode::Union { inputs } => inputs.iter().try_for_each(check_ranked),
        PlanNode::Join { left, right, .. } => {
            check_ranked(left)?;
            check_ranked(right)
        }
    }
}

/// The index of the pending Rank's row number in a relation that reaches it
/// through projections, if the projections pass it through.
fn rank_column(rel: &Rel) -> Option<usize> {
    match &rel.node {
        PlanNode::Rank { .. } => Some(rel.schema.fields().len() - 1),
        PlanNode::Project { input, exprs } => {
            let inner = rank_column(input)?;
            exprs
                .iter()
                .position(|e| matches!(e, Expr::Column(c) if input.schema.index_of_column(c).ok() == Some(inner)))
        }
        _ => None,
    }
}

fn pending_position(rel: &Rel) -> Option<Position> {
    match &rel.node {
        PlanNode::Rank { position, .. } => Some(*position),
        PlanNode::Project { input, .. } => pending_position(input),
        _ => None,
    }
}

/// What a Top-N becomes: the decision of step 2, pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RankPlan {
    TopN { range: RankRange, output_rank: bool },
    Deduplicate { keep_last: bool },
}

/// Flink's choice between a Top-N and a deduplication: a Top-1 without the row
/// number, ordered by the event-time attribute alone, keeps the first (ASC) or
/// last (DESC) row per key.
pub(super) fn choose(range: RankRange, output_rank: bool, order_on_rowtime: Option<bool>) -> RankPlan {
    match order_on_rowtime {
        Some(asc) if range == (RankRange { start: 1, end: 1 }) && !output_rank => {
            RankPlan::Deduplicate { keep_last: !asc }
        }
        _ => RankPlan::TopN { range, output_rank },
    }
}

impl Planner {
    /// Step 1: a SELECT whose list holds `ROW_NUMBER() OVER (...)`, over `rel`
    /// (its FROM, before its WHERE).
    /// `apply_where`: whether its WHERE is still to apply (a window TVF's
    /// caller has applied it).
    pub(super) fn plan_over_select(
        &mut self,
        rel: Rel,
        s: &Select,
        pos: Position,
        apply_where: bool,
    ) -> Result<Rel, SqlError> {
        let rel = match &s.selection {
            Some(w) if apply_where => self.filter(rel, w, pos)?,
            _ => rel,
        };
        let mut call_at = None;
        for (i, item) in s.projection.iter().enumerate() {
            let (e, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
                _ => continue,
            };
            let calls = window_calls(e);
            let Some(f) = calls.first() else { continue };
            let fpos = pos_of(f, pos);
            let is_whole = matches!(e, SqlExpr::Function(g) if g.over.is_some());
            if call_at.is_some() || calls.len() > 1 {
                return Err(SqlError::new(
                    fpos,
                    "only one ROW_NUMBER() OVER (...) per SELECT is supported (a Top-N ranks by one ordering)",
                ));
            }
            if !is_whole {
                return Err(SqlError::new(
                    fpos,
                    "ROW_NUMBER() OVER (...) must be a SELECT item of its own (AS rn), not inside an expression",
                ));
            }
            call_at = Some((i, f.clone(), alias.cloned(), fpos));
        }
        let Some((item_idx, f, alias, fpos)) = call_at else {
            return Err(SqlError::new(pos, "internal: no window function in this SELECT"));
        };
        let name = f.name.to_string().to_ascii_uppercase();
        if name != "ROW_NUMBER" {
            let msg = if super::aggregate::is_aggregate_name(&name) {
                format!(
                    "OVER aggregations ({name}(...) OVER (...)) are not supported yet; ROW_NUMBER() OVER (...) filtered on its result (Top-N) is"
                )
            } else if RANKING.contains(&name.as_str()) {
                format!(
                    "{name}() OVER (...) is not supported; as in Flink's streaming Top-N, the ranking function must be ROW_NUMBER()"
                )
            } else {
                format!(
                    "window function {name} is not supported; ROW_NUMBER() OVER (...) filtered on its result (Top-N) is"
                )
            };
            return Err(SqlError::new(fpos, msg));
        }
        if !matches!(&f.args, FunctionArguments::None)
            && !matches!(&f.args, FunctionArguments::List(l) if l.args.is_empty())
        {
            return Err(SqlError::new(fpos, "ROW_NUMBER() takes no arguments"));
        }
        let spec = match &f.over {
            Some(WindowType::WindowSpec(spec)) => spec,
            _ => {
                return Err(SqlError::new(
                    fpos,
                    "named windows (OVER w ... WINDOW w AS (...)) are not supported; write the window in OVER (...)",
                ));
            }
        };
        if spec.window_frame.is_some() {
            return Err(SqlError::new(fpos, "ROW_NUMBER() OVER (...) takes no window frame (ROWS/RANGE BETWEEN ...)"));
        }
        if spec.order_by.is_empty() {
            return Err(SqlError::new(
                fpos,
                "ROW_NUMBER() OVER (...) needs an ORDER BY: a Top-N ranks the rows of each partition by it, as in OVER (PARTITION BY k ORDER BY c DESC)",
            ));
        }
        let mut partition = Vec::new();
        for p in &spec.partition_by {
            if has_window_call(p) {
                return Err(SqlError::new(expr_position(p, fpos), "window functions cannot be nested"));
            }
            partition.push(self.plan_expr(p, &rel.schema, fpos)?);
        }
        let mut order = Vec::new();
        for o in &spec.order_by {
            if o.with_fill.is_some() {
                return Err(SqlError::new(expr_position(&o.expr, fpos), "WITH FILL is not supported"));
            }
            let asc = o.options.asc.unwrap_or(true);
            let expr = self.plan_expr(&o.expr, &rel.schema, fpos)?;
            order.push(SortKey { expr, asc, nulls_first: o.options.nulls_first.unwrap_or(asc) });
        }
        // The Rank's output: the input's columns, then the row number.
        let mut fields: Vec<(Option<TableReference>, Arc<Field>)> =
            rel.schema.iter().map(|(q, f)| (q.cloned(), f.clone())).collect();
        fields.push((None, Arc::new(Field::new(RANK_COLUMN, DataType::Int64, false))));
        let schema = DFSchema::new_with_metadata(fields, Default::default()).map_err(df_err(pos))?;
        let hidden = 1;
        let rowtime = rel.rowtime;
        let ranked = Rel {
            node: PlanNode::Rank {
                input: Box::new(rel),
                partition,
                order,
                range: None,
                output_rank: true,
                window: None,
                position: fpos,
            },
            schema: Arc::new(schema),
            rowtime,
            updating: true,
            unique_key: None,
        };
        let mut items = s.projection.clone();
        let out_name = alias.map(|a| a.value.clone()).unwrap_or_else(|| format!("EXPR${item_idx}"));
        items[item_idx] = SelectItem::ExprWithAlias {
            expr: SqlExpr::Identifier(Ident::with_quote('`', RANK_COLUMN)),
            alias: Ident::with_quote('`', out_name),
        };
        self.plan_projection_hiding(ranked, &items, pos, hidden)
    }

    /// Step 2: a SELECT over a relation that reaches a pending Rank.
    pub(super) fn plan_top_n(&self, rel: Rel, s: &Select, pos: Position) -> Result<Rel, SqlError> {
        let Some(w) = &s.selection else {
            return Err(needs_filter(pending_position(&rel).unwrap_or(pos)));
        };
        let (range, residual, rank_idx) = self.top_n_where(&rel, w, pos)?;
        // Whether the SELECT list reads the row number: planned over the
        // relation as it is, which has it.
        let probe = self.plan_projection(rel.clone(), &s.projection, pos)?;
        let output_rank = match &probe.node {
            PlanNode::Project { exprs, .. } => exprs
                .iter()
                .any(|e| e.column_refs().iter().any(|c| rel.schema.index_of_column(c).ok() == Some(rank_idx))),
            _ => true,
        };
        let rel = with_filter(finish_chain(rel, range, output_rank)?, residual);
        self.plan_projection(rel, &s.projection, pos)
    }

    /// A WHERE over a pending Top-N that is not followed by a SELECT list of
    /// its own (an aggregation reads the result): the row number stays.
    pub(super) fn filter_top_n(&self, rel: Rel, w: &SqlExpr, pos: Position) -> Result<Rel, SqlError> {
        let (range, residual, _) = self.top_n_where(&rel, w, pos)?;
        Ok(with_filter(finish_chain(rel, range, true)?, residual))
    }

    /// The range a WHERE over a pending Top-N keeps, the rest of the WHERE,
    /// and the row number's column.
    fn top_n_where(&self, rel: &Rel, w: &SqlExpr, pos: Position) -> Result<(RankRange, Option<Expr>, usize), SqlError> {
        let Some(rank_idx) = rank_column(rel) else {
            return Err(needs_filter(pending_position(rel).unwrap_or(pos)));
        };
        let wpos = expr_position(w, pos);
        let predicate = self.plan_expr(w, &rel.schema, pos)?;
        let is_rank = |e: &Expr| matches!(e, Expr::Column(c) if rel.schema.index_of_column(c).ok() == Some(rank_idx));
        let mut bounds = Bounds { lo: 1, hi: None };
        let mut residual = Vec::new();
        let mut bounded = false;
        for conj in datafusion_expr::utils::split_conjunction(&predicate) {
            if let Some(b) = narrow(bounds, conj, &is_rank) {
                bounds = b;
                bounded = true;
            } else if conj.column_refs().iter().any(|c| rel.schema.index_of_column(c).ok() == Some(rank_idx)) {
                return Err(SqlError::new(
                    wpos,
                    format!(
                        "`{conj}`: the only conditions on a Top-N's row number are rn <= N, rn < N, rn = N, rn >= M, rn > M and rn BETWEEN M AND N, joined by AND"
                    ),
                ));
            } else {
                residual.push(conj.clone());
            }
        }
        let Some(hi) = bounds.hi.filter(|_| bounded) else { return Err(needs_filter(wpos)) };
        if hi < bounds.lo || hi < 1 {
            return Err(SqlError::new(wpos, "the conditions on the row number keep no rows"));
        }
        let range = RankRange { start: bounds.lo.max(1) as u64, end: hi.min(u64::MAX as i128) as u64 };
        Ok((range, datafusion_expr::utils::conjunction(residual), rank_idx))
    }
}

fn needs_filter(at: Position) -> SqlError {
    SqlError::new(
        at,
        "a Top-N needs a condition on the row number in the WHERE of the query that reads it, as in WHERE rn <= 10 (also rn < N, rn = N, rn BETWEEN M AND N, rn > M AND rn <= N)",
    )
}

/// `rel` filtered by `predicate`, if there is one.
fn with_filter(rel: Rel, predicate: Option<Expr>) -> Rel {
    let Some(p) = predicate else { return rel };
    let schema = rel.schema.clone();
    let (rowtime, updating, unique_key) = (rel.rowtime, rel.updating, rel.unique_key.clone());
    Rel { node: PlanNode::Filter { input: Box::new(rel), predicate: p }, schema, rowtime, updating, unique_key }
}

/// Rebuilds the projections above a pending Rank with its range set, without
/// the row number when `output_rank` is false.
///
/// A selected row number of a range of one rank (`rn = 1`, `rn <= 1`, `rn = 2`)
/// is that constant (Flink's `RankNumberColumnRemoveRule`): the Rank is planned
/// without it, so a Top-1 on the time attribute is a deduplication, and a
/// projection appends the constant.
fn finish_chain(rel: Rel, range: RankRange, output_rank: bool) -> Result<Rel, SqlError> {
    if output_rank && range.start == range.end && matches!(rel.node, PlanNode::Rank { .. }) {
        let schema = rel.schema.clone();
        let inner = finish_chain(rel, range, false)?;
        let mut exprs: Vec<Expr> = inner.schema.columns().into_iter().map(Expr::Column).collect();
        exprs.push(datafusion_expr::lit(range.start as i64));
        return Ok(Rel {
            rowtime: inner.rowtime,
            updating: inner.updating,
            unique_key: inner.unique_key.clone(),
            node: PlanNode::Project { input: Box::new(inner), exprs },
            schema,
        });
    }
    let Rel { node, schema, .. } = rel;
    match node {
        PlanNode::Rank { input, partition, order, position, .. } => {
            let part_cols: Option<Vec<usize>> = partition
                .iter()
                .map(|p| match p {
                    Expr::Column(c) => input.schema.index_of_column(c).ok(),
                    _ => None,
                })
                .collect();
            // Deduplication reads an append-only input, ordered by its
            // event-time or processing-time attribute; over an updating input
            // (which has no time attribute) a Top-1 ranks retractably.
            let mut proctime = None;
            let order_on_rowtime = match order.as_slice() {
                _ if input.updating => None,
                [k] => match &k.expr {
                    Expr::Column(c)
                        if input.rowtime.is_some() && input.schema.index_of_column(c).ok() == input.rowtime =>
                    {
                        Some(k.asc)
                    }
                    Expr::Column(c) => {
                        proctime = input.schema.index_of_column(c).ok().filter(|i| is_proctime(&input, *i));
                        proctime.map(|_| k.asc)
                    }
                    _ => None,
                },
                _ => None,
            };
            let n_in = input.schema.fields().len();
            // A Window Top-N ranks each window once, when it fires; a window
            // deduplication is a Window Top-1 (Flink's WindowDeduplicate).
            let (window, window_order_on_time) = match super::window_rank::window_rank(&input, &partition, &order) {
                Some((w, on_time)) => (Some(w), on_time),
                None => (None, None),
            };
            let window_rowtime = input.rowtime.filter(|_| window.is_some());
            let schema = if output_rank { schema } else { Arc::new(drop_column(&schema, n_in, position)?) };
            let top1 = range == RankRange { start: 1, end: 1 };
            let part_key = part_cols.filter(|k| !k.is_empty());
            let dedup_order = if window.is_some() { None } else { order_on_rowtime };
            match choose(range, output_rank, dedup_order) {
                RankPlan::Deduplicate { keep_last } => {
                    // On processing time, the first row is emitted as it
                    // arrives: rows keep their event time, if any.
                    let (time_col, rowtime) = match (proctime, input.rowtime) {
                        (Some(p), rowtime) => (p, if keep_last { None } else { rowtime }),
                        (None, Some(t)) => (t, if keep_last { None } else { Some(t) }),
                        (None, None) => {
                            return Err(SqlError::new(position, "internal: deduplication without a time attribute"));
                        }
                    };
                    Ok(Rel {
                        rowtime,
                        updating: keep_last,
                        unique_key: part_key,
                        node: PlanNode::Deduplicate {
                            input,
                            partition,
                            time_col,
                            keep_last,
                            proctime: proctime.is_some(),
                        },
                        schema,
                    })
                }
                RankPlan::TopN { range, output_rank } if window.is_some() => {
                    let unique_key = match output_rank {
                        true => Some(part_key.unwrap_or_default().into_iter().chain([n_in]).collect()),
                        false => part_key.filter(|_| top1),
                    };
                    let later_wins_ties = top1 && !output_rank && window_order_on_time == Some(false);
                    let window = window.map(|w| WindowRank { later_wins_ties, ..w });
                    Ok(Rel {
                        node: PlanNode::Rank {
                            input,
                            partition,
                            order,
                            range: Some(range),
                            output_rank,
                            window,
                            position,
                        },
                        schema,
                        rowtime: window_rowtime,
                        updating: false,
                        unique_key,
                    })
                }
                RankPlan::TopN { range, output_rank } => {
                    let unique_key = match (top1, output_rank) {
                        (true, _) => part_key,
                        (false, true) => Some(part_key.unwrap_or_default().into_iter().chain([n_in]).collect()),
                        (false, false) => input.unique_key.clone(),
                    };
                    let input_rowtime = input.rowtime;
                    let mut rel = Rel {
                        node: PlanNode::Rank {
                            input,
                            partition,
                            order,
                            range: Some(range),
                            output_rank,
                            window: None,
                            position,
                        },
                        schema,
                        rowtime: None,
                        updating: true,
                        unique_key,
                    };
                    // An insert-only Top-1 (Flink plans it as a deduplication
                    // keeping the first row) keeps its input's time attribute:
                    // window TVFs and OVER read it as inserts (`as_inserts`).
                    if super::insert::flink_insert_only(&rel) {
                        rel.rowtime = input_rowtime;
                    }
                    Ok(rel)
                }
            }
        }
        PlanNode::Project { input, exprs } => {
            let old_input_rank = rank_column(&input);
            let input_schema = input.schema.clone();
            let new_input = finish_chain(*input, range, output_rank)?;
            let mut kept = Vec::new();
            let mut dropped = None;
            for (i, (e, (_, f))) in exprs.into_iter().zip(schema.iter()).enumerate() {
                let is_rank = matches!(&e, Expr::Column(c) if input_schema.index_of_column(c).ok() == old_input_rank);
                if is_rank && !output_rank {
                    dropped = Some(i);
                } else {
                    kept.push((e, f.name().clone()));
                }
            }
            let pos = Position { line: 1, column: 1 };
            let mut out = project(new_input, kept, pos)?;
            let qualified = match dropped {
                Some(i) => drop_column(&schema, i, pos)?,
                None => schema.as_ref().clone(),
            };
            out.schema = Arc::new(qualified);
            Ok(out)
        }
        _ => Err(SqlError::new(Position { line: 1, column: 1 }, "internal: a Top-N chain holds another node")),
    }
}

fn drop_column(schema: &DFSchema, i: usize, pos: Position) -> Result<DFSchema, SqlError> {
    let fields: Vec<(Option<TableReference>, Arc<Field>)> =
        schema.iter().enumerate().filter(|(k, _)| *k != i).map(|(_, (q, f))| (q.cloned(), f.clone())).collect();
    DFSchema::new_with_metadata(fields, Default::default()).map_err(df_err(pos))
}

#[cfg(test)]
mod tests;

/// Whether column `col` of `rel` is a processing-time attribute: a column a
/// table computes as `PROCTIME()`, passed through projections and filters.
pub(super) fn is_proctime(rel: &Rel, col: usize) -> bool {
    match &rel.node {
        PlanNode::Source(t) => matches!(
            t.columns.get(col),
            Some(Expr::ScalarFunction(f)) if f.func.name() == crate::functions::PROCTIME
        ),
        PlanNode::Filter { input, .. } => is_proctime(input, col),
        PlanNode::Project { input, exprs } => match exprs.get(col) {
            Some(Expr::Column(c)) => input.schema.index_of_column(c).is_ok_and(|i| is_proctime(input, i)),
            _ => false,
        },
        _ => false,
    }
}
