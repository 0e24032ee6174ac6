//! The job graph: vertices (chains of operator specs run on one thread per
//! subtask), the edges between them and how each edge partitions its rows.
//! [`super::build_graph`] builds it from the logical plan.

use std::fmt::Write;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion_physical_expr::PhysicalExpr;
use sluice_job::VERTEX_PARALLELISM_OVERRIDES;
use sluice_sql::catalog::TableDef;
use sluice_sql::plan::{JoinKind, OverFrame, RankRange, TemporalTimes, TimeInterval, WindowJoin, WindowKind};

use crate::operators::aggregate::AggDef;
use crate::operators::rows::Direction;

pub type PhysExpr = Arc<dyn PhysicalExpr>;

#[derive(Clone)]
pub enum Partitioning {
    /// Subtask i sends to subtask i.
    Forward,
    /// Round-robin over the downstream subtasks.
    Rebalance,
    /// By key group of the key columns.
    Hash { keys: Vec<PhysExpr>, names: Vec<String> },
    /// Everything to subtask 0.
    Global,
}

impl std::fmt::Display for Partitioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partitioning::Forward => write!(f, "FORWARD"),
            Partitioning::Rebalance => write!(f, "REBALANCE"),
            Partitioning::Hash { names, .. } => write!(f, "HASH[{}]", names.join(", ")),
            Partitioning::Global => write!(f, "GLOBAL"),
        }
    }
}

/// An operator to instantiate in each subtask.
#[derive(Clone)]
pub enum OpSpec {
    Filter(PhysExpr),
    Project {
        exprs: Vec<PhysExpr>,
        schema: SchemaRef,
        label: &'static str,
        /// Whether an input's row kinds pass through (an updating relation);
        /// without, rows lose them (an insert-only Top-1 read as inserts).
        keep_kinds: bool,
    },
    /// UNNEST of an ARRAY or MAP (see `operators::unnest`).
    Unnest {
        expr: PhysExpr,
        ordinality: bool,
        outer: bool,
        /// The output's data columns.
        schema: SchemaRef,
    },
    Watermark {
        time_col: usize,
        expr: PhysExpr,
        text: String,
        trigger_intervals: Vec<(i64, i64)>,
    },
    WindowAssign {
        kind: WindowKind,
        time_col: usize,
        time_type: DataType,
        time_zone: Option<String>,
        schema: SchemaRef,
    },
    WindowAggregate {
        kind: WindowKind,
        time_col: usize,
        time_type: DataType,
        time_zone: Option<String>,
        keys: Vec<PhysExpr>,
        key_types: Vec<DataType>,
        aggs: Vec<AggDef>,
        schema: SchemaRef,
        /// The input's `window_start` and `window_end` columns, when its rows
        /// carry their windows (a window-attached aggregation).
        attached: Option<[usize; 2]>,
    },
    /// A non-windowed aggregation; `retract[i]` when aggregate `i` applies
    /// the input's retractions (see `sluice_sql::monotonicity::retracting`).
    GroupAggregate {
        keys: Vec<PhysExpr>,
        key_types: Vec<DataType>,
        aggs: Vec<AggDef>,
        schema: SchemaRef,
        retract: Vec<bool>,
        /// `table.exec.state.ttl`; zero keeps state forever.
        ttl: std::time::Duration,
    },
    /// Upserts and deletes by key into a changelog of full rows.
    ChangelogNormalize {
        keys: Vec<PhysExpr>,
        key_types: Vec<DataType>,
        schema: SchemaRef,
        /// `table.exec.state.ttl`; zero keeps state forever.
        ttl: std::time::Duration,
    },
    /// Top-N over an append-only or updating input (see `operators::rank`).
    Rank {
        keys: Vec<PhysExpr>,
        key_types: Vec<DataType>,
        order: Vec<(PhysExpr, Direction)>,
        range: RankRange,
        output_rank: bool,
        /// A Window Top-N: the input's `window_end` column, the time zone
        /// windows align to, and whether later rows win ties.
        window: Option<(usize, Option<String>, bool)>,
        /// The input's column types.
        types: Vec<DataType>,
        schema: SchemaRef,
        /// `table.exec.state.ttl` (a regular Top-N's); zero keeps state forever.
        ttl: std::time::Duration,
    },
    /// `ORDER BY` the time attribute, then `order` (see `operators::sort`).
    TemporalSort {
        time_col: usize,
        order: Vec<(PhysExpr, Direction)>,
        types: Vec<DataType>,
        schema: SchemaRef,
    },
    /// Deduplication on event or processing time (see `operators::dedup`).
    Deduplicate {
        keys: Vec<PhysExpr>,
        key_types: Vec<DataType>,
        time_col: usize,
        keep_last: bool,
        proctime: bool,
        types: Vec<DataType>,
        schema: SchemaRef,
        /// `table.exec.state.ttl`; zero keeps state forever.
        ttl: std::time::Duration,
    },
    /// An OVER aggregation on event time (see `operators::over`).
    OverAggregate {
        keys: Vec<PhysExpr>,
        key_types: Vec<DataType>,
        time_col: usize,
        frame: OverFrame,
        aggs: Vec<AggDef>,
        /// The input's column types.
        types: Vec<DataType>,
        schema: SchemaRef,
        /// `table.exec.state.ttl` (not for a RANGE bounded frame, as in
        /// Flink); zero keeps state forever.
        ttl: std::time::Duration,
    },
    /// A regular join: the first operator of a vertex with two inputs, the
    /// left one (input 0) hashed on `left_keys`, the right one on `right_keys`.
    Join {
        kind: JoinKind,
        left_keys: Vec<PhysExpr>,
        right_keys: Vec<PhysExpr>,
        key_types: Vec<DataType>,
        left: SchemaRef,
        right: SchemaRef,
        residual: Option<PhysExpr>,
        schema: SchemaRef,
        updating: bool,
        /// An interval join's time bounds (its operator is then the interval join).
        interval: Option<TimeInterval>,
        /// An event-time temporal join's time attributes (its operator is
        /// then the temporal join).
        temporal: Option<TemporalTimes>,
        /// A window join's windows (its operator is then the window join).
        window: Option<WindowJoin>,
        /// `table.exec.state.ttl` in ms (0: none); a regular join's rows
        /// expire that long after their last change, as in Flink.
        ttl: i64,
    },
    Sink {
        table: Arc<TableDef>,
        /// The column of the sink's input that holds each record's event time,
        /// and what to add to it (ms): the time attribute, or a window
        /// aggregate's `window_end` less 1 ms (its `window_time`); for the
        /// event-time lag at emission.
        event_time: Option<(usize, i64)>,
    },
}

impl OpSpec {
    pub fn label(&self) -> String {
        match self {
            OpSpec::Filter(_) => "Filter".into(),
            OpSpec::Project { label, .. } => (*label).into(),
            OpSpec::Unnest { outer, .. } => if *outer { "Correlate(LEFT, UNNEST)" } else { "Correlate(UNNEST)" }.into(),
            OpSpec::Watermark { text, .. } => format!("Watermark({text})"),
            OpSpec::WindowAssign { kind, .. } => format!("Window{kind}"),
            OpSpec::WindowAggregate { kind, .. } => format!("WindowAggregate{kind}"),
            OpSpec::GroupAggregate { .. } => "GroupAggregate".into(),
            OpSpec::ChangelogNormalize { .. } => "ChangelogNormalize".into(),
            OpSpec::Rank { range, output_rank, window, .. } => format!(
                "{}({range}{})",
                if window.is_some() { "WindowRank" } else { "Rank" },
                if *output_rank { ", row number" } else { "" }
            ),
            OpSpec::TemporalSort { .. } => "TemporalSort".into(),
            OpSpec::Deduplicate { keep_last, proctime, .. } => format!(
                "Deduplicate(keep {} row{})",
                if *keep_last { "last" } else { "first" },
                if *proctime { ", processing time" } else { "" }
            ),
            OpSpec::Join { kind, temporal: Some(_), .. } => format!("TemporalJoin({kind})"),
            OpSpec::OverAggregate { frame, .. } => format!("OverAggregate({frame})"),
            OpSpec::Join { kind, interval: None, window: None, .. } => format!("Join({kind})"),
            OpSpec::Join { kind, window: Some(w), .. } => format!("WindowJoin({kind}, {})", w.kind),
            OpSpec::Join { kind, interval: Some(_), .. } => format!("IntervalJoin({kind})"),
            OpSpec::Sink { table, .. } => format!("Sink: {} [{}]", table.name, table.connector()),
        }
    }
}

pub struct Vertex {
    pub id: usize,
    /// Stable id derived from the plan, for matching state to operators.
    pub uid: String,
    pub parallelism: usize,
    /// The table a source vertex reads.
    pub source: Option<Arc<TableDef>>,
    /// Of a source vertex's physical columns, those the job reads, when it
    /// reads only some (see `plan::reads`); its reader may leave the others NULL.
    pub reads: Option<Vec<bool>>,
    pub ops: Vec<OpSpec>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

impl Vertex {
    pub fn name(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.source {
            parts.push(format!("Source: {} [{}]", t.name, t.connector()));
        }
        parts.extend(self.ops.iter().map(|o| o.label()));
        if parts.is_empty() {
            parts.push("Union".into());
        }
        parts.join(" -> ")
    }
}

pub struct Edge {
    pub id: usize,
    pub from: usize,
    pub to: usize,
    pub partitioning: Partitioning,
}

pub struct JobGraph {
    pub vertices: Vec<Vertex>,
    pub edges: Vec<Edge>,
    pub max_parallelism: usize,
    pub local_time_zone: String,
    /// The id of the job's data policy, if it has one.
    pub data_policy: Option<String>,
    /// Where keyed state lives (`state.backend.type`).
    pub state_backend: sluice_job::StateBackendSettings,
}

impl JobGraph {
    /// The graph as text, for `sluice-engine explain`.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Job graph: {} vertices, max parallelism {}", self.vertices.len(), self.max_parallelism);
        for v in &self.vertices {
            let _ = writeln!(s, "\nVertex {} (parallelism {}, uid {})", v.id, v.parallelism, v.uid);
            let _ = writeln!(s, "  {}", v.name());
            if let (Some(t), Some(reads)) = (&v.source, &v.reads) {
                let names: Vec<&str> = t
                    .physical
                    .fields()
                    .iter()
                    .zip(reads)
                    .filter(|(_, r)| **r)
                    .map(|(f, _)| f.name().as_str())
                    .collect();
                let _ = writeln!(s, "  reads columns {} (the others are not parsed)", names.join(", "));
            }
            for line in v.source.iter().flat_map(|t| t.policy.describe()) {
                let _ = writeln!(s, "  data policy at the source: {line}");
            }
            for e in v.inputs.iter().map(|i| &self.edges[*i]) {
                let _ = writeln!(s, "  <- vertex {} via {}", e.from, e.partitioning);
            }
        }
        let _ = writeln!(
            s,
            "\nA vertex's uid hashes its position and name, so it stays the same for the same SQL. Override a parallelism with {VERTEX_PARALLELISM_OVERRIDES}: <uid>:<n>,..."
        );
        s
    }
}
