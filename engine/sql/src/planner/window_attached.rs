//! Window-attached aggregation: a `GROUP BY window_start, window_end, keys`
//! over a relation that already carries its windows (Flink's
//! `WindowAttachedWindowingStrategy`). A window join, a window aggregation, a
//! Window Top-N or a window TVF in a subquery keeps window properties
//! ([`window_props`]); grouping by one of its `window_start` columns and one of
//! its `window_end` columns makes the aggregation a window aggregation of those
//! windows, append-only and fired by the watermark, instead of an updating
//! aggregation, as in Flink.

use sqlparser::ast::Expr as SqlExpr;

use super::Planner;
use super::window::is_window_col;
use super::window_join::window_props;
use crate::error::Position;
use crate::expr::Expr;
use crate::logical::{Rel, WindowKind, WindowSpec};

impl Planner {
    /// The windows an aggregation of `rel` grouped by `group_by` is attached
    /// to: the window (its kind, and its time column for the output's
    /// `window_time`) and the `window_start` and `window_end` columns.
    pub(super) fn attached_windows(
        &self,
        rel: &Rel,
        group_by: &[SqlExpr],
        pos: Position,
    ) -> Option<(WindowSpec, [usize; 2])> {
        let props = window_props(rel)?;
        if matches!(props.kind, WindowKind::Session { .. }) {
            return None;
        }
        let (mut start, mut end) = (None, None);
        for g in group_by.iter().filter(|g| is_window_col(g).is_some()) {
            let Ok(Expr::Column(c)) = self.plan_expr(g, &rel.schema, pos) else { continue };
            let Ok(i) = rel.schema.index_of_column(&c) else { continue };
            if props.starts.contains(&i) {
                start = Some(i);
            } else if props.ends.contains(&i) {
                end = Some(i);
            }
        }
        let [start, end] = [start?, end?];
        // The output's window_time is typed as the input's; without one, as
        // the window_start, which `WindowSpec::time_type` makes a
        // TIMESTAMP_LTZ(3) for windows over a TIMESTAMP_LTZ attribute.
        let time_col = props.times.first().copied().unwrap_or(start);
        Some((WindowSpec { kind: props.kind, time_col, time_zone: props.time_zone }, [start, end]))
    }
}
