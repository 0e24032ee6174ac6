//! From the SQL front end's logical plan to a job graph.
//!
//! Each vertex is a chain of operators that run on one thread per subtask.
//! Operators are chained while no repartitioning is needed; a window
//! aggregation starts a new vertex behind a hash edge on its keys (or a global
//! edge, at parallelism 1, when it has none); a UNION ALL starts a vertex with an
//! edge from each input. A table scanned more than once is read by one source
//! vertex whose output fans out, as Flink's source reuse does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion_common::DFSchema;
use datafusion_expr::ExprSchemable;
use sluice_job::{Settings, VERTEX_PARALLELISM_OVERRIDES};
use sluice_sql::catalog::TableDef;
use sluice_sql::expr::{Expr, physical};
use sluice_sql::plan::{Job, PlanNode, Rel};

use crate::error::EngineError;
use crate::operators::aggregate::AggDef;
use crate::operators::rows::Direction;

pub use graph::*;

/// An aggregation's vertex, with its keys and aggregates lowered.
struct KeyedAggregation {
    vertex: usize,
    keys: Vec<PhysExpr>,
    key_types: Vec<DataType>,
    aggs: Vec<AggDef>,
}

struct Stream {
    vertex: usize,
    /// Whether operators may be chained onto the vertex.
    open: bool,
}

struct Builder {
    graph: JobGraph,
    parallelism: usize,
    /// Per vertex: whether a table option (`scan.parallelism`,
    /// `sink.parallelism`) sets its parallelism. Chaining decisions look at
    /// this, never at the value of the default, so that the graph's shape, and
    /// with it every uid, is the same at any default parallelism.
    by_option: Vec<bool>,
    sources: HashMap<String, usize>,
    scans: std::collections::BTreeMap<String, usize>,
    state_ttl: std::time::Duration,
}

fn lower(e: &Expr, schema: &DFSchema) -> Result<PhysExpr, EngineError> {
    physical(e, schema).map_err(|m| EngineError::Internal(format!("lowering `{e}`: {m}")))
}

fn arrow_schema(s: &DFSchema) -> SchemaRef {
    Arc::new(Schema::new(s.fields().iter().map(|f| f.as_ref().clone()).collect::<Vec<_>>()))
}

impl Builder {
    /// A vertex at the parallelism a table option sets, or else at `parallelism`.
    fn new_vertex(&mut self, option: Option<usize>, parallelism: usize, source: Option<Arc<TableDef>>) -> usize {
        let id = self.graph.vertices.len();
        self.by_option.push(option.is_some());
        let parallelism = option.unwrap_or(parallelism);
        self.graph.vertices.push(Vertex {
            id,
            uid: String::new(),
            parallelism,
            source,
            reads: None,
            ops: vec![],
            inputs: vec![],
            outputs: vec![],
        });
        id
    }

    fn connect(&mut self, from: usize, to: usize, partitioning: Partitioning) {
        let partitioning = match partitioning {
            Partitioning::Forward if self.graph.vertices[from].parallelism != self.graph.vertices[to].parallelism => {
                Partitioning::Rebalance
            }
            p => p,
        };
        let id = self.graph.edges.len();
        self.graph.edges.push(Edge { id, from, to, partitioning });
        self.graph.vertices[from].outputs.push(id);
        self.graph.vertices[to].inputs.push(id);
    }

    fn append(&mut self, s: Stream, op: OpSpec) -> Stream {
        let vertex = if s.open {
            s.vertex
        } else {
            let p = self.graph.vertices[s.vertex].parallelism;
            let v = self.new_vertex(None, p, None);
            self.by_option[v] = self.by_option[s.vertex];
            self.connect(s.vertex, v, Partitioning::Forward);
            v
        };
        self.graph.vertices[vertex].ops.push(op);
        Stream { vertex, open: true }
    }

    fn build(&mut self, rel: &Rel) -> Result<Stream, EngineError> {
        match &rel.node {
            PlanNode::Source(t) => {
                if let Some(v) = self.sources.get(&t.name) {
                    return Ok(Stream { vertex: *v, open: false });
                }
                let p = sluice_job::table_parallelism(t, "scan.parallelism")?;
                // VALUES rows come from one subtask.
                let default = if t.rows.is_some() { 1 } else { self.parallelism };
                let v = self.new_vertex(p, default, Some(t.clone()));
                // Over the physical columns as the source emits them (masked by the data policy).
                // Metadata columns' markers are for the connector: a projection drops them.
                let identity = t.columns.len() == t.physical_df.fields().len()
                    && t.physical.fields().iter().all(|f| f.metadata().is_empty())
                    && t.columns
                        .iter()
                        .enumerate()
                        .all(|(i, c)| matches!(c, Expr::Column(col) if col.name == *t.physical_df.field(i).name()));
                if !identity {
                    let exprs = t.columns.iter().map(|c| lower(c, &t.physical_df)).collect::<Result<_, _>>()?;
                    self.graph.vertices[v].ops.push(OpSpec::Project {
                        exprs,
                        schema: arrow_schema(&t.schema),
                        label: "Computed",
                        keep_kinds: true,
                    });
                }
                if let Some(w) = &t.watermark {
                    let expr = lower(&w.expr, &t.schema)?;
                    self.graph.vertices[v].ops.push(OpSpec::Watermark {
                        time_col: w.column,
                        expr,
                        text: w.text.clone(),
                        trigger_intervals: vec![],
                    });
                }
                self.sources.insert(t.name.clone(), v);
                let open = self.scans.get(&t.name).copied().unwrap_or(0) <= 1;
                Ok(Stream { vertex: v, open })
            }
            PlanNode::Filter { input, predicate } => {
                let s = self.build(input)?;
                let p = lower(predicate, &input.schema)?;
                Ok(self.append(s, OpSpec::Filter(p)))
            }
            PlanNode::Project { input, exprs } => {
                let s = self.build(input)?;
                let exprs = exprs.iter().map(|e| lower(e, &input.schema)).collect::<Result<_, _>>()?;
                // A projection that is not updating over one that is reads
                // its rows as inserts (`sluice_sql` `as_inserts`).
                let (keep_kinds, label) = match (input.updating, rel.updating) {
                    (true, false) => (false, "AsInserts"),
                    _ => (true, "Calc"),
                };
                let spec = OpSpec::Project { exprs, schema: arrow_schema(&rel.schema), label, keep_kinds };
                Ok(self.append(s, spec))
            }
            PlanNode::Unnest { input, expr, ordinality, outer } => {
                let s = self.build(input)?;
                let expr = lower(expr, &input.schema)?;
                let spec =
                    OpSpec::Unnest { expr, ordinality: *ordinality, outer: *outer, schema: arrow_schema(&rel.schema) };
                Ok(self.append(s, spec))
            }
            PlanNode::Union { inputs } => {
                let mut streams = Vec::new();
                for i in inputs {
                    let s = self.build(i)?;
                    // An updating union's inserts-only inputs get a kind column of `+I`.
                    streams.push(if rel.updating && !i.updating { self.append(s, insert_kinds(&i.schema)) } else { s });
                }
                let v = self.new_vertex(None, self.parallelism, None);
                for s in streams {
                    self.connect(s.vertex, v, Partitioning::Forward);
                }
                Ok(Stream { vertex: v, open: true })
            }
            PlanNode::WindowAssign { input, window } => {
                let s = self.build(input)?;
                let time_type = input.schema.field(window.time_col).data_type().clone();
                Ok(self.append(
                    s,
                    OpSpec::WindowAssign {
                        kind: window.kind,
                        time_col: window.time_col,
                        time_type,
                        time_zone: window.time_zone.clone(),
                        schema: arrow_schema(&rel.schema),
                    },
                ))
            }
            PlanNode::WindowAggregate { input, window, keys, aggs, attached } => {
                let KeyedAggregation { vertex: v, keys: phys_keys, key_types, aggs: defs } =
                    self.keyed_aggregation(input, keys, aggs)?;
                let time_type = window.time_type(input.schema.as_arrow());
                self.graph.vertices[v].ops.push(OpSpec::WindowAggregate {
                    kind: window.kind,
                    time_col: window.time_col,
                    time_type,
                    time_zone: window.time_zone.clone(),
                    keys: phys_keys,
                    key_types,
                    aggs: defs,
                    schema: arrow_schema(&rel.schema),
                    attached: *attached,
                });
                Ok(Stream { vertex: v, open: true })
            }
            PlanNode::ChangelogNormalize { input, keys } => {
                let s = self.build(input)?;
                let exprs: Vec<Expr> = keys
                    .iter()
                    .map(|k| {
                        let (q, f) = input.schema.qualified_field(*k);
                        Expr::Column(datafusion_common::Column::new(q.cloned(), f.name()))
                    })
                    .collect();
                let phys: Vec<PhysExpr> = exprs.iter().map(|k| lower(k, &input.schema)).collect::<Result<_, _>>()?;
                let key_types = keys.iter().map(|k| input.schema.field(*k).data_type().clone()).collect();
                let v = self.new_vertex(None, self.parallelism, None);
                let names = exprs.iter().map(|k| k.to_string()).collect();
                self.connect(s.vertex, v, Partitioning::Hash { keys: phys.clone(), names });
                self.graph.vertices[v].ops.push(OpSpec::ChangelogNormalize {
                    keys: phys,
                    key_types,
                    schema: arrow_schema(&rel.schema),
                    ttl: self.state_ttl,
                });
                Ok(Stream { vertex: v, open: true })
            }
            PlanNode::Rank { input, partition, order, range, output_rank, window, .. } => {
                let Some(range) = range else {
                    return Err(EngineError::Internal("a Top-N without a range reached the engine".into()));
                };
                let order = order
                    .iter()
                    .map(|k| Ok((lower(&k.expr, &input.schema)?, Direction { asc: k.asc, nulls_first: k.nulls_first })))
                    .collect::<Result<Vec<_>, EngineError>>()?;
                let (output_rank, range) = (*output_rank, *range);
                let window = window.as_ref().map(|w| (w.end_col, w.time_zone.clone(), w.later_wins_ties));
                let ttl = self.state_ttl;
                self.keyed_vertex(input, partition, |keys, key_types, types| OpSpec::Rank {
                    keys,
                    key_types,
                    order,
                    range,
                    output_rank,
                    window,
                    types,
                    schema: arrow_schema(&rel.schema),
                    ttl,
                })
            }
            PlanNode::TemporalSort { input, order } => {
                let Some(time_col) = input.rowtime else {
                    return Err(EngineError::Internal("a temporal sort without a time attribute".into()));
                };
                let order = order
                    .iter()
                    .skip(1)
                    .map(|k| Ok((lower(&k.expr, &input.schema)?, Direction { asc: k.asc, nulls_first: k.nulls_first })))
                    .collect::<Result<Vec<_>, EngineError>>()?;
                let schema = arrow_schema(&rel.schema);
                self.keyed_vertex(input, &[], |_, _, types| OpSpec::TemporalSort { time_col, order, types, schema })
            }
            PlanNode::Deduplicate { input, partition, time_col, keep_last, proctime } => {
                let (time_col, keep_last, proctime, ttl) = (*time_col, *keep_last, *proctime, self.state_ttl);
                self.keyed_vertex(input, partition, |keys, key_types, types| OpSpec::Deduplicate {
                    keys,
                    key_types,
                    time_col,
                    keep_last,
                    proctime,
                    types,
                    schema: arrow_schema(&rel.schema),
                    ttl,
                })
            }
            PlanNode::GroupAggregate { input, keys, aggs, .. } => {
                let retract = sluice_sql::monotonicity::retracting(input, keys, aggs);
                let KeyedAggregation { vertex: v, keys, key_types, aggs } =
                    self.keyed_aggregation(input, keys, aggs)?;
                self.graph.vertices[v].ops.push(OpSpec::GroupAggregate {
                    keys,
                    key_types,
                    aggs,
                    schema: arrow_schema(&rel.schema),
                    retract,
                    ttl: self.state_ttl,
                });
                Ok(Stream { vertex: v, open: true })
            }
            PlanNode::OverAggregate { input, partition, time_col, frame, aggs } => {
                let KeyedAggregation { vertex: v, keys, key_types, aggs } =
                    self.keyed_aggregation(input, partition, aggs)?;
                let types = input.schema.fields().iter().map(|f| f.data_type().clone()).collect();
                self.graph.vertices[v].ops.push(OpSpec::OverAggregate {
                    keys,
                    key_types,
                    time_col: *time_col,
                    frame: *frame,
                    aggs,
                    types,
                    schema: arrow_schema(&rel.schema),
                    ttl: self.state_ttl,
                });
                Ok(Stream { vertex: v, open: true })
            }
            PlanNode::Join { left, right, kind, left_keys, right_keys, residual, interval, temporal, window } => {
                let l = self.build(left)?;
                let r = self.build(right)?;
                let lower_all = |keys: &[Expr], schema: &DFSchema| -> Result<Vec<PhysExpr>, EngineError> {
                    keys.iter().map(|k| lower(k, schema)).collect()
                };
                let (lk, rk) = (lower_all(left_keys, &left.schema)?, lower_all(right_keys, &right.schema)?);
                let key_types = left_keys
                    .iter()
                    .map(|k| k.get_type(&left.schema).map_err(|e| EngineError::Internal(e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?;
                let names = |keys: &[Expr]| keys.iter().map(|k| k.to_string()).collect();
                // A join without keys (an interval or window join, a semi or anti
                // join) runs in one subtask, as Flink's.
                let keyless = left_keys.is_empty();
                let v = self.new_vertex(None, if keyless { 1 } else { self.parallelism }, None);
                // Input 0 is the left side, input 1 the right one.
                let hash = |keys: &Vec<PhysExpr>, exprs: &[Expr]| {
                    if keyless {
                        Partitioning::Global
                    } else {
                        Partitioning::Hash { keys: keys.clone(), names: names(exprs) }
                    }
                };
                let (lp, rp) = (hash(&lk, left_keys), hash(&rk, right_keys));
                self.connect(l.vertex, v, lp);
                self.connect(r.vertex, v, rp);
                // A semi or anti join's residual reads both inputs; its output is the left one's.
                let joined;
                let residual_schema = if kind.left_only() {
                    joined = left.schema.join(&right.schema).map_err(|e| EngineError::Internal(e.to_string()))?;
                    &joined
                } else {
                    rel.schema.as_ref()
                };
                let residual = residual.as_ref().map(|e| lower(e, residual_schema)).transpose()?;
                self.graph.vertices[v].ops.push(OpSpec::Join {
                    kind: *kind,
                    left_keys: lk,
                    right_keys: rk,
                    key_types,
                    left: arrow_schema(&left.schema),
                    right: arrow_schema(&right.schema),
                    residual,
                    schema: arrow_schema(&rel.schema),
                    updating: rel.updating,
                    interval: *interval,
                    temporal: *temporal,
                    window: window.clone(),
                    ttl: i64::try_from(self.state_ttl.as_millis()).unwrap_or(i64::MAX),
                });
                Ok(Stream { vertex: v, open: true })
            }
        }
    }

    /// The vertex of an aggregation behind a hash edge on its keys (a global
    /// edge at parallelism 1 without keys), with its keys and aggregates lowered.
    fn keyed_aggregation(
        &mut self,
        input: &Rel,
        keys: &[Expr],
        aggs: &[sluice_sql::plan::AggCall],
    ) -> Result<KeyedAggregation, EngineError> {
        let s = self.build(input)?;
        let phys_keys: Vec<PhysExpr> = keys.iter().map(|k| lower(k, &input.schema)).collect::<Result<_, _>>()?;
        let key_types = keys
            .iter()
            .map(|k| k.get_type(&input.schema).map_err(|e| EngineError::Internal(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut defs = Vec::new();
        for a in aggs {
            let arg = a.arg.as_ref().map(|e| lower(e, &input.schema)).transpose()?;
            let input_type = a
                .arg
                .as_ref()
                .map(|e| e.get_type(&input.schema).map_err(|e| EngineError::Internal(e.to_string())))
                .transpose()?;
            let filter = a.filter.as_ref().map(|e| lower(e, &input.schema)).transpose()?;
            defs.push(AggDef {
                func: a.func,
                arg,
                filter,
                distinct: a.distinct,
                input_type,
                output_type: a.output_type.clone(),
                separator: a.separator.clone(),
            });
        }
        let p = if keys.is_empty() { 1 } else { self.parallelism };
        let v = self.new_vertex(None, p, None);
        let partitioning = if keys.is_empty() {
            Partitioning::Global
        } else {
            Partitioning::Hash { keys: phys_keys.clone(), names: keys.iter().map(|k| k.to_string()).collect() }
        };
        self.connect(s.vertex, v, partitioning);
        Ok(KeyedAggregation { vertex: v, keys: phys_keys, key_types, aggs: defs })
    }

    /// A keyed operator on a new vertex behind a hash edge on its keys, or a
    /// global edge at parallelism 1 without keys. `spec` gets the lowered keys,
    /// their types and the input's column types.
    fn keyed_vertex(
        &mut self,
        input: &Rel,
        keys: &[Expr],
        spec: impl FnOnce(Vec<PhysExpr>, Vec<DataType>, Vec<DataType>) -> OpSpec,
    ) -> Result<Stream, EngineError> {
        let s = self.build(input)?;
        let phys_keys: Vec<PhysExpr> = keys.iter().map(|k| lower(k, &input.schema)).collect::<Result<_, _>>()?;
        let key_types = keys
            .iter()
            .map(|k| k.get_type(&input.schema).map_err(|e| EngineError::Internal(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let p = if keys.is_empty() { 1 } else { self.parallelism };
        let v = self.new_vertex(None, p, None);
        let partitioning = if keys.is_empty() {
            Partitioning::Global
        } else {
            Partitioning::Hash { keys: phys_keys.clone(), names: keys.iter().map(|k| k.to_string()).collect() }
        };
        self.connect(s.vertex, v, partitioning);
        let types = input.schema.fields().iter().map(|f| f.data_type().clone()).collect();
        self.graph.vertices[v].ops.push(spec(phys_keys, key_types, types));
        Ok(Stream { vertex: v, open: true })
    }
}

/// A projection that appends a kind column of inserts (`+I`) to an
/// append-only relation's rows.
fn insert_kinds(schema: &DFSchema) -> OpSpec {
    use datafusion_physical_expr::expressions::{Column, Literal};
    let mut exprs: Vec<PhysExpr> =
        schema.fields().iter().enumerate().map(|(i, f)| Arc::new(Column::new(f.name(), i)) as PhysExpr).collect();
    exprs.push(Arc::new(Literal::new(datafusion_common::ScalarValue::Int8(Some(0)))));
    let mut fields: Vec<arrow::datatypes::Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(sluice_format::changelog::kind_field());
    OpSpec::Project { exprs, schema: Arc::new(Schema::new(fields)), label: "Inserts", keep_kinds: true }
}

/// Builds the job graph of a compiled job under its settings: every vertex at
/// `parallelism.default`, unless a table option (`scan.parallelism`,
/// `sink.parallelism`) or `pipeline.jobvertex-parallelism-overrides` sets its
/// own (see [`apply_overrides`]).
pub fn build_graph(job: &Job, settings: &Settings) -> Result<JobGraph, EngineError> {
    let (parallelism, max_parallelism) = (settings.parallelism, settings.max_parallelism);
    if parallelism > max_parallelism {
        return Err(EngineError::Config(format!(
            "parallelism {parallelism} exceeds pipeline.max-parallelism {max_parallelism}"
        )));
    }
    let scans = sluice_job::scanned_tables(job);
    let mut b = Builder {
        graph: JobGraph {
            vertices: vec![],
            edges: vec![],
            max_parallelism,
            local_time_zone: job.local_time_zone.clone(),
            data_policy: settings.data_policy_hash.clone(),
            state_backend: settings.state_backend.clone(),
        },
        parallelism,
        by_option: vec![],
        sources: HashMap::new(),
        scans,
        state_ttl: settings.state_ttl,
    };
    for sink in &job.sinks {
        let s = b.build(&sink.input)?;
        // A sink chains onto its input, at its parallelism (1 behind a keyless
        // aggregation), unless a table option sets one of theirs: a sink with
        // `'sink.parallelism'` chains only onto an input that an option sets
        // to the same, and one without it never onto such an input.
        let p = sluice_job::table_parallelism(&sink.table, "sink.parallelism")?;
        let input = &b.graph.vertices[s.vertex];
        let chain = match p {
            None => !b.by_option[s.vertex],
            Some(n) => b.by_option[s.vertex] && input.parallelism == n,
        };
        let s = if chain {
            s
        } else {
            let v = b.new_vertex(p, parallelism, None);
            // FORWARD becomes REBALANCE where the parallelisms differ.
            b.connect(s.vertex, v, Partitioning::Forward);
            Stream { vertex: v, open: true }
        };
        // Without latency tracking the sink counts no event-time lag either.
        let event_time = if settings.latency_interval.is_zero() { None } else { event_time_column(&sink.input) };
        b.append(s, OpSpec::Sink { table: sink.table.clone(), event_time });
    }
    // Every watermark assigner learns the bundle boundaries of every window
    // aggregation (see operators::watermark).
    let mut intervals: Vec<(i64, i64)> = b
        .graph
        .vertices
        .iter()
        .flat_map(|v| v.ops.iter())
        .filter_map(|o| match o {
            OpSpec::WindowAggregate { kind, .. } => crate::operators::window::trigger_interval(kind),
            _ => None,
        })
        .collect();
    intervals.sort_unstable();
    intervals.dedup();
    for v in b.graph.vertices.iter_mut() {
        for o in v.ops.iter_mut() {
            if let OpSpec::Watermark { trigger_intervals, .. } = o {
                *trigger_intervals = intervals.clone();
            }
        }
    }
    let reads = reads::source_reads(job);
    for v in b.graph.vertices.iter_mut() {
        v.reads = v.source.as_ref().and_then(|t| reads.get(&t.name).cloned().flatten());
    }
    for (i, v) in b.graph.vertices.iter_mut().enumerate() {
        // FNV-1a over the vertex's position and name: stable for the same plan.
        v.uid = format!("{:016x}", sluice_api::hash::fnv1a(format!("{i}/{}", v.name()).as_bytes()));
    }
    apply_overrides(&mut b.graph, &settings.vertex_parallelism)?;
    Ok(b.graph)
}

/// Applies `pipeline.jobvertex-parallelism-overrides` (vertex uid to
/// parallelism), as Flink does: a uid the graph does not have is ignored with
/// a console line (the override may be stale, for an earlier version of the
/// SQL); a vertex behind a GLOBAL edge runs at parallelism 1 and refuses more.
/// A FORWARD edge between vertices that now differ in parallelism becomes
/// REBALANCE. The uids do not depend on parallelism, so they stay the same.
fn apply_overrides(graph: &mut JobGraph, overrides: &BTreeMap<String, usize>) -> Result<(), EngineError> {
    for (uid, &p) in overrides {
        let Some(v) = graph.vertices.iter_mut().find(|v| v.uid == *uid) else {
            crate::say!(
                "{VERTEX_PARALLELISM_OVERRIDES}: the job graph has no vertex with uid {uid}; its override is ignored"
            );
            continue;
        };
        let global = v.inputs.iter().any(|e| matches!(graph.edges[*e].partitioning, Partitioning::Global));
        if global && p > 1 {
            return Err(EngineError::Config(format!(
                "'{VERTEX_PARALLELISM_OVERRIDES}': vertex {} (uid {uid}, {}) reads a GLOBAL edge (an aggregation without GROUP BY keys) and runs at parallelism 1 only, not {p}",
                v.id,
                v.name()
            )));
        }
        v.parallelism = p;
    }
    for e in graph.edges.iter_mut() {
        if matches!(e.partitioning, Partitioning::Forward)
            && graph.vertices[e.from].parallelism != graph.vertices[e.to].parallelism
        {
            e.partitioning = Partitioning::Rebalance;
        }
    }
    Ok(())
}

/// Where a relation's rows carry their event time: its time attribute, else a
/// window aggregate's `window_end` passed through filters and projections,
/// which is 1 ms after the row's `window_time`.
fn event_time_column(rel: &Rel) -> Option<(usize, i64)> {
    rel.rowtime.map(|c| (c, 0)).or_else(|| window_end_column(rel).map(|c| (c, -1)))
}

fn window_end_column(rel: &Rel) -> Option<usize> {
    match &rel.node {
        // Output: window_start, window_end, window_time, keys..., aggregates...
        PlanNode::WindowAggregate { .. } => Some(1),
        PlanNode::Filter { input, .. } => window_end_column(input),
        PlanNode::Project { input, exprs } => {
            let inner = window_end_column(input)?;
            exprs
                .iter()
                .position(|e| matches!(e, Expr::Column(c) if input.schema.index_of_column(c).ok() == Some(inner)))
        }
        _ => None,
    }
}

mod graph;
mod reads;
#[cfg(test)]
mod tests;
