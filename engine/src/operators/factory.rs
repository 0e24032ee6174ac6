//! Stream operators from their specs in the job graph: each subtask's chain,
//! sinks with their restored writer state, and the state layouts the
//! checkpoint coordinator records.

use sluice_connectors::{SinkContext, create_sink};

use super::StreamOperator;
use super::calc::{Filter, Project};
use super::dedup::Deduplicate;
use super::group_agg::GroupAggregate;
use super::join::interval::IntervalJoin;
use super::join::temporal::TemporalJoin;
use super::join::window::WindowJoin as WindowJoinOp;
use super::join::{Join, JoinDef};
use super::normalize::ChangelogNormalize;
use super::over::OverAggregate;
use super::rank::TopN;
use super::session::SessionAggregate;
use super::sink::Sink;
use super::sort::TemporalSort;
use super::unnest::Unnest;
use super::watermark::WatermarkAssigner;
use super::window::{Keys, TimeShift, WindowAggregate, WindowAssign};
use super::window_rank::{WindowTopN, WindowTopNSpec};
use crate::checkpoint::coordinator::VertexMeta;
use crate::checkpoint::metadata::OperatorState;
use crate::error::EngineError;
use crate::job::JobState;
use crate::plan::{JobGraph, OpSpec};
use crate::state::ttl::Ttl;
use sluice_sql::plan::WindowKind;

/// What a sink needs beyond its table: restored writer states and the mode.
#[derive(Default, Clone)]
pub struct SinkSetup {
    pub(crate) restored_states: Option<Vec<Vec<u8>>>,
    pub(crate) exactly_once: bool,
    pub(crate) s3: sluice_storage::S3Options,
    /// The periodic checkpoint interval, when checkpoints are stored.
    pub(crate) checkpoint_interval: Option<std::time::Duration>,
    /// Who commits, for sink commit logs.
    pub(crate) committer: sluice_connectors::Committer,
}

/// The context of one sink subtask (subtask 0 for per-table work such as recovery).
pub(crate) fn sink_context(
    table: &sluice_sql::catalog::TableDef,
    subtask: usize,
    parallelism: usize,
    job_id: &str,
    tz: &str,
    sink: &SinkSetup,
) -> SinkContext {
    SinkContext {
        table: table.name.clone(),
        options: table.options.clone(),
        schema: table.sink_schema(),
        subtask,
        parallelism,
        job_id: job_id.to_string(),
        local_time_zone: tz.to_string(),
        restored_states: sink.restored_states.clone(),
        s3: sink.s3.clone(),
        checkpoint_interval: sink.checkpoint_interval,
        committer: sink.committer.clone(),
    }
}

pub(crate) fn instantiate(
    spec: &OpSpec,
    subtask: usize,
    parallelism: usize,
    job_id: &str,
    tz: &str,
    sink: &SinkSetup,
) -> Result<Box<dyn StreamOperator>, EngineError> {
    let shift = |z: &Option<String>| TimeShift::new(z.as_deref()).map_err(|e| EngineError::Config(e.to_string()));
    Ok(match spec {
        OpSpec::Filter(p) => Box::new(Filter { predicate: p.clone() }),
        OpSpec::Project { exprs, schema, keep_kinds, .. } => {
            Box::new(Project { exprs: exprs.clone(), schema: schema.clone(), keep_kinds: *keep_kinds })
        }
        OpSpec::Unnest { expr, ordinality, outer, schema } => {
            Box::new(Unnest { expr: expr.clone(), ordinality: *ordinality, outer: *outer, schema: schema.clone() })
        }
        OpSpec::Watermark { time_col, expr, trigger_intervals, .. } => {
            Box::new(WatermarkAssigner::new(*time_col, expr.clone(), trigger_intervals.clone()))
        }
        OpSpec::WindowAssign { kind, time_col, time_type, time_zone, schema } => {
            Box::new(WindowAssign::new(*kind, *time_col, time_type.clone(), shift(time_zone)?, schema.clone()))
        }
        OpSpec::WindowAggregate { kind, time_col, time_type, time_zone, keys, key_types, aggs, schema, attached } => {
            let k = Keys::new(keys.clone(), key_types.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
            match kind {
                WindowKind::Session { gap } => Box::new(
                    SessionAggregate::new(
                        *gap,
                        *time_col,
                        time_type.clone(),
                        shift(time_zone)?,
                        k,
                        aggs.clone(),
                        schema.clone(),
                    )
                    .map_err(|e| EngineError::Internal(e.to_string()))?,
                ),
                _ => Box::new(
                    WindowAggregate::new(
                        *kind,
                        *time_col,
                        time_type.clone(),
                        shift(time_zone)?,
                        k,
                        aggs.clone(),
                        schema.clone(),
                    )
                    .attached(*attached),
                ),
            }
        }
        OpSpec::GroupAggregate { keys, key_types, aggs, schema, retract, ttl } => {
            let k = Keys::new(keys.clone(), key_types.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
            let ttl = Ttl::new(*ttl);
            // Groups keep a write time only when a TTL reads it (8 bytes a key).
            if ttl.enabled() {
                Box::new(GroupAggregate::<i64>::new(k, aggs.clone(), schema.clone(), retract.clone()).with_ttl(ttl))
            } else {
                Box::new(GroupAggregate::<()>::new(k, aggs.clone(), schema.clone(), retract.clone()))
            }
        }
        OpSpec::ChangelogNormalize { keys, key_types, schema, ttl } => {
            let k = Keys::new(keys.clone(), key_types.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
            Box::new(ChangelogNormalize::new(k, schema.clone()).with_ttl(Ttl::new(*ttl)))
        }
        OpSpec::Rank { keys, key_types, order, range, output_rank, window, types, schema, ttl } => {
            let k = Keys::new(keys.clone(), key_types.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
            match window {
                Some((end_col, time_zone, later_wins_ties)) => Box::new(WindowTopN::new(
                    k,
                    WindowTopNSpec {
                        order: order.clone(),
                        range: *range,
                        output_rank: *output_rank,
                        end_col: *end_col,
                        shift: shift(time_zone)?,
                        later_wins_ties: *later_wins_ties,
                        types: types.clone(),
                        schema: schema.clone(),
                    },
                )),
                None => Box::new(
                    TopN::new(k, order.clone(), *range, *output_rank, types.clone(), schema.clone())
                        .with_ttl(Ttl::new(*ttl)),
                ),
            }
        }
        OpSpec::TemporalSort { time_col, order, types, schema } => {
            let k = Keys::new(vec![], vec![]).map_err(|e| EngineError::Internal(e.to_string()))?;
            Box::new(TemporalSort::new(k, *time_col, order.clone(), types.clone(), schema.clone()))
        }
        OpSpec::Deduplicate { keys, key_types, time_col, keep_last, proctime, types, schema, ttl } => {
            let k = Keys::new(keys.clone(), key_types.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
            Box::new(
                Deduplicate::new(k, *time_col, *keep_last, types.clone(), schema.clone())
                    .on_processing_time(*proctime)
                    .with_ttl(Ttl::new(*ttl)),
            )
        }
        OpSpec::OverAggregate { keys, key_types, time_col, frame, aggs, types, schema, ttl } => {
            let k = Keys::new(keys.clone(), key_types.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
            Box::new(
                OverAggregate::new(k, *time_col, *frame, aggs.clone(), types.clone(), schema.clone())
                    .with_ttl(Ttl::new(*ttl)),
            )
        }
        OpSpec::Join {
            kind,
            left_keys,
            right_keys,
            key_types,
            left,
            right,
            residual,
            schema,
            updating,
            interval,
            temporal,
            window,
            ttl,
        } => {
            let def = JoinDef {
                kind: *kind,
                keys: [left_keys.clone(), right_keys.clone()],
                key_types: key_types.clone(),
                inputs: [left.clone(), right.clone()],
                residual: residual.clone(),
                schema: schema.clone(),
                updating: *updating,
                ttl: *ttl,
            };
            let internal = |e: crate::error::OpError| EngineError::Internal(e.to_string());
            match (interval, temporal, window) {
                (_, Some(t), _) => Box::new(TemporalJoin::new(def, *t).map_err(internal)?),
                (Some(i), None, _) => Box::new(IntervalJoin::new(def, *i).map_err(internal)?),
                (None, None, Some(w)) => {
                    Box::new(WindowJoinOp::new(def, [w.left_end, w.right_end], shift(&w.time_zone)?).map_err(internal)?)
                }
                (None, None, None) => Box::new(Join::new(def).map_err(internal)?),
            }
        }
        OpSpec::Sink { table, event_time } => {
            let ctx = sink_context(table, subtask, parallelism, job_id, tz, sink);
            Box::new(Sink {
                table: table.name.clone(),
                writer: create_sink(&ctx)?,
                exactly_once: sink.exactly_once,
                event_time: *event_time,
                metrics: None,
                rows_only: !table.takes_updates(),
            })
        }
    })
}

/// The stateful operators of each vertex, as the coordinator describes them.
pub fn vertex_metas(graph: &JobGraph, state: &JobState) -> Result<Vec<VertexMeta>, EngineError> {
    let mut metas = Vec::new();
    for v in &graph.vertices {
        let mut operators: Vec<OperatorState> = Vec::new();
        for (index, spec) in v.ops.iter().enumerate() {
            if matches!(spec, OpSpec::Sink { .. }) {
                continue;
            }
            let op = instantiate(spec, 0, v.parallelism, &state.job_id, &graph.local_time_zone, &SinkSetup::default())?;
            if let Some(layout) = op.state_layout() {
                operators.push(OperatorState { index, name: op.name(), layout });
            }
        }
        metas.push(VertexMeta { uid: v.uid.clone(), name: v.name(), parallelism: v.parallelism, operators });
    }
    Ok(metas)
}
