//! The planner: from parsed Flink statements to the [`logical`](crate::logical) plan.
//!
//! [`compile`] reads the `SET` statements, defines tables and views in order,
//! and plans each `INSERT INTO` into a [`SinkPlan`]. The planner is split along
//! the SQL it plans: `query` (WITH, UNION ALL, FROM items), `set_ops` (UNION,
//! INTERSECT, EXCEPT; `set_ops_all` INTERSECT ALL and EXCEPT ALL), `join` (regular,
//! interval and window joins in FROM; `window_join` finds the latter,
//! `join_push` places their conditions),
//! `temporal_join` (`FOR SYSTEM_TIME AS OF`), `select` (WHERE and the SELECT
//! list), `subquery` (`IN` and `EXISTS` subqueries in WHERE and HAVING: semi and anti
//! joins; `subquery_mark` those under OR or NOT: mark joins), `scalar_subquery` (a subquery as a value; `scalar_correlated` decorrelates one), `window` (window TVFs), `group_window` (`GROUP BY TUMBLE(ts, ...)`),
//! `grouping_sets` (GROUPING SETS, ROLLUP, CUBE),
//! `aggregate` (window aggregation), `rank`
//! (Top-N and deduplication), `over` (OVER aggregations), `unnest` (UNNEST
//! correlated with a FROM item), `values` (VALUES
//! rows), `sort` (ORDER BY and LIMIT) and `insert` (mapping a query onto a
//! sink's columns). Once every sink is planned, `prune` narrows the inputs of
//! joins to the columns the query reads.
//!
//! Invariants of every [`Rel`] the planner builds:
//! - its `schema` is exactly the output of its `node`, and every expression in
//!   the node is typed against the schema of the node's input;
//! - its `rowtime`, when set, is a column of `schema` that carries watermarks: a
//!   projection keeps it only for a column passed through unchanged, a UNION ALL
//!   only when all inputs agree, a window aggregation sets it to `window_time`;
//! - a view is planned once, at its `CREATE VIEW`, and each use gets a copy
//!   requalified with its name; a CTE shadows a view of the same name only
//!   within its query;
//! - every error carries the position of the nearest SQL node that has one,
//!   else that of its statement.

mod aggregate;
mod group_window;
mod grouping_sets;
mod insert;
pub use insert::{UPDATING_SINKS, flink_insert_only};
mod interval;
mod join;
mod join_push;
mod over;
mod prune;
pub use prune::COLUMN_PRUNING;
mod query;
mod rank;
mod rank_bounds;
mod scalar_correlated;
mod scalar_subquery;
mod select;
mod set_ops;
mod set_ops_all;
mod sort;
mod subquery;
mod subquery_mark;
mod temporal_join;
mod unnest;
mod values;
mod window;
mod window_attached;
mod window_join;
mod window_rank;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::Field;
use datafusion_common::{Column, DFSchema, TableReference};
use datafusion_expr::ExprSchemable;
use sqlparser::ast::{Expr as SqlExpr, Spanned};

use crate::catalog::{TableDef, define_table};
use crate::error::{Position, SqlError};
use crate::expr::{Expr, ExprPlanner};
use crate::logical::{Job, PlanNode, Rel, SinkPlan};
use crate::parser::{self, Statement};
use crate::policy::{DataPolicy, Enforcer, Secrets};

/// Compiles a job script.
pub fn compile(sql: &str) -> Result<Job, SqlError> {
    compile_with_policy(sql, &DataPolicy::default(), &|_| Err("the job has no data policy".into()))
}

/// Compiles a job script under a data policy, whose hmac keys `secrets` reads.
pub fn compile_with_policy(sql: &str, policy: &DataPolicy, secrets: Secrets<'_>) -> Result<Job, SqlError> {
    let statements = parser::parse_script(sql)?;
    let mut settings = BTreeMap::new();
    for s in &statements {
        if let Statement::Set { key, value, position } = s {
            validate_setting(key, value, *position)?;
            settings.insert(key.clone(), value.clone());
        }
    }
    let tz = settings.get("table.local-time-zone").cloned().unwrap_or_else(|| "UTC".into());
    let mut planner =
        Planner { exprs: ExprPlanner::new(&tz), tz: tz.clone(), tables: BTreeMap::new(), views: HashMap::new() };
    let mut enforcer = Enforcer::new(policy, secrets)?;
    let mut sinks = Vec::new();
    for s in &statements {
        match s {
            Statement::Set { .. } => {}
            Statement::CreateTable(ct) => {
                if planner.tables.contains_key(&ct.name) || planner.views.contains_key(&ct.name) {
                    return Err(SqlError::new(ct.position, format!("`{}` is already defined", ct.name)));
                }
                let def = enforcer.apply(define_table(ct, &planner.exprs, &tz)?, &planner.exprs)?;
                planner.tables.insert(ct.name.clone(), Arc::new(def));
            }
            Statement::CreateView(v) => {
                if planner.tables.contains_key(&v.name) || planner.views.contains_key(&v.name) {
                    return Err(SqlError::new(v.position, format!("`{}` is already defined", v.name)));
                }
                let mut rel = planner.plan_query(&v.query, v.position)?;
                if !v.columns.is_empty() {
                    rel = rename(rel, &v.columns, v.position)?;
                }
                planner.views.insert(v.name.clone(), rel);
            }
            Statement::Insert(ins) => sinks.push(planner.plan_insert(ins)?),
        }
    }
    let pruning = settings.get(prune::COLUMN_PRUNING).is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    if pruning {
        sinks = sinks
            .into_iter()
            .map(|s| Ok(SinkPlan { input: prune::prune_sink(s.input, s.position)?, ..s }))
            .collect::<Result<_, SqlError>>()?;
    }
    let read: std::collections::BTreeSet<String> = sinks.iter().flat_map(|s| s.input.scanned_tables()).collect();
    enforcer.finish(&planner.tables, &read)?;
    if sinks.is_empty() {
        return Err(SqlError::new(
            Position { line: 1, column: 1 },
            "the job has no INSERT INTO statement, so it would produce nothing; add INSERT INTO <sink> SELECT ...",
        ));
    }
    Ok(Job { settings, local_time_zone: tz, tables: planner.tables, sinks })
}

/// Checks the values of the settings Sluice interprets.
fn validate_setting(key: &str, value: &str, pos: Position) -> Result<(), SqlError> {
    match key {
        "parallelism.default" | "pipeline.max-parallelism" => match value.trim().parse::<u32>() {
            Ok(n) if n >= 1 && (key != "pipeline.max-parallelism" || n <= 32768) => Ok(()),
            _ => Err(SqlError::new(pos, format!("'{key}' must be a positive integer, not '{value}'"))),
        },
        "table.local-time-zone" => value.parse::<arrow::array::timezone::Tz>().map(|_| ()).map_err(|_| {
            SqlError::new(
                pos,
                format!("'{key}': unknown time zone '{value}'; use an IANA name such as 'Europe/Berlin', or 'UTC'"),
            )
        }),
        "table.exec.source.idle-timeout" | "metrics.latency.interval" | "table.exec.state.ttl" => {
            sluice_api::duration::parse_ms(value).map(|_| ()).ok_or_else(|| {
                SqlError::new(pos, format!("'{key}': '{value}' is not a duration such as '10 s' or '500 ms'"))
            })
        }
        prune::COLUMN_PRUNING => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err(SqlError::new(pos, format!("'{key}' must be 'true' or 'false', not '{value}'"))),
        },
        _ => Ok(()),
    }
}

struct Planner {
    exprs: ExprPlanner,
    tz: String,
    tables: BTreeMap<String, Arc<TableDef>>,
    views: HashMap<String, Rel>,
}

fn unsupported(pos: Position, what: &str) -> SqlError {
    SqlError::new(pos, format!("{what} is not supported yet"))
}

/// Requalifies a relation's columns (a table alias, a view name).
fn requalify(rel: Rel, qualifier: &str, pos: Position) -> Result<Rel, SqlError> {
    let fields: Vec<Field> = rel.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let schema =
        DFSchema::try_from_qualified_schema(TableReference::bare(qualifier), &arrow::datatypes::Schema::new(fields))
            .map_err(|e| SqlError::new(pos, format!("{e}; give the columns distinct names with AS")))?;
    Ok(Rel { schema: Arc::new(schema), ..rel })
}

/// Renames a relation's columns (a view's or an alias's column list).
fn rename(rel: Rel, names: &[String], pos: Position) -> Result<Rel, SqlError> {
    if names.len() != rel.schema.fields().len() {
        return Err(SqlError::new(
            pos,
            format!("{} column names given for a query with {} columns", names.len(), rel.schema.fields().len()),
        ));
    }
    let exprs: Vec<(Expr, String)> = rel
        .schema
        .iter()
        .zip(names)
        .map(|((q, f), n)| (Expr::Column(Column::new(q.cloned(), f.name())), n.clone()))
        .collect();
    project(rel, exprs, pos)
}

fn df_err(pos: Position) -> impl Fn(datafusion_common::DataFusionError) -> SqlError {
    move |e| SqlError::new(pos, e.to_string())
}

/// Builds a projection, keeping the time attribute when it is passed through.
fn project(input: Rel, exprs: Vec<(Expr, String)>, pos: Position) -> Result<Rel, SqlError> {
    let mut fields = Vec::new();
    let mut rowtime = None;
    // A unique key survives when each of its columns is passed through.
    let passed = |col: usize| {
        exprs
            .iter()
            .position(|(e, _)| matches!(e, Expr::Column(c) if input.schema.index_of_column(c).ok() == Some(col)))
    };
    let unique_key = input.unique_key.as_ref().and_then(|k| k.iter().map(|c| passed(*c)).collect::<Option<Vec<_>>>());
    for (i, (e, name)) in exprs.iter().enumerate() {
        let t = e.get_type(&input.schema).map_err(df_err(pos))?;
        let nullable = e.nullable(&input.schema).map_err(df_err(pos))?;
        if let (Expr::Column(c), Some(rt)) = (e, input.rowtime)
            && input.schema.index_of_column(c).ok() == Some(rt)
            && rowtime.is_none()
        {
            rowtime = Some(i);
        }
        fields.push((None::<TableReference>, Arc::new(Field::new(name, t, nullable))));
    }
    let schema = DFSchema::new_with_metadata(fields, HashMap::new())
        .map_err(|e| SqlError::new(pos, format!("{e}; give the columns distinct names with AS")))?;
    let updating = input.updating;
    Ok(Rel {
        node: PlanNode::Project { input: Box::new(input), exprs: exprs.into_iter().map(|(e, _)| e).collect() },
        schema: Arc::new(schema),
        rowtime,
        updating,
        unique_key,
    })
}

fn ident_name(e: &SqlExpr) -> Option<&str> {
    match e {
        SqlExpr::Identifier(i) => Some(i.value.as_str()),
        SqlExpr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        _ => None,
    }
}

fn pos_of(s: &impl Spanned, fallback: Position) -> Position {
    let sp = s.span();
    if sp.start.line == 0 { fallback } else { sp.start.into() }
}

impl Planner {
    fn plan_expr(&self, e: &SqlExpr, schema: &DFSchema, pos: Position) -> Result<Expr, SqlError> {
        self.exprs.plan(e, schema, pos)
    }
}
