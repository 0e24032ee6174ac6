//! The streaming logical plan: what [`crate::compile`] produces and the engine
//! consumes.
//!
//! A job is a set of sinks; each sink consumes a tree of [`Rel`]s. Relational
//! structure (scans, window TVFs, window aggregation, UNION ALL) is a
//! [`PlanNode`]; every scalar expression is a DataFusion `Expr` typed against the
//! input's `DFSchema`, so the engine can lower it with
//! [`crate::expr::physical`].

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_common::DFSchemaRef;

use crate::catalog::TableDef;
use crate::error::Position;
use crate::expr::Expr;

/// A compiled job: its settings and its sinks.
#[derive(Debug, Clone)]
pub struct Job {
    /// `SET` statements, in order; later ones win.
    pub settings: BTreeMap<String, String>,
    /// `table.local-time-zone`, validated; `UTC` by default.
    pub local_time_zone: String,
    pub tables: BTreeMap<String, Arc<TableDef>>,
    pub sinks: Vec<SinkPlan>,
}

/// One `INSERT INTO`.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub table: Arc<TableDef>,
    /// Produces exactly the sink's physical columns, in order and type.
    pub input: Rel,
    pub position: Position,
}

impl Rel {
    /// The name of each table the relation scans, once per scan (VALUES
    /// rows are not a table).
    pub fn scanned_tables(&self) -> Vec<String> {
        match &self.node {
            PlanNode::Source(t) if t.rows.is_some() => vec![],
            PlanNode::Source(t) => vec![t.name.clone()],
            node => node.inputs().into_iter().flat_map(Rel::scanned_tables).collect(),
        }
    }
}

impl PlanNode {
    /// The node's input relations, in order (a join's left one first).
    pub fn inputs(&self) -> Vec<&Rel> {
        match self {
            PlanNode::Source(_) => vec![],
            PlanNode::Filter { input, .. }
            | PlanNode::Project { input, .. }
            | PlanNode::WindowAssign { input, .. }
            | PlanNode::WindowAggregate { input, .. }
            | PlanNode::GroupAggregate { input, .. }
            | PlanNode::ChangelogNormalize { input, .. }
            | PlanNode::Rank { input, .. }
            | PlanNode::Deduplicate { input, .. }
            | PlanNode::TemporalSort { input, .. }
            | PlanNode::OverAggregate { input, .. }
            | PlanNode::Unnest { input, .. } => vec![input],
            PlanNode::Union { inputs } => inputs.iter().collect(),
            PlanNode::Join { left, right, .. } => vec![left, right],
        }
    }
}

/// A relation: a plan node with its output schema and time attribute.
#[derive(Debug, Clone)]
pub struct Rel {
    pub node: PlanNode,
    pub schema: DFSchemaRef,
    /// The column that is an event-time attribute (carries watermarks), if any.
    pub rowtime: Option<usize>,
    /// Whether the relation is updating: each row carries a row kind (`+I`,
    /// `-U`, `+U`, `-D`, as Flink's `RowKind`) instead of all being inserts.
    /// The engine carries it in a trailing column (`sluice_format::changelog`).
    pub updating: bool,
    /// Columns whose values identify one row of the relation's current
    /// contents (its upsert key), when the planner can derive them.
    pub unique_key: Option<Vec<usize>>,
}

#[derive(Debug, Clone)]
pub enum PlanNode {
    /// A table scan: the connector's physical columns, then computed columns,
    /// then the watermark.
    Source(Arc<TableDef>),
    Filter {
        input: Box<Rel>,
        predicate: Expr,
    },
    Project {
        input: Box<Rel>,
        exprs: Vec<Expr>,
    },
    Union {
        inputs: Vec<Rel>,
    },
    /// A window TVF whose output is not aggregated: each row is repeated for each
    /// window it belongs to, with `window_start`, `window_end`, `window_time`.
    WindowAssign {
        input: Box<Rel>,
        window: WindowSpec,
    },
    /// A window TVF followed by `GROUP BY window_start, window_end, keys`.
    /// Output: window_start, window_end, window_time, keys..., aggregates...
    WindowAggregate {
        input: Box<Rel>,
        window: WindowSpec,
        keys: Vec<Expr>,
        aggs: Vec<AggCall>,
        /// Flink's window-attached aggregation: the input already carries its
        /// windows (a window join's, a window aggregation's, ...) in these
        /// `window_start` and `window_end` columns, which the aggregation
        /// groups by instead of assigning `window` from its time column
        /// (`window.time_col` is then the input's `window_time`, or its
        /// `window_start` when it has none).
        attached: Option<[usize; 2]>,
    },
    /// A non-windowed `GROUP BY keys` (or a global aggregation without keys):
    /// an updating relation keyed by the keys, which retracts its previous
    /// result for a key when the key's aggregates change.
    /// Output: keys..., aggregates...
    GroupAggregate {
        input: Box<Rel>,
        keys: Vec<Expr>,
        aggs: Vec<AggCall>,
        /// Where the aggregation's SELECT is, for errors about its updates.
        position: Position,
    },
    /// The upserts and deletes of an `upsert-kafka` source, keyed by its
    /// primary key, turned into a changelog with full rows: `+I` for a new key,
    /// `-U` and `+U` for a changed row, `-D` with the last row for a delete
    /// (Flink's `ChangelogNormalize`). Output: the input's columns.
    ChangelogNormalize {
        input: Box<Rel>,
        /// The primary key's columns.
        keys: Vec<usize>,
    },
    /// `ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...)` filtered on its
    /// result (Flink's Top-N). Output: the input's columns, then the row
    /// number (BIGINT) when `output_rank`. Updating.
    Rank {
        input: Box<Rel>,
        /// Over the input's schema.
        partition: Vec<Expr>,
        order: Vec<SortKey>,
        /// `None` while the planner has not yet seen the filter on the row
        /// number: such a plan is rejected at its `INSERT`.
        range: Option<RankRange>,
        output_rank: bool,
        /// A Window Top-N: the partition holds `window_start` and `window_end`
        /// of a window TVF or window aggregation; the rows of each window are
        /// ranked when the window fires, append-only.
        window: Option<WindowRank>,
        /// Where `ROW_NUMBER()` is written, for errors.
        position: Position,
    },
    /// `ORDER BY` the event-time attribute (ascending), then other keys: rows
    /// are held until the watermark passes their time and emitted in order
    /// (Flink's temporal sort). Output: the input's columns, append-only.
    TemporalSort {
        input: Box<Rel>,
        /// The first key is the time attribute, ascending.
        order: Vec<SortKey>,
    },
    /// Deduplication: a Top-1 ordered by the input's event-time attribute
    /// without the row number in the output. Output: the input's columns.
    /// Keeping the first row emits each key's row once, when the watermark
    /// passes its time (append-only); keeping the last row is updating.
    Deduplicate {
        input: Box<Rel>,
        partition: Vec<Expr>,
        /// The input's time attribute.
        time_col: usize,
        keep_last: bool,
        /// Whether `time_col` is a processing-time attribute (`PROCTIME()`):
        /// rows are kept in arrival order, not by their time.
        proctime: bool,
    },
    /// An OVER aggregation (Flink's `OverAggregate` on event time): every
    /// input row, once the watermark passes its time, with the aggregates of
    /// its frame, ordered by the input's time attribute `time_col` within its
    /// partition. Append-only; keeps the input's time attribute.
    /// Output: the input's columns, then the aggregates.
    OverAggregate {
        input: Box<Rel>,
        /// Over the input's schema; empty: one partition.
        partition: Vec<Expr>,
        time_col: usize,
        frame: OverFrame,
        aggs: Vec<AggCall>,
    },
    /// `CROSS JOIN UNNEST(expr)`, `, UNNEST(expr)` or `LEFT JOIN UNNEST(expr)
    /// ON TRUE` (Flink's correlate with UNNEST): each input row once per
    /// element of its ARRAY, or per entry of its MAP. Stateless: each output
    /// row keeps its input row's kind and time attribute. A NULL or empty
    /// collection gives no row, or with `outer` one row padded with NULLs.
    /// Output: the input's columns, then the element (ARRAY) or the key and
    /// the value (MAP), then the 1-based position (INT) when `ordinality`.
    Unnest {
        input: Box<Rel>,
        /// An ARRAY or MAP over the input's schema.
        expr: Expr,
        ordinality: bool,
        outer: bool,
    },
    /// A regular (unbounded) join on equality keys, as Flink's streaming join,
    /// an interval join (see `interval`), a temporal join (see `temporal`) or
    /// a window join (see `window`):
    /// output is the left columns, then the right ones; an outer join pads
    /// the missing side with nulls. `left_keys[i]` (over the left input) equals
    /// `right_keys[i]` (over the right input), both of the same type; a null
    /// key matches nothing. `residual` is over the join's output schema.
    /// A semi or anti join ([`JoinKind::left_only`]) outputs the left columns
    /// alone; its residual is over the left columns, then the right ones, and
    /// its keys may be empty (one subtask joins all rows, as Flink's `NOT IN`
    /// over nullable columns).
    Join {
        left: Box<Rel>,
        right: Box<Rel>,
        kind: JoinKind,
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
        residual: Option<Expr>,
        /// For an interval join (both inputs append-only, their event times
        /// bounded against each other): the bounds, which the residual also
        /// checks. Its keys may then be empty (one subtask joins all rows).
        interval: Option<TimeInterval>,
        /// For an event-time temporal join (`JOIN r FOR SYSTEM_TIME AS OF
        /// l.ts`, INNER or LEFT): the time attributes that pick each left
        /// row's version of the right input (see `planner::temporal_join`).
        /// The output is then the left input's rows, each joined once, with
        /// the left input's row kinds and time attribute.
        temporal: Option<TemporalTimes>,
        /// For a window join (both inputs windowed alike, joined on their
        /// `window_start` and `window_end`): the windows. Those two equalities
        /// are not among the keys, which may then be empty (one subtask joins
        /// all rows, as in Flink).
        window: Option<WindowJoin>,
    },
}

/// The windows of a window join: each input's `window_end` column (a local
/// TIMESTAMP(3)); the rows of a key and window end meet when the watermark
/// reaches the end - 1, as Flink's `WindowJoinOperator`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowJoin {
    /// The inputs' (equal) window TVF.
    pub kind: WindowKind,
    pub left_end: usize,
    pub right_end: usize,
    /// For a TIMESTAMP_LTZ time attribute (of the left input, as Flink), the
    /// time zone windows align to.
    pub time_zone: Option<String>,
}

/// One `ORDER BY` item of a ranking.
#[derive(Debug, Clone)]
pub struct SortKey {
    pub expr: Expr,
    pub asc: bool,
    /// Flink's default: nulls are the smallest values (first ascending, last
    /// descending).
    pub nulls_first: bool,
}

/// What a Window Top-N needs of its input's windows.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRank {
    /// The input's `window_end` column (a local TIMESTAMP(3)).
    pub end_col: usize,
    /// For a TIMESTAMP_LTZ time attribute, the time zone windows align to.
    pub time_zone: Option<String>,
    /// Window deduplication keeping the last row (a Top-1 ordered by the time
    /// attribute descending): of rows with equal times, the later one wins.
    pub later_wins_ties: bool,
}

/// The frame of an OVER window, which always ends at the current row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverFrame {
    /// `ROWS` (a count of rows) or `RANGE` (an interval of time).
    pub rows: bool,
    /// How far the frame reaches back: rows before the current one for
    /// `ROWS`, milliseconds for `RANGE`; `None`: `UNBOUNDED PRECEDING`.
    pub preceding: Option<i64>,
}

impl std::fmt::Display for OverFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = if self.rows { "ROWS" } else { "RANGE" };
        match (self.preceding, self.rows) {
            (None, _) => write!(f, "{units} BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"),
            (Some(n), true) => write!(f, "{units} BETWEEN {n} PRECEDING AND CURRENT ROW"),
            (Some(ms), false) => write!(f, "{units} BETWEEN {ms} ms PRECEDING AND CURRENT ROW"),
        }
    }
}

/// The row numbers a Top-N keeps, 1-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankRange {
    pub start: u64,
    pub end: u64,
}

impl std::fmt::Display for RankRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rn {}..={}", self.start, self.end)
    }
}

/// The time bounds of an interval join: `lower <= l.ts - r.ts <= upper`, in
/// milliseconds, over the left input's time attribute `left_time` and the right
/// one's `right_time` (column indices in each input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeInterval {
    pub left_time: usize,
    pub right_time: usize,
    pub lower: i64,
    pub upper: i64,
}

/// The time attributes of an event-time temporal join: the left input's
/// `left_time` (the `AS OF` column) picks, per key, the right input's row with
/// the greatest `right_time` at or before it (column indices in each input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporalTimes {
    pub left_time: usize,
    pub right_time: usize,
}

/// The kind of a regular join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    /// `WHERE [k] IN (subquery)` or `EXISTS (subquery)`: each left row that
    /// has a match, once, without the right columns.
    Semi,
    /// `WHERE NOT EXISTS (subquery)` or `[k] NOT IN (subquery)`: each left row
    /// without a match, without the right columns; retracted when a match comes.
    Anti,
}

impl JoinKind {
    /// Whether rows of the left input without a match are kept (null-padded).
    pub fn left_outer(self) -> bool {
        matches!(self, JoinKind::Left | JoinKind::Full)
    }

    /// Whether the output is the left input's rows alone (a semi or anti join).
    pub fn left_only(self) -> bool {
        matches!(self, JoinKind::Semi | JoinKind::Anti)
    }

    /// Whether rows of the right input without a match are kept (null-padded).
    pub fn right_outer(self) -> bool {
        matches!(self, JoinKind::Right | JoinKind::Full)
    }
}

impl std::fmt::Display for JoinKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
            JoinKind::Right => "RIGHT",
            JoinKind::Full => "FULL",
            JoinKind::Semi => "SEMI",
            JoinKind::Anti => "ANTI",
        })
    }
}

/// A window TVF.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub kind: WindowKind,
    /// The time attribute column in the input.
    pub time_col: usize,
    /// For a TIMESTAMP_LTZ time attribute, the time zone windows align to.
    pub time_zone: Option<String>,
}

impl WindowSpec {
    /// The type of the windows' `window_time`: the time column's, except that
    /// windows over a TIMESTAMP_LTZ attribute whose time column is a local
    /// TIMESTAMP (a window-attached aggregation typed by its `window_start`)
    /// keep a TIMESTAMP_LTZ(3) `window_time`, as Flink does.
    pub fn time_type(&self, input: &arrow::datatypes::Schema) -> arrow::datatypes::DataType {
        use arrow::datatypes::{DataType, TimeUnit};
        match (input.field(self.time_col).data_type(), &self.time_zone) {
            (DataType::Timestamp(TimeUnit::Millisecond, None), Some(tz)) => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(tz.as_str().into()))
            }
            (t, _) => t.clone(),
        }
    }
}

/// Window sizes in milliseconds. `offset` (Flink's window offset, the TVF's
/// optional last argument) shifts where windows start: a window starts at
/// `offset` plus a multiple of its size (of the slide for HOP); 0 aligns
/// windows to the epoch (in local time for a TIMESTAMP_LTZ attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumble { size: i64, offset: i64 },
    Hop { slide: i64, size: i64, offset: i64 },
    Cumulate { step: i64, max_size: i64, offset: i64 },
    Session { gap: i64 },
}

impl std::fmt::Display for WindowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowKind::Tumble { size, offset } => write!(f, "TUMBLE(size={size}ms{})", offset_text(*offset)),
            WindowKind::Hop { slide, size, offset } => {
                write!(f, "HOP(slide={slide}ms, size={size}ms{})", offset_text(*offset))
            }
            WindowKind::Cumulate { step, max_size, offset } => {
                write!(f, "CUMULATE(step={step}ms, max={max_size}ms{})", offset_text(*offset))
            }
            WindowKind::Session { gap } => write!(f, "SESSION(gap={gap}ms)"),
        }
    }
}

/// `, offset=Nms` for a window offset, nothing without one.
fn offset_text(offset: i64) -> String {
    if offset == 0 { String::new() } else { format!(", offset={offset}ms") }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// `FIRST_VALUE(x)`: the first non-NULL value in arrival order.
    FirstValue,
    /// `LAST_VALUE(x)`: the last non-NULL value in arrival order.
    LastValue,
    /// `LISTAGG(x [, sep])`: the non-NULL values joined by the separator.
    ListAgg,
    /// `STDDEV_POP(x)`: the population standard deviation (Flink's Welford M2).
    StddevPop,
    /// `STDDEV_SAMP(x)`, also `STDDEV(x)`: the sample standard deviation.
    StddevSamp,
    /// `VAR_POP(x)`: the population variance.
    VarPop,
    /// `VAR_SAMP(x)`, also `VARIANCE(x)`: the sample variance.
    VarSamp,
}

impl AggFunc {
    /// Whether the aggregate's result depends on the order its rows arrive in
    /// and it has no merge (Flink's `FirstValueAggFunction`): it cannot run in
    /// windows whose state is merged (HOP, CUMULATE, SESSION).
    pub fn needs_arrival_order(self) -> bool {
        matches!(self, AggFunc::FirstValue | AggFunc::LastValue)
    }

    /// STDDEV_POP, STDDEV_SAMP, VAR_POP or VAR_SAMP.
    pub fn is_variance(self) -> bool {
        matches!(self, AggFunc::StddevPop | AggFunc::StddevSamp | AggFunc::VarPop | AggFunc::VarSamp)
    }
}

/// One aggregate call of an aggregation.
#[derive(Debug, Clone)]
pub struct AggCall {
    pub func: AggFunc,
    /// The argument over the aggregation's input; None for `COUNT(*)`.
    pub arg: Option<Expr>,
    pub distinct: bool,
    /// `FILTER (WHERE ...)` over the aggregation's input.
    pub filter: Option<Expr>,
    pub output_type: DataType,
    /// `LISTAGG`'s separator (a literal; `,` when not given); None otherwise.
    pub separator: Option<String>,
}

pub const WINDOW_COLUMNS: [&str; 3] = ["window_start", "window_end", "window_time"];
