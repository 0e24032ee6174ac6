//! Window table-valued functions: TUMBLE, HOP, CUMULATE and SESSION in FROM.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion_common::{DFSchema, DFSchemaRef, TableReference};
use sqlparser::ast::{self, Expr as SqlExpr, Value};

use super::query::FromItem;
use super::{Planner, ident_name};
use crate::dialect::TABLE_ARG_FUNCTION;
use crate::error::{Position, SqlError};
use crate::expr::plain_args;
use crate::logical::{Rel, WINDOW_COLUMNS, WindowKind, WindowSpec};
use crate::parser::expr_position;

pub(super) fn is_window_col(e: &SqlExpr) -> Option<&'static str> {
    let n = ident_name(e)?;
    WINDOW_COLUMNS.iter().copied().find(|w| w.eq_ignore_ascii_case(n))
}

/// A window offset: an interval, which may be zero or negative.
fn offset_ms(e: &SqlExpr, pos: Position) -> Result<i64, SqlError> {
    interval_value_ms(e, pos)
}

pub(super) fn interval_ms(e: &SqlExpr, pos: Position) -> Result<i64, SqlError> {
    let ms = interval_value_ms(e, pos)?;
    if ms <= 0 {
        return Err(SqlError::new(pos, format!("window interval must be positive, found `{e}`")));
    }
    Ok(ms)
}

/// The milliseconds of an interval literal of one unit.
fn interval_value_ms(e: &SqlExpr, pos: Position) -> Result<i64, SqlError> {
    let bad = || SqlError::new(pos, format!("expected an interval such as INTERVAL '10' SECOND, found `{e}`"));
    let SqlExpr::Interval(iv) = e else { return Err(bad()) };
    if iv.last_field.is_some() {
        return Err(SqlError::new(
            pos,
            "compound intervals (... TO ...) are not supported in window TVFs; use one unit, as in INTERVAL '90' SECOND",
        ));
    }
    let text = match iv.value.as_ref() {
        SqlExpr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::Number(s, _) => s.clone(),
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let n: f64 = text.trim().parse().map_err(|_| bad())?;
    use ast::DateTimeField as F;
    let unit = match iv.leading_field.as_ref() {
        Some(F::Day | F::Days) => 86_400_000.0,
        Some(F::Hour | F::Hours) => 3_600_000.0,
        Some(F::Minute | F::Minutes) => 60_000.0,
        Some(F::Second | F::Seconds) => 1000.0,
        Some(F::Millisecond | F::Milliseconds) => 1.0,
        _ => return Err(SqlError::new(pos, "window sizes take DAY, HOUR, MINUTE, SECOND or MILLISECOND intervals")),
    };
    Ok((n * unit).round() as i64)
}

/// Checks that column `idx` of `input` is its event-time attribute; `what`
/// names the window's time argument in errors.
pub(super) fn event_time_attribute(input: &Rel, idx: usize, what: &str, pos: Position) -> Result<(), SqlError> {
    let col = input.schema.field(idx).name();
    if input.rowtime != Some(idx) && super::rank::is_proctime(input, idx) {
        return Err(SqlError::new(
            pos,
            format!(
                "{what}: `{col}` is a processing-time attribute (PROCTIME()); windows on processing time are not supported yet, only on an event-time attribute (a column with a WATERMARK)"
            ),
        ));
    }
    if input.rowtime != Some(idx) {
        return Err(SqlError::new(
            pos,
            format!(
                "{what}: `{col}` is not an event-time attribute; declare `WATERMARK FOR {col} AS {col} - INTERVAL '5' SECOND` in its CREATE TABLE, or use window_time of an upstream window aggregation"
            ),
        ));
    }
    Ok(())
}

/// The window of `fname` (TUMBLE, HOP, CUMULATE or SESSION) from its interval
/// arguments, in the order the function takes them, and its offset (0 without one).
pub(super) fn window_kind(
    fname: &str,
    intervals: &[SqlExpr],
    offset: i64,
    pos: Position,
) -> Result<WindowKind, SqlError> {
    let ms = |i: usize| interval_ms(&intervals[i], expr_position(&intervals[i], pos));
    Ok(match fname {
        "TUMBLE" => WindowKind::Tumble { size: ms(0)?, offset },
        "SESSION" => WindowKind::Session { gap: ms(0)? },
        "HOP" => {
            let (slide, size) = (ms(0)?, ms(1)?);
            if size % slide != 0 {
                return Err(SqlError::new(pos, "HOP: the size must be an integral multiple of the slide"));
            }
            WindowKind::Hop { slide, size, offset }
        }
        _ => {
            let (step, max_size) = (ms(0)?, ms(1)?);
            if max_size % step != 0 {
                return Err(SqlError::new(pos, "CUMULATE: the max size must be an integral multiple of the step"));
            }
            WindowKind::Cumulate { step, max_size, offset }
        }
    })
}

/// A window's input must not already have a column named as a window column.
pub(super) fn no_window_columns(input: &Rel, fname: &str, pos: Position) -> Result<(), SqlError> {
    match input.schema.fields().iter().find(|f| WINDOW_COLUMNS.contains(&f.name().as_str())) {
        Some(dup) => Err(SqlError::new(
            pos,
            format!(
                "{fname}: its input already has a column named {}; rename it (for example `window_start AS w_start`) in the view or subquery it comes from",
                dup.name()
            ),
        )),
        None => Ok(()),
    }
}

impl Planner {
    /// For a TIMESTAMP_LTZ time attribute, the time zone windows align to.
    pub(super) fn window_time_zone(&self, input: &Rel, time_col: usize) -> Option<String> {
        match input.schema.field(time_col).data_type() {
            DataType::Timestamp(_, Some(_)) => Some(self.tz.clone()),
            _ => None,
        }
    }

    pub(super) fn plan_window_tvf(
        &mut self,
        e: &SqlExpr,
        qualifier: Option<String>,
        pos: Position,
    ) -> Result<FromItem, SqlError> {
        let SqlExpr::Function(f) = e else {
            return Err(SqlError::new(
                pos,
                format!("expected a window TVF such as TUMBLE(...) in TABLE(...), found `{e}`"),
            ));
        };
        let fname = f.name.to_string().to_ascii_uppercase();
        let args = plain_args(f);
        let usage = match fname.as_str() {
            "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(ts), size [, offset])",
            "HOP" => "HOP(TABLE t, DESCRIPTOR(ts), slide, size [, offset])",
            "CUMULATE" => "CUMULATE(TABLE t, DESCRIPTOR(ts), step, max_size [, offset])",
            "SESSION" => "SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)",
            other => {
                return Err(SqlError::new(
                    pos,
                    format!(
                        "unknown table function {other}; supported window TVFs are TUMBLE, HOP, CUMULATE and SESSION"
                    ),
                ));
            }
        };
        let n_intervals = match fname.as_str() {
            "TUMBLE" | "SESSION" => 1,
            _ => 2,
        };
        let with_offset = args.len() == 2 + n_intervals + 1;
        if with_offset && fname == "SESSION" {
            return Err(SqlError::new(
                pos,
                "SESSION windows take no offset; use SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)",
            ));
        }
        if args.len() != 2 + n_intervals && !with_offset {
            return Err(SqlError::new(
                pos,
                format!("{fname} takes {} arguments, or {} with an offset: {usage}", 2 + n_intervals, 3 + n_intervals),
            ));
        }
        // The data argument.
        let (input, partition_by) = match &args[0] {
            SqlExpr::Function(t) if t.name.to_string() == TABLE_ARG_FUNCTION => {
                let targs = plain_args(t);
                let name = targs.first().and_then(ident_name).unwrap_or_default().to_string();
                let rel = self.lookup(&name, pos)?;
                (rel, targs[1..].to_vec())
            }
            other => {
                return Err(SqlError::new(
                    expr_position(other, pos),
                    format!("{fname}: the first argument must be TABLE <name>, found `{other}`; use {usage}"),
                ));
            }
        };
        // An insert-only Top-1 is read as inserts, as Flink does.
        let input = super::insert::as_inserts(input);
        if input.updating {
            return Err(SqlError::new(
                expr_position(&args[0], pos),
                format!(
                    "{fname}: its input is an updating relation (a non-windowed GROUP BY or a join upstream changes earlier rows), and window TVFs read append-only inputs only, as in Flink; window the source table first, then aggregate"
                ),
            ));
        }
        if !partition_by.is_empty() && fname != "SESSION" {
            return Err(SqlError::new(pos, format!("{fname} does not take PARTITION BY; only SESSION does")));
        }
        // The time attribute.
        let time_col = match &args[1] {
            SqlExpr::Function(d) if d.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") => {
                let dargs = plain_args(d);
                let col = dargs
                    .first()
                    .and_then(ident_name)
                    .ok_or_else(|| SqlError::new(pos, format!("{fname}: DESCRIPTOR takes one column name")))?;
                let idx = input.schema.fields().iter().position(|f| f.name() == col).ok_or_else(|| {
                    SqlError::new(expr_position(&args[1], pos), format!("{fname}: DESCRIPTOR({col}): no such column"))
                })?;
                event_time_attribute(
                    &input,
                    idx,
                    &format!("{fname}: DESCRIPTOR({col})"),
                    expr_position(&args[1], pos),
                )?;
                idx
            }
            other => {
                return Err(SqlError::new(
                    expr_position(other, pos),
                    format!("{fname}: the second argument must be DESCRIPTOR(time_column); use {usage}"),
                ));
            }
        };
        let offset = match with_offset {
            true => offset_ms(&args[2 + n_intervals], expr_position(&args[2 + n_intervals], pos))?,
            false => 0,
        };
        let kind = window_kind(&fname, &args[2..2 + n_intervals], offset, pos)?;
        if let WindowKind::Tumble { size, offset } = kind
            && offset.abs() >= size
        {
            // Flink checks this for TUMBLE only.
            return Err(SqlError::new(
                expr_position(&args[3], pos),
                format!(
                    "TUMBLE table function parameters must satisfy abs(offset) < size, but got size {size} ms and offset {offset} ms"
                ),
            ));
        }
        no_window_columns(&input, &fname, pos)?;
        let time_zone = self.window_time_zone(&input, time_col);
        Ok(FromItem::Window { input, window: WindowSpec { kind, time_col, time_zone }, partition_by, qualifier })
    }

    /// The schema of a window TVF's output: the input's columns, then the window columns.
    pub(super) fn window_schema(
        &self,
        input: &Rel,
        window: &WindowSpec,
        qualifier: Option<&str>,
        pos: Position,
    ) -> Result<DFSchemaRef, SqlError> {
        let mut fields: Vec<(Option<TableReference>, Arc<Field>)> = input
            .schema
            .iter()
            .map(|(q, f)| (qualifier.map(TableReference::bare).or_else(|| q.cloned()), f.clone()))
            .collect();
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let wt = input.schema.field(window.time_col).data_type().clone();
        for (name, t) in WINDOW_COLUMNS.iter().zip([ts.clone(), ts, wt]) {
            fields.push((qualifier.map(TableReference::bare), Arc::new(Field::new(*name, t, false))));
        }
        DFSchema::new_with_metadata(fields, HashMap::new()).map(Arc::new).map_err(|e| SqlError::new(pos, e.to_string()))
    }
}
