//! Event-time temporal joins: `l [LEFT] JOIN r FOR SYSTEM_TIME AS OF l.ts ON
//! l.k = r.k [AND ...]`, or `FROM l, r FOR SYSTEM_TIME AS OF l.ts WHERE l.k =
//! r.k` (an inner join whose condition comes from WHERE), as Flink plans them
//! (`LogicalCorrelateToJoinFromTemporalTableRule`,
//! `TemporalJoinRewriteWithUniqueKeyRule`, `StreamExecTemporalJoin`).
//!
//! `r` must be a versioned table: a relation with an event-time attribute and
//! a primary key, such as a table with `PRIMARY KEY (...) NOT ENFORCED` and a
//! `WATERMARK` (Flink takes an append-only table's rows as its versions), an
//! `upsert-kafka` table, or a view that deduplicates an append-only table
//! keeping the last row per key on event time (a versioned view). Its rows
//! are versions: each left row joins the right row of its key with the
//! greatest time at or before the left row's `AS OF` time, unless that version
//! is a delete. Sluice's updating relations carry no time attribute, so
//! [`versioned`] finds the one Flink keeps through them.
//!
//! Refused as Flink refuses them, in its order: RIGHT and FULL joins, a
//! condition without an equality between the inputs, an `AS OF` that is not
//! the left input's time attribute, a versioned side without an event-time
//! attribute, time attributes of different types, a versioned side without a
//! primary key, and a primary key not covered by the equalities. A
//! processing-time temporal join is a lookup join in Flink, which needs a
//! lookup source Sluice does not have.
//!
//! The ON condition's equalities key the join; a conjunct on the left input
//! alone filters an INNER join's left input; every other conjunct is checked
//! on the version found (a version that fails it is not replaced by an older
//! one: a LEFT join pads the row). The output keeps the left input's time
//! attribute and changelog: each left row is emitted at most once.

use datafusion_expr::utils::{conjunction, split_conjunction};
use datafusion_expr::{BinaryExpr, ExprSchemable, Operator};
use sqlparser::ast::{Expr as SqlExpr, TableFactor, TableVersion};

use super::join::join_schema;
use super::join_push::{Side, push_down, side_of};
use super::query::FromItem;
use super::{Planner, df_err};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{JoinKind, PlanNode, Rel, TemporalTimes};
use crate::parser::expr_position;
use crate::types::flink_name;

/// Why a table version is refused outside the right side of a join.
pub(super) const NOT_RIGHT_OF_JOIN: &str = "FOR SYSTEM_TIME AS OF is supported on the right side of a JOIN or of a comma only (an event-time temporal join: FROM l [LEFT] JOIN r FOR SYSTEM_TIME AS OF l.ts ON l.k = r.k, or FROM l, r FOR SYSTEM_TIME AS OF l.ts WHERE l.k = r.k)";

impl Planner {
    /// `left` joined with the versioned table `relation` (whose version is
    /// `version`) on `on`.
    pub(super) fn temporal_join(
        &mut self,
        left: Rel,
        relation: &TableFactor,
        version: &TableVersion,
        kind: JoinKind,
        on: &SqlExpr,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
            return Err(SqlError::new(
                pos,
                format!(
                    "Temporal table join currently only supports INNER JOIN and LEFT JOIN, but was {kind} JOIN: the versioned table's rows are not kept to be padded"
                ),
            ));
        }
        let as_of = as_of_time(version, pos)?;
        let right = self.temporal_side(relation, pos)?;
        self.temporal_join_with(left, right, as_of, kind, on, pos)
    }

    /// [`Self::temporal_join`] with the versioned table already planned
    /// ([`Self::temporal_side`]), `AS OF` the left input's time `as_of`.
    pub(super) fn temporal_join_with(
        &mut self,
        left: Rel,
        right: Rel,
        as_of: &SqlExpr,
        kind: JoinKind,
        on: &SqlExpr,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let as_of_pos = expr_position(as_of, pos);
        let on_pos = expr_position(on, pos);
        let schema = join_schema(&left, &right, kind, pos)?;
        let cond = self.plan_expr(on, &schema, pos)?;
        let t = cond.get_type(&schema).map_err(df_err(on_pos))?;
        if t != arrow::datatypes::DataType::Boolean {
            return Err(SqlError::new(on_pos, format!("a join condition must be BOOLEAN, not {}", flink_name(&t))));
        }
        let n_left = left.schema.fields().len();
        let (mut left_keys, mut right_keys, mut key_cols) = (Vec::new(), Vec::new(), Vec::new());
        let (mut push_left, mut residual) = (Vec::new(), Vec::new());
        for c in split_conjunction(&cond) {
            if let Expr::BinaryExpr(BinaryExpr { left: l, op: Operator::Eq, right: r }) = c {
                let pair = match (side_of(&schema, n_left, l), side_of(&schema, n_left, r)) {
                    (Side::Left, Side::Right) => Some((l.as_ref(), r.as_ref())),
                    (Side::Right, Side::Left) => Some((r.as_ref(), l.as_ref())),
                    _ => None,
                };
                if let Some((lk, rk)) = pair {
                    if let Expr::Column(col) = rk {
                        key_cols.extend(right.schema.index_of_column(col).ok());
                    }
                    let (lk, rk) = self.common_key(lk, rk, &left, &right, on_pos)?;
                    left_keys.push(lk);
                    right_keys.push(rk);
                    continue;
                }
            }
            match side_of(&schema, n_left, c) {
                Side::Left if kind == JoinKind::Inner => push_left.push(c.clone()),
                _ => residual.push(c.clone()),
            }
        }
        if left_keys.is_empty() {
            return Err(SqlError::new(
                on_pos,
                "Currently the join key in Temporal Table Join can not be empty: a temporal join needs an equality between the two inputs, such as ON l.k = r.k, to find each key's versions",
            ));
        }
        let left_time = self.as_of_column(&left, as_of, as_of_pos)?;
        let (right_time, primary_key) = versioned(&right);
        let Some(right_time) = right_time else {
            return Err(SqlError::new(
                pos,
                "Event-Time Temporal Table Join requires both primary key and row time attribute in versioned table, but no row time attribute can be found: declare a WATERMARK on the versioned table (a view keeps the time attribute of a table it reads)",
            ));
        };
        let (lt, rt) = (left.schema.field(left_time).data_type(), right.schema.field(right_time).data_type());
        if is_ltz(lt) != is_ltz(rt) {
            return Err(SqlError::new(
                as_of_pos,
                format!(
                    "Event-Time Temporal Table Join requires same rowtime type in left table and versioned table, but the rowtime types are {} and {}",
                    flink_name(lt),
                    flink_name(rt)
                ),
            ));
        }
        let Some(primary_key) = primary_key else {
            return Err(SqlError::new(
                pos,
                "Temporal Table Join requires primary key in versioned table, but no primary key can be found: declare PRIMARY KEY (...) NOT ENFORCED on the table, or deduplicate a view keeping the last row per key (ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) = 1)",
            ));
        };
        if !primary_key.iter().all(|c| key_cols.contains(c)) {
            let names = |cols: &[usize]| {
                cols.iter().map(|c| right.schema.field(*c).name().as_str()).collect::<Vec<_>>().join(",")
            };
            let equalities: Vec<String> = left_keys.iter().zip(&right_keys).map(|(l, r)| format!("{l}={r}")).collect();
            return Err(SqlError::new(
                on_pos,
                format!(
                    "Temporal table's primary key [{}] must be included in the equivalence condition of temporal join, but current temporal join condition is [{}]",
                    names(&primary_key),
                    equalities.join(",")
                ),
            ));
        }
        let left = push_down(left, push_left);
        let (rowtime, updating, unique_key) = (left.rowtime, left.updating, left.unique_key.clone());
        Ok(Rel {
            node: PlanNode::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                left_keys,
                right_keys,
                residual: conjunction(residual),
                interval: None,
                temporal: Some(TemporalTimes { left_time, right_time }),
                window: None,
            },
            schema,
            rowtime,
            updating,
            unique_key,
        })
    }

    /// The versioned table of a temporal join, planned without its version.
    pub(super) fn temporal_side(&mut self, relation: &TableFactor, pos: Position) -> Result<Rel, SqlError> {
        let mut plain = relation.clone();
        if let TableFactor::Table { version, .. } = &mut plain {
            *version = None;
        }
        match self.plan_from(&plain, pos)? {
            FromItem::Plain(rel) => Ok(rel),
            FromItem::Window { .. } => Err(SqlError::new(pos, NOT_RIGHT_OF_JOIN)),
        }
    }

    /// The left input's time attribute that `AS OF` names.
    fn as_of_column(&self, left: &Rel, as_of: &SqlExpr, pos: Position) -> Result<usize, SqlError> {
        if let SqlExpr::Function(f) = as_of
            && f.name.to_string().eq_ignore_ascii_case("PROCTIME")
        {
            return Err(SqlError::new(
                pos,
                "processing-time temporal joins are not supported: Flink runs them as lookup joins, which need a lookup source (JDBC, HBase, ...) that Sluice does not have; join AS OF the left table's event-time attribute",
            ));
        }
        let planned = self.plan_expr(as_of, &left.schema, pos);
        let col = match &planned {
            Ok(Expr::Column(c)) => left.schema.index_of_column(c).ok(),
            _ => None,
        };
        match (col, left.rowtime) {
            (Some(c), Some(rt)) if c == rt => Ok(c),
            _ => Err(SqlError::new(
                pos,
                format!(
                    "Temporal table join currently only supports 'FOR SYSTEM_TIME AS OF' left table's time attribute field{}",
                    match left.rowtime {
                        Some(rt) => format!("; the left input's time attribute is `{}`", left.schema.field(rt).name()),
                        None => "; the left input has none (declare a WATERMARK on it)".to_string(),
                    }
                ),
            )),
        }
    }
}

/// The time a `FOR SYSTEM_TIME AS OF` version names.
pub(super) fn as_of_time(version: &TableVersion, pos: Position) -> Result<&SqlExpr, SqlError> {
    match version {
        TableVersion::ForSystemTimeAsOf(as_of) => Ok(as_of),
        other => Err(SqlError::new(
            pos,
            format!("`{other}` is not Flink SQL; a temporal join is written FOR SYSTEM_TIME AS OF l.ts"),
        )),
    }
}

fn is_ltz(t: &arrow::datatypes::DataType) -> bool {
    matches!(t, arrow::datatypes::DataType::Timestamp(_, Some(_)))
}

/// The event-time attribute and primary key of a relation read as a versioned
/// table, in its columns. Flink keeps the time attribute through the
/// deduplication of a versioned view and through an upsert source's
/// normalization, where Sluice's updating relations drop it; a source's
/// primary key is its unique key even when its rows are inserts.
fn versioned(rel: &Rel) -> (Option<usize>, Option<Vec<usize>>) {
    let (time, key) = match &rel.node {
        PlanNode::Source(t) => {
            let pk = t
                .primary_key
                .iter()
                .map(|c| rel.schema.index_of_column_by_name(None, c))
                .collect::<Option<Vec<_>>>()
                .filter(|k| !k.is_empty());
            (None, pk)
        }
        PlanNode::Deduplicate { time_col, keep_last: true, .. } => (Some(*time_col), None),
        PlanNode::ChangelogNormalize { input, .. } => (input.rowtime, None),
        PlanNode::Filter { input, .. } => versioned(input),
        PlanNode::Project { input, exprs } => {
            let (time, key) = versioned(input);
            // An input column passed through, by its output position.
            let out = |col: usize| {
                exprs
                    .iter()
                    .position(|e| matches!(e, Expr::Column(c) if input.schema.index_of_column(c).ok() == Some(col)))
            };
            (time.and_then(out), key.and_then(|k| k.into_iter().map(out).collect()))
        }
        _ => (None, None),
    };
    (rel.rowtime.or(time), rel.unique_key.clone().or(key))
}
