//! `INSERT INTO`: mapping a query's columns onto a sink's physical columns.

use arrow::datatypes::DataType;
use datafusion_common::{Column, ScalarValue};
use datafusion_expr::lit;

use super::window_join::window_props;
use super::{Planner, project};
use crate::catalog::TableDef;
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{JoinKind, PlanNode, Rel, SinkPlan};
use crate::parser;
use crate::types::{self, flink_name};

impl Planner {
    pub(super) fn plan_insert(&mut self, ins: &parser::Insert) -> Result<SinkPlan, SqlError> {
        let table = match self.tables.get(&ins.table) {
            Some(t) => t.clone(),
            None if self.views.contains_key(&ins.table) => {
                return Err(SqlError::new(ins.position, format!("cannot INSERT INTO view `{}`", ins.table)));
            }
            None => {
                return Err(SqlError::new(
                    ins.position,
                    format!("sink table `{}` is not defined; declare it with CREATE TABLE", ins.table),
                ));
            }
        };
        let rel = self.plan_query(&ins.query, ins.position)?;
        super::rank::check_ranked(&rel)?;
        let sink_schema = table.sink_schema();
        let sink_fields = sink_schema.fields();
        let src: Vec<(Expr, DataType)> = rel
            .schema
            .iter()
            .map(|(q, f)| (Expr::Column(Column::new(q.cloned(), f.name())), f.data_type().clone()))
            .collect();
        // Map query columns onto the sink's physical columns.
        let mut mapping: Vec<Option<usize>> = Vec::new();
        if ins.columns.is_empty() {
            if src.len() != sink_fields.len() {
                return Err(SqlError::new(
                    ins.position,
                    format!(
                        "the query produces {} columns but sink `{}` has {}: ({})",
                        src.len(),
                        table.name,
                        sink_fields.len(),
                        sink_fields
                            .iter()
                            .map(|f| format!("{} {}", f.name(), flink_name(f.data_type())))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            mapping = (0..src.len()).map(Some).collect();
        } else {
            if ins.columns.len() != src.len() {
                return Err(SqlError::new(
                    ins.position,
                    format!(
                        "INSERT INTO `{}` lists {} columns but the query produces {}",
                        table.name,
                        ins.columns.len(),
                        src.len()
                    ),
                ));
            }
            for f in sink_fields.iter() {
                mapping.push(ins.columns.iter().position(|c| &c.value == f.name()));
            }
            for c in &ins.columns {
                if sink_fields.iter().all(|f| f.name() != &c.value) {
                    let why = match table.physical.index_of(&c.value) {
                        Ok(_) => format!(
                            "column `{}` of sink `{}` is a VIRTUAL metadata column, which a sink does not write",
                            c.value, table.name
                        ),
                        Err(_) => format!("sink `{}` has no column `{}`", table.name, c.value),
                    };
                    return Err(SqlError::new(ins.position, why));
                }
            }
        }
        let mut exprs = Vec::new();
        for (f, m) in sink_fields.iter().zip(&mapping) {
            let e = match m {
                None => datafusion_expr::cast(lit(ScalarValue::Null), f.data_type().clone()),
                Some(i) => {
                    let (e, t) = &src[*i];
                    if t == f.data_type() {
                        e.clone()
                    } else if types::is_assignable(t, f.data_type()) {
                        datafusion_expr::cast(e.clone(), f.data_type().clone())
                    } else {
                        return Err(SqlError::new(
                            ins.position,
                            format!(
                                "column {} of the query is {}, but sink column `{}` of `{}` is {}; add a CAST",
                                i + 1,
                                flink_name(t),
                                f.name(),
                                table.name,
                                flink_name(f.data_type())
                            ),
                        ));
                    }
                }
            };
            exprs.push((e, f.name().clone()));
        }
        // Sinks write columns by position under the table's own names, so a query
        // whose columns differ only in name needs no projection.
        let identity = mapping.iter().enumerate().all(|(i, m)| *m == Some(i))
            && src.iter().zip(sink_fields.iter()).all(|((_, t), f)| t == f.data_type());
        let input = if identity { rel } else { project(rel, exprs, ins.position)? };
        check_changelog(&table, &input, ins.position)?;
        Ok(SinkPlan { table, input, position: ins.position })
    }
}

/// Connectors whose sinks accept updates; every other sink is append-only,
/// unless its format writes changes (see [`TableDef::takes_updates`]).
pub const UPDATING_SINKS: [&str; 3] = ["print", "blackhole", "upsert-kafka"];

/// Whether the sink can take what the query produces: an append-only sink
/// (filesystem, kafka in `json` or `csv`) refuses updates, as Flink does, and an upsert sink
/// needs the query's updates keyed by its PRIMARY KEY.
fn check_changelog(table: &TableDef, input: &Rel, pos: Position) -> Result<(), SqlError> {
    if !input.updating || flink_insert_only(input) {
        return Ok(());
    }
    let connector = table.connector();
    if !table.takes_updates() {
        return Err(SqlError::new(
            pos,
            format!(
                "sink `{}` ('{connector}' connector) is append-only, but the query produces updates: {}. Write to a sink that accepts updates ('upsert-kafka' with a PRIMARY KEY, 'print', or 'kafka' or 'filesystem' with 'format' = 'debezium-json', 'canal-json' or 'maxwell-json'), or compute final results over a window TVF",
                table.name,
                update_origin(input)
            ),
        ));
    }
    if table.primary_key.is_empty() {
        return Ok(());
    }
    let names = |cols: &[usize]| cols.iter().map(|c| input.schema.field(*c).name().clone()).collect::<Vec<_>>();
    let pk = table.primary_key.join(", ");
    match &input.unique_key {
        None => Err(SqlError::new(
            pos,
            format!(
                "sink `{}` has PRIMARY KEY ({pk}), but no unique key can be derived for the query's updates ({}); write the GROUP BY keys (or the other unique columns) into the key columns",
                table.name,
                update_origin(input)
            ),
        )),
        Some(k) => {
            let mut key = names(k);
            let mut want = table.primary_key.clone();
            key.sort();
            want.sort();
            if key == want {
                Ok(())
            } else {
                Err(SqlError::new(
                    pos,
                    format!(
                        "sink `{}` has PRIMARY KEY ({pk}), but the query's updates are keyed by ({}); the primary key must be exactly the query's unique key",
                        table.name,
                        names(k).join(", ")
                    ),
                ))
            }
        }
    }
}

/// Whether an updating relation is one Flink 2.3 plans as insert-only: a
/// Top-1 (ROW_NUMBER, range 1..=1, not a Window Top-N) over an append-only
/// input whose ORDER BY is not exactly one descending key, seen through
/// filters and projections. Flink takes such a rank for a deduplication
/// keeping the first row (`RankUtil.isDeduplication` and not
/// `keepLastDeduplicateRow`; a selected row number of a 1..=1 range is a
/// constant) and so lets append-only sinks take it, also through an event-time
/// temporal join it is the left input of; its operator still emits
/// a lone `+U` for each better row (see `operators::rank`), which such a
/// sink writes as one more row, and which downstream aggregates accumulate.
pub fn flink_insert_only(rel: &Rel) -> bool {
    match &rel.node {
        PlanNode::Rank { input, order, range: Some(range), window: None, .. } => {
            !input.updating
                && *range == crate::logical::RankRange { start: 1, end: 1 }
                && !matches!(order.as_slice(), [k] if !k.asc)
        }
        PlanNode::Filter { input, .. } | PlanNode::Project { input, .. } | PlanNode::Unnest { input, .. } => {
            flink_insert_only(input)
        }
        // An event-time temporal join's changelog is its left input's.
        PlanNode::Join { left, temporal: Some(_), .. } => flink_insert_only(left),
        _ => false,
    }
}

/// An insert-only Top-1 ([`flink_insert_only`]) read as the inserts Flink
/// takes it for, by window TVFs and OVER aggregations: its rows without their
/// kinds (the `+I` of each key's first row, and the lone `+U` of each better
/// row, each one more row), with its time attribute. Any other relation is
/// returned as it is.
pub(super) fn as_inserts(rel: Rel) -> Rel {
    if !rel.updating || !flink_insert_only(&rel) {
        return rel;
    }
    let exprs = rel.schema.columns().into_iter().map(Expr::Column).collect();
    let (schema, rowtime) = (rel.schema.clone(), rel.rowtime);
    Rel { node: PlanNode::Project { input: Box::new(rel), exprs }, schema, rowtime, updating: false, unique_key: None }
}

/// The operator whose updates reach the sink, with its position.
fn update_origin(rel: &Rel) -> String {
    match &rel.node {
        PlanNode::GroupAggregate { input, position, .. } if !input.updating => {
            format!(
                "the non-windowed GROUP BY at line {}, column {} emits a new result per key for each change",
                position.line, position.column
            )
        }
        PlanNode::ChangelogNormalize { input, .. } => match &input.node {
            PlanNode::Source(t) => format!("table `{}` ('upsert-kafka') is an updating table", t.name),
            _ => update_origin(input),
        },
        PlanNode::Rank { input, position, .. } if !input.updating => format!(
            "the Top-N (ROW_NUMBER, or ORDER BY ... LIMIT) at line {}, column {} updates its rows as others enter and leave the top",
            position.line, position.column
        ),
        PlanNode::Deduplicate { keep_last: true, .. } => {
            "the deduplication keeping the last row replaces a key's row with each later one".into()
        }
        PlanNode::Source(t) => match t.changelog_format() {
            Some(f) => format!(
                "table `{}` reads changes ('format' = '{f}'): its rows are inserts, updates and deletes",
                t.name
            ),
            None => format!("table `{}` is updating", t.name),
        },
        PlanNode::Filter { input, .. }
        | PlanNode::Project { input, .. }
        | PlanNode::WindowAssign { input, .. }
        | PlanNode::WindowAggregate { input, .. }
        | PlanNode::GroupAggregate { input, .. }
        | PlanNode::Rank { input, .. }
        | PlanNode::TemporalSort { input, .. }
        | PlanNode::Deduplicate { input, .. }
        | PlanNode::OverAggregate { input, .. }
        | PlanNode::Unnest { input, .. } => update_origin(input),
        PlanNode::Union { inputs } => inputs.iter().find(|i| i.updating).map(update_origin).unwrap_or_default(),
        PlanNode::Join { left, right, kind, .. } => match [left, right].into_iter().find(|i| i.updating) {
            Some(input) => update_origin(input),
            None if *kind == JoinKind::Anti => {
                "a NOT EXISTS or NOT IN subquery (an anti join) retracts a row when a match for it comes".into()
            }
            None => format!(
                "a {kind} OUTER JOIN emits rows without a match padded with nulls and retracts them when a match comes{}",
                if window_props(left).is_some() && window_props(right).is_some() {
                    " (both inputs are windowed: join them ON both window_start and window_end, with the same window on each side, for a window join, which emits each window's rows once)"
                } else {
                    ""
                }
            ),
        },
    }
}
