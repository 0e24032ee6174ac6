//! Flink's group window functions (the syntax before window TVFs, still in
//! Flink 2.3): `GROUP BY TUMBLE(ts, size)`, `HOP(ts, slide, size)` or
//! `SESSION(ts, gap)` beside the keys, with `TUMBLE_START(...)`, `TUMBLE_END`,
//! `TUMBLE_ROWTIME` (and the `HOP_` and `SESSION_` ones) in the SELECT list
//! and HAVING.
//!
//! They are planned as the window aggregation of the equivalent window TVF,
//! which emits the same rows on event time (Flink's `GroupWindowAggregate` and
//! `WindowAggregate` both fire a window once the watermark passes its end and
//! drop rows that come later): the group window call becomes the keys
//! `window_start, window_end`, a SESSION's other keys its PARTITION BY, and
//! the auxiliary functions the columns `window_start` (`_START`), `window_end`
//! (`_END`) and `window_time` (`_ROWTIME`, the event-time attribute of the
//! result).

use std::ops::ControlFlow;

use sqlparser::ast::{self, Expr as SqlExpr, Ident, Select, VisitorMut};

use super::window::{event_time_attribute, no_window_columns, window_kind};
use super::{Planner, pos_of};
use crate::error::{Position, SqlError};
use crate::expr::{Expr, plain_args};
use crate::logical::{Rel, WindowSpec};
use crate::parser::expr_position;

/// The group window functions, with the number of intervals each takes.
const GROUP_WINDOWS: [(&str, usize); 3] = [("TUMBLE", 1), ("HOP", 2), ("SESSION", 1)];

/// A group window found among the GROUP BY items.
pub(super) struct GroupWindow {
    pub window: WindowSpec,
    /// The GROUP BY items without the window call, then `window_start`, `window_end`.
    pub group_by: Vec<SqlExpr>,
    /// The keys other than the window (a SESSION's PARTITION BY).
    pub keys: Vec<SqlExpr>,
    /// The SELECT with its auxiliary functions replaced by window columns.
    pub select: Select,
}

/// The name (upper case) and arguments of a group window call.
fn group_window_call(e: &SqlExpr) -> Option<(&'static str, Vec<SqlExpr>)> {
    let SqlExpr::Function(f) = e else { return None };
    let name = f.name.to_string().to_ascii_uppercase();
    let (fname, _) = GROUP_WINDOWS.iter().find(|(n, _)| *n == name)?;
    Some((fname, plain_args(f)))
}

/// Replaces the auxiliary functions of the group window `fname(args)` with
/// window columns, and records the first misuse.
struct Auxiliaries<'a> {
    fname: &'a str,
    args: &'a [SqlExpr],
    fallback: Position,
    error: Option<SqlError>,
}

impl VisitorMut for Auxiliaries<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        let SqlExpr::Function(f) = e else { return ControlFlow::Continue(()) };
        let name = f.name.to_string().to_ascii_uppercase();
        let Some((family, suffix)) = name.split_once('_') else { return ControlFlow::Continue(()) };
        if !GROUP_WINDOWS.iter().any(|(n, _)| *n == family) {
            return ControlFlow::Continue(());
        }
        let column = match suffix {
            "START" => "window_start",
            "END" => "window_end",
            "ROWTIME" => "window_time",
            "PROCTIME" => {
                self.error = Some(SqlError::new(
                    pos_of(&*f, self.fallback),
                    format!("{name}: group windows on processing time are not supported yet, only on event time"),
                ));
                return ControlFlow::Break(());
            }
            _ => return ControlFlow::Continue(()),
        };
        let args = plain_args(f);
        if family != self.fname || args != self.args {
            let list = |a: &[SqlExpr]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
            self.error = Some(SqlError::new(
                pos_of(&*f, self.fallback),
                format!(
                    "{name}({}) does not match the query's group window GROUP BY {}({}); write it with the same function and arguments",
                    list(&args),
                    self.fname,
                    list(self.args)
                ),
            ));
            return ControlFlow::Break(());
        }
        *e = SqlExpr::Identifier(Ident::new(column));
        ControlFlow::Continue(())
    }
}

impl Planner {
    /// The group window among `group_by`, if there is one, planned over `input`.
    pub(super) fn group_window(
        &mut self,
        input: &Rel,
        group_by: &[SqlExpr],
        s: &Select,
        pos: Position,
    ) -> Result<Option<GroupWindow>, SqlError> {
        let mut calls = group_by.iter().filter_map(|g| group_window_call(g).map(|c| (g, c)));
        let Some((call_expr, (fname, args))) = calls.next() else { return Ok(None) };
        let cpos = expr_position(call_expr, pos);
        if let Some((extra, _)) = calls.next() {
            return Err(SqlError::new(
                expr_position(extra, pos),
                "a GROUP BY takes one group window (TUMBLE, HOP or SESSION), not several",
            ));
        }
        let intervals = GROUP_WINDOWS.iter().find(|(n, _)| *n == fname).map_or(1, |(_, n)| *n);
        if args.len() != 1 + intervals {
            let usage = match fname {
                "HOP" => "HOP(time_attr, slide, size)",
                "SESSION" => "SESSION(time_attr, gap)",
                _ => "TUMBLE(time_attr, size)",
            };
            let offset = if args.len() == 2 + intervals { " (window offsets are not supported yet)" } else { "" };
            return Err(SqlError::new(
                cpos,
                format!("{fname} in GROUP BY takes {} arguments{offset}: {usage}", 1 + intervals),
            ));
        }
        let what = format!("GROUP BY {fname}({}, ...)", args[0]);
        let time_col = match self.plan_expr(&args[0], &input.schema, cpos)? {
            Expr::Column(c) => input.schema.index_of_column(&c).map_err(|e| SqlError::new(cpos, e.to_string()))?,
            _ => {
                return Err(SqlError::new(
                    expr_position(&args[0], cpos),
                    format!("{what}: the first argument must be the event-time attribute column"),
                ));
            }
        };
        event_time_attribute(input, time_col, &what, expr_position(&args[0], cpos))?;
        let kind = window_kind(fname, &args[1..], 0, cpos)?;
        no_window_columns(input, fname, cpos)?;
        let window = WindowSpec { kind, time_col, time_zone: self.window_time_zone(input, time_col) };
        let keys: Vec<SqlExpr> = group_by.iter().filter(|g| !std::ptr::eq(*g, call_expr)).cloned().collect();
        let mut group_by = keys.clone();
        group_by.extend(["window_start", "window_end"].map(|c| SqlExpr::Identifier(Ident::new(c))));
        let mut select = s.clone();
        let mut aux = Auxiliaries { fname, args: &args, fallback: pos, error: None };
        for item in select.projection.iter_mut() {
            let _ = ast::VisitMut::visit(item, &mut aux);
        }
        if let Some(h) = select.having.as_mut() {
            let _ = ast::VisitMut::visit(h, &mut aux);
        }
        if let Some(e) = aux.error {
            return Err(e);
        }
        Ok(Some(GroupWindow { window, group_by, keys, select }))
    }
}
