//! OVER aggregations: aggregate functions with `OVER (PARTITION BY ... ORDER BY
//! <time attribute> ROWS|RANGE BETWEEN ... PRECEDING AND CURRENT ROW)` in a
//! SELECT list, inline or through a named `WINDOW w AS (...)`.
//!
//! A SELECT whose window calls are aggregates plans a
//! [`PlanNode::OverAggregate`] over its FROM (after its WHERE): the input's
//! columns, then one column per distinct OVER call (`__overN`); its SELECT list
//! is then planned over that with each call replaced by its column, so OVER
//! calls may sit inside expressions. `ROW_NUMBER() OVER` stays a Top-N
//! (`rank`).
//!
//! The restrictions are Flink's streaming ones, checked in this order, each
//! with the position of the call at fault:
//! - every OVER call of a SELECT uses the same window (partition, order and
//!   frame), since Flink computes one window per OVER aggregation;
//! - the window is ordered by one column, ascending, which is the input's
//!   event-time attribute (processing-time OVER windows are refused);
//! - the frame ends at the current row and starts `UNBOUNDED PRECEDING`,
//!   `n PRECEDING` (ROWS) or `INTERVAL ... PRECEDING` (RANGE); without a
//!   frame it is `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`;
//! - the input is append-only.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::Field;
use datafusion_common::{DFSchema, TableReference};
use sqlparser::ast::{
    self, Expr as SqlExpr, Ident, NamedWindowDefinition, NamedWindowExpr, Select, SelectItem, Value, VisitorMut,
    WindowFrame, WindowFrameBound, WindowFrameUnits, WindowSpec, WindowType,
};

use super::aggregate::is_aggregate_name;
use super::rank::{has_window_call, is_proctime, window_calls};
use super::window::interval_ms;
use super::{Planner, df_err, pos_of};
use crate::error::{Position, SqlError};
use crate::expr::{AGGREGATES, Expr};
use crate::logical::{AggCall, AggFunc, OverFrame, PlanNode, Rel};
use crate::parser::expr_position;

/// Whether a SELECT list's window calls are OVER aggregations (any aggregate
/// function with OVER), rather than a Top-N's `ROW_NUMBER()`.
pub(super) fn is_over_aggregation(items: &[SelectItem]) -> bool {
    items.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            window_calls(e).iter().any(|f| is_aggregate_name(&f.name.to_string().to_ascii_uppercase()))
        }
        _ => false,
    })
}

/// The window of one OVER call, planned: what two calls must share.
#[derive(Debug, Clone, PartialEq)]
struct OverWindow {
    partition: Vec<Expr>,
    time_col: usize,
    frame: OverFrame,
}

/// Replaces each OVER call of a SELECT item with its column `__overN`,
/// collecting the distinct calls.
struct OverRewriter {
    calls: Vec<ast::Function>,
}

impl VisitorMut for OverRewriter {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if let SqlExpr::Function(f) = e
            && f.over.is_some()
        {
            let idx = match self.calls.iter().position(|c| c == f) {
                Some(i) => i,
                None => {
                    self.calls.push(f.clone());
                    self.calls.len() - 1
                }
            };
            *e = SqlExpr::Identifier(Ident::with_quote('`', over_column(idx)));
        }
        ControlFlow::Continue(())
    }
}

fn over_column(i: usize) -> String {
    format!("__over{i}")
}

/// The window spec an OVER call uses: its own, or a named one of the SELECT.
fn resolve<'a>(
    over: &'a WindowType,
    named: &'a [NamedWindowDefinition],
    pos: Position,
) -> Result<&'a WindowSpec, SqlError> {
    let mut name = match over {
        WindowType::WindowSpec(spec) => match &spec.window_name {
            None => return Ok(spec),
            Some(base) => {
                return Err(SqlError::new(
                    pos,
                    format!(
                        "OVER ({base} ...) refines a named window, which is not supported; write the whole window in WINDOW {base} AS (...) or in OVER (...)"
                    ),
                ));
            }
        },
        WindowType::NamedWindow(n) => n,
    };
    // A named window may name another; a cycle ends after as many steps as names.
    for _ in 0..=named.len() {
        let Some(NamedWindowDefinition(_, def)) = named.iter().find(|d| d.0.value.eq_ignore_ascii_case(&name.value))
        else {
            return Err(SqlError::new(
                pos,
                format!(
                    "OVER {name}: window `{name}` is not defined; define it with WINDOW {name} AS (...) after FROM"
                ),
            ));
        };
        match def {
            NamedWindowExpr::WindowSpec(spec) if spec.window_name.is_none() => return Ok(spec),
            NamedWindowExpr::WindowSpec(_) => {
                return Err(SqlError::new(pos, "a named window that refines another is not supported"));
            }
            NamedWindowExpr::NamedWindow(n) => name = n,
        }
    }
    Err(SqlError::new(pos, format!("window `{name}` is defined in terms of itself")))
}

/// The frame of an OVER window, as Flink's streaming OVER aggregation takes it.
fn plan_frame(frame: Option<&WindowFrame>, pos: Position) -> Result<OverFrame, SqlError> {
    let Some(frame) = frame else {
        // SQL's default frame with an ORDER BY.
        return Ok(OverFrame { rows: false, preceding: None });
    };
    let rows = match frame.units {
        WindowFrameUnits::Rows => true,
        WindowFrameUnits::Range => false,
        WindowFrameUnits::Groups => {
            return Err(SqlError::new(pos, "GROUPS frames are not supported; use ROWS or RANGE"));
        }
    };
    let following = || {
        SqlError::new(
            pos,
            "OVER windows in a streaming query end at the current row (Flink: \"OVER RANGE FOLLOWING windows are not supported yet\"): a row's result cannot wait for rows that come after it; use ... PRECEDING AND CURRENT ROW",
        )
    };
    match &frame.end_bound {
        None | Some(WindowFrameBound::CurrentRow) => {}
        Some(_) => return Err(following()),
    }
    match &frame.start_bound {
        WindowFrameBound::Preceding(None) => Ok(OverFrame { rows, preceding: None }),
        WindowFrameBound::Preceding(Some(e)) => {
            let epos = expr_position(e, pos);
            let preceding = if rows {
                match e.as_ref() {
                    SqlExpr::Value(v) => match &v.value {
                        Value::Number(n, _) => n.parse::<i64>().ok().filter(|n| *n >= 0),
                        _ => None,
                    },
                    _ => None,
                }
                .ok_or_else(|| {
                    SqlError::new(
                        epos,
                        format!("ROWS BETWEEN n PRECEDING takes a count of rows (a non-negative integer), not `{e}`"),
                    )
                })?
            } else {
                if !matches!(e.as_ref(), SqlExpr::Interval(_)) {
                    return Err(SqlError::new(
                        epos,
                        format!(
                            "RANGE BETWEEN ... PRECEDING over a time attribute takes an interval, as in RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW, not `{e}`"
                        ),
                    ));
                }
                interval_ms(e, epos)?
            };
            Ok(OverFrame { rows, preceding: Some(preceding) })
        }
        WindowFrameBound::CurrentRow | WindowFrameBound::Following(_) => Err(following()),
    }
}

impl Planner {
    /// A SELECT with OVER aggregations over `rel` (its FROM). `apply_where`:
    /// whether its WHERE is still to apply (a window TVF's caller has applied it).
    pub(super) fn plan_over_aggregate(
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
        // An insert-only Top-1 is read as inserts, as Flink does.
        let rel = super::insert::as_inserts(rel);
        let mut rw = OverRewriter { calls: Vec::new() };
        let mut items = s.projection.clone();
        for (i, item) in items.iter_mut().enumerate() {
            if let SelectItem::UnnamedExpr(e) = item
                && has_window_call(e)
            {
                // An OVER call's column is named as Flink names an unnamed item.
                let mut e = e.clone();
                let _ = ast::VisitMut::visit(&mut e, &mut rw);
                *item = SelectItem::ExprWithAlias { expr: e, alias: Ident::with_quote('`', format!("EXPR${i}")) };
            } else if let SelectItem::ExprWithAlias { expr, .. } = item {
                let _ = ast::VisitMut::visit(expr, &mut rw);
            }
        }
        if rel.updating {
            let fpos = rw.calls.first().map_or(pos, |f| pos_of(f, pos));
            return Err(SqlError::new(
                fpos,
                "an OVER aggregation consumes only inserts, and its input is updating (it has -U/+U/-D rows, as a non-windowed GROUP BY, an outer join or a Top-N emits): as in Flink, aggregate over an append-only input",
            ));
        }
        let mut window: Option<OverWindow> = None;
        let mut aggs: Vec<AggCall> = Vec::new();
        for f in &rw.calls {
            let fpos = pos_of(f, pos);
            let name = f.name.to_string().to_ascii_uppercase();
            if !AGGREGATES.contains(&name.as_str()) {
                let msg = if is_aggregate_name(&name) {
                    format!(
                        "aggregate function {name} is not supported yet; OVER aggregations support COUNT, COUNT(DISTINCT), SUM, MIN, MAX and AVG"
                    )
                } else {
                    format!(
                        "{name}() OVER (...) cannot be combined with OVER aggregations in one SELECT; compute it in a separate query"
                    )
                };
                return Err(SqlError::new(fpos, msg));
            }
            if let Some(msg) = unsupported_over_call(f, &name) {
                return Err(SqlError::new(fpos, msg));
            }
            if f.filter.is_some() {
                return Err(SqlError::new(
                    fpos,
                    format!(
                        "{name}(...) FILTER (WHERE ...) OVER (...) is refused, as in Flink (\"OVER must be applied to aggregate function\"); put the condition inside the aggregate, as in {name}(CASE WHEN ... THEN x END) OVER (...)"
                    ),
                ));
            }
            let Some(over) = &f.over else { continue };
            let w = self.plan_over_window(&rel, resolve(over, &s.named_window, fpos)?, fpos)?;
            match &window {
                None => window = Some(w),
                Some(first) if *first != w => {
                    return Err(SqlError::new(
                        fpos,
                        "All aggregates must be computed on the same window: as in Flink, the OVER aggregates of one SELECT share one PARTITION BY, ORDER BY and frame; compute the others in a separate query and join them, or define one window with WINDOW w AS (...)",
                    ));
                }
                Some(_) => {}
            }
            let mut call = f.clone();
            call.over = None;
            aggs.push(self.plan_agg_call(&call, &rel.schema, fpos)?);
        }
        let Some(window) = window else {
            return Err(SqlError::new(pos, "internal: no OVER aggregate in this SELECT"));
        };
        let n_aggs = aggs.len();
        let mut fields: Vec<(Option<TableReference>, Arc<Field>)> =
            rel.schema.iter().map(|(q, f)| (q.cloned(), f.clone())).collect();
        for (i, a) in aggs.iter().enumerate() {
            let nullable = a.func != AggFunc::Count;
            fields.push((None, Arc::new(Field::new(over_column(i), a.output_type.clone(), nullable))));
        }
        let schema = DFSchema::new_with_metadata(fields, HashMap::new()).map_err(df_err(pos))?;
        let (rowtime, unique_key) = (rel.rowtime, rel.unique_key.clone());
        let OverWindow { partition, time_col, frame } = window;
        let over = Rel {
            node: PlanNode::OverAggregate { input: Box::new(rel), partition, time_col, frame, aggs },
            schema: Arc::new(schema),
            rowtime,
            updating: false,
            unique_key,
        };
        self.plan_projection_hiding(over, &items, pos, n_aggs)
    }

    fn plan_over_window(&self, rel: &Rel, spec: &WindowSpec, fpos: Position) -> Result<OverWindow, SqlError> {
        let mut partition = Vec::new();
        for p in &spec.partition_by {
            if has_window_call(p) {
                return Err(SqlError::new(expr_position(p, fpos), "window functions cannot be nested"));
            }
            partition.push(self.plan_expr(p, &rel.schema, fpos)?);
        }
        let rowtime_name = rel.rowtime.map(|c| rel.schema.field(c).name().clone());
        let on_time = match &rowtime_name {
            Some(n) => format!(", here `{n}`"),
            None => String::new(),
        };
        let [order] = spec.order_by.as_slice() else {
            return Err(SqlError::new(
                fpos,
                format!(
                    "The window can only be ordered by a single time column: a streaming OVER window needs ORDER BY on the input's time attribute{on_time}, ascending"
                ),
            ));
        };
        let opos = expr_position(&order.expr, fpos);
        if order.with_fill.is_some() {
            return Err(SqlError::new(opos, "WITH FILL is not supported"));
        }
        if !order.options.asc.unwrap_or(true) {
            return Err(SqlError::new(
                opos,
                "The window can only be ordered in ASCENDING mode: a streaming OVER window processes rows as event time advances",
            ));
        }
        let planned = self.plan_expr(&order.expr, &rel.schema, fpos)?;
        let col = match &planned {
            Expr::Column(c) => rel.schema.index_of_column(c).ok(),
            _ => None,
        };
        let time_col = match (col, rel.rowtime) {
            (Some(c), Some(rt)) if c == rt => rt,
            (Some(c), _) if is_proctime(rel, c) => {
                return Err(SqlError::new(
                    opos,
                    format!(
                        "OVER windows on processing time (`{}` is PROCTIME()) are not supported yet; order by the event-time attribute{on_time}",
                        order.expr
                    ),
                ));
            }
            _ => {
                return Err(SqlError::new(
                    opos,
                    format!(
                        "OVER windows' ordering in stream mode must be defined on a time attribute{}: `{}` is not one{}",
                        if rel.rowtime.is_some() { "" } else { " (a column with a WATERMARK)" },
                        order.expr,
                        match &rowtime_name {
                            Some(n) => format!("; order by `{n}`"),
                            None => "; this input has none".into(),
                        }
                    ),
                ));
            }
        };
        let frame = plan_frame(spec.window_frame.as_ref(), fpos)?;
        Ok(OverWindow { partition, time_col, frame })
    }
}

/// Why an aggregate that non-windowed and window aggregations support is not
/// supported in an OVER aggregation yet.
fn unsupported_over_call(f: &ast::Function, name: &str) -> Option<String> {
    if matches!(
        name,
        "FIRST_VALUE"
            | "LAST_VALUE"
            | "LISTAGG"
            | "STDDEV_POP"
            | "STDDEV_SAMP"
            | "STDDEV"
            | "VAR_POP"
            | "VAR_SAMP"
            | "VARIANCE"
    ) {
        return Some(format!(
            "{name} is not supported in OVER aggregations yet (only in window and non-windowed GROUP BY aggregations); OVER aggregations support COUNT, COUNT(DISTINCT), SUM, MIN, MAX and AVG"
        ));
    }
    let distinct = matches!(&f.args, ast::FunctionArguments::List(l) if matches!(l.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct)));
    (distinct && name != "COUNT").then(|| {
        format!(
            "{name}(DISTINCT ...) is not supported in OVER aggregations yet (only in window and non-windowed GROUP BY aggregations); COUNT(DISTINCT ...) is"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sql: &str) -> Result<OverFrame, SqlError> {
        let q = format!("SELECT SUM(a) OVER (ORDER BY ts {sql}) FROM t");
        let stmts = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, &q).unwrap();
        let ast::Statement::Query(q) = &stmts[0] else { panic!() };
        let ast::SetExpr::Select(s) = q.body.as_ref() else { panic!() };
        let SelectItem::UnnamedExpr(SqlExpr::Function(f)) = &s.projection[0] else { panic!() };
        let Some(WindowType::WindowSpec(spec)) = &f.over else { panic!() };
        plan_frame(spec.window_frame.as_ref(), Position { line: 1, column: 1 })
    }

    #[test]
    fn frames_are_planned_as_flink_takes_them() {
        let ok = [
            ("", OverFrame { rows: false, preceding: None }),
            ("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW", OverFrame { rows: true, preceding: None }),
            ("ROWS BETWEEN 10 PRECEDING AND CURRENT ROW", OverFrame { rows: true, preceding: Some(10) }),
            ("ROWS 2 PRECEDING", OverFrame { rows: true, preceding: Some(2) }),
            (
                "RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW",
                OverFrame { rows: false, preceding: Some(3_600_000) },
            ),
            ("RANGE UNBOUNDED PRECEDING", OverFrame { rows: false, preceding: None }),
        ];
        for (sql, want) in ok {
            assert_eq!(frame(sql).unwrap(), want, "{sql}");
        }
        let bad = [
            ("ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING", "end at the current row"),
            ("ROWS BETWEEN CURRENT ROW AND CURRENT ROW", "end at the current row"),
            ("RANGE BETWEEN 10 PRECEDING AND CURRENT ROW", "takes an interval"),
            ("ROWS BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW", "count of rows"),
            ("GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW", "GROUPS"),
        ];
        for (sql, want) in bad {
            let e = frame(sql).unwrap_err();
            assert!(e.message.contains(want), "{sql}: {}", e.message);
        }
    }
}
