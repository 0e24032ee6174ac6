//! The streaming logical plan, and the planner that builds it from Flink SQL.
//!
//! A job is a set of sinks; each sink consumes a tree of [`Rel`]s. Relational
//! structure (scans, window TVFs, window aggregation, UNION ALL, views) is
//! planned here; every scalar expression is a DataFusion `Expr` typed against the
//! input's `DFSchema`, so the engine can lower it with
//! [`crate::expr::physical`].

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion_common::{Column, DFSchema, DFSchemaRef, ScalarValue, TableReference};
use datafusion_expr::{ExprSchemable, lit};
use sqlparser::ast::{
    self, DuplicateTreatment, Expr as SqlExpr, FunctionArguments, GroupByExpr, Ident, Query, Select, SelectItem,
    SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor, Value, VisitorMut,
};

use crate::catalog::{TableDef, define_table};
use crate::dialect::TABLE_ARG_FUNCTION;
use crate::error::{Position, SqlError};
use crate::expr::{AGGREGATES, Expr, ExprPlanner, plain_args};
use crate::parser::{self, Statement, expr_position, object_name};
use crate::types::{self, flink_name};

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

/// A relation: a plan node with its output schema and time attribute.
#[derive(Debug, Clone)]
pub struct Rel {
    pub node: PlanNode,
    pub schema: DFSchemaRef,
    /// The column that is an event-time attribute (carries watermarks), if any.
    pub rowtime: Option<usize>,
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
    },
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

/// Window sizes in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumble { size: i64 },
    Hop { slide: i64, size: i64 },
    Cumulate { step: i64, max_size: i64 },
    Session { gap: i64 },
}

impl std::fmt::Display for WindowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowKind::Tumble { size } => write!(f, "TUMBLE(size={size}ms)"),
            WindowKind::Hop { slide, size } => write!(f, "HOP(slide={slide}ms, size={size}ms)"),
            WindowKind::Cumulate { step, max_size } => write!(f, "CUMULATE(step={step}ms, max={max_size}ms)"),
            WindowKind::Session { gap } => write!(f, "SESSION(gap={gap}ms)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// One aggregate call of a window aggregation.
#[derive(Debug, Clone)]
pub struct AggCall {
    pub func: AggFunc,
    /// The argument over the aggregation's input; None for `COUNT(*)`.
    pub arg: Option<Expr>,
    pub distinct: bool,
    /// `FILTER (WHERE ...)` over the aggregation's input.
    pub filter: Option<Expr>,
    pub output_type: DataType,
}

pub const WINDOW_COLUMNS: [&str; 3] = ["window_start", "window_end", "window_time"];

/// Compiles a job script.
pub fn compile(sql: &str) -> Result<Job, SqlError> {
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
    let mut sinks = Vec::new();
    for s in &statements {
        match s {
            Statement::Set { .. } => {}
            Statement::CreateTable(ct) => {
                if planner.tables.contains_key(&ct.name) || planner.views.contains_key(&ct.name) {
                    return Err(SqlError::new(ct.position, format!("`{}` is already defined", ct.name)));
                }
                let def = define_table(ct, &planner.exprs, &tz)?;
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
        "table.exec.source.idle-timeout" => sluice_api::duration::parse_ms(value).map(|_| ()).ok_or_else(|| {
            SqlError::new(pos, format!("'{key}': '{value}' is not a duration such as '10 s' or '500 ms'"))
        }),
        _ => Ok(()),
    }
}

struct Planner {
    exprs: ExprPlanner,
    tz: String,
    tables: BTreeMap<String, Arc<TableDef>>,
    views: HashMap<String, Rel>,
}

/// A FROM item: a plain relation, or a window TVF over one.
enum From {
    Plain(Rel),
    Window { input: Rel, window: WindowSpec, partition_by: Vec<SqlExpr>, qualifier: Option<String> },
}

fn unsupported(pos: Position, what: &str) -> SqlError {
    SqlError::new(pos, format!("{what} is not supported yet"))
}

/// Requalifies a relation's columns (a table alias, a view name).
fn requalify(rel: Rel, qualifier: &str, pos: Position) -> Result<Rel, SqlError> {
    let fields: Vec<Field> = rel.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let schema = DFSchema::try_from_qualified_schema(qualifier, &arrow::datatypes::Schema::new(fields))
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
    Ok(Rel {
        node: PlanNode::Project { input: Box::new(input), exprs: exprs.into_iter().map(|(e, _)| e).collect() },
        schema: Arc::new(schema),
        rowtime,
    })
}

fn ident_name(e: &SqlExpr) -> Option<&str> {
    match e {
        SqlExpr::Identifier(i) => Some(i.value.as_str()),
        SqlExpr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        _ => None,
    }
}

fn is_window_col(e: &SqlExpr) -> Option<&'static str> {
    let n = ident_name(e)?;
    WINDOW_COLUMNS.iter().copied().find(|w| w.eq_ignore_ascii_case(n))
}

fn interval_ms(e: &SqlExpr, pos: Position) -> Result<i64, SqlError> {
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
    let ms = (n * unit).round() as i64;
    if ms <= 0 {
        return Err(SqlError::new(pos, format!("window interval must be positive, found `{e}`")));
    }
    Ok(ms)
}

/// The known aggregate functions Sluice does not implement, for clear errors.
const OTHER_AGGREGATES: [&str; 14] = [
    "LISTAGG",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "VAR_POP",
    "VAR_SAMP",
    "VARIANCE",
    "FIRST_VALUE",
    "LAST_VALUE",
    "COLLECT",
    "ARRAY_AGG",
    "STRING_AGG",
    "BIT_AND",
    "BIT_OR",
];

/// Rewrites a SELECT item or HAVING of a window aggregation: aggregate calls
/// become `__aggN`, group keys become their output names.
struct AggRewriter<'a> {
    keys: &'a [(SqlExpr, String)],
    calls: Vec<ast::Function>,
    error: Option<SqlError>,
    fallback: Position,
}

impl VisitorMut for AggRewriter<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if let Some(w) = is_window_col(e) {
            *e = SqlExpr::Identifier(Ident::new(w));
            return ControlFlow::Continue(());
        }
        for (k, name) in self.keys {
            let same = k == e || matches!((ident_name(k), ident_name(e)), (Some(a), Some(b)) if a == b);
            if same {
                *e = SqlExpr::Identifier(Ident::with_quote('`', name.clone()));
                return ControlFlow::Continue(());
            }
        }
        if let SqlExpr::Function(f) = e {
            let name = f.name.to_string().to_ascii_uppercase();
            if AGGREGATES.contains(&name.as_str()) {
                let idx = match self.calls.iter().position(|c| c == f) {
                    Some(i) => i,
                    None => {
                        self.calls.push(f.clone());
                        self.calls.len() - 1
                    }
                };
                *e = SqlExpr::Identifier(Ident::with_quote('`', format!("__agg{idx}")));
            } else if OTHER_AGGREGATES.contains(&name.as_str()) {
                self.error = Some(SqlError::new(
                    expr_position(e, self.fallback),
                    format!(
                        "aggregate function {name} is not supported yet; supported aggregates are COUNT, COUNT(DISTINCT), SUM, MIN, MAX and AVG"
                    ),
                ));
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

fn contains_aggregate(e: &SqlExpr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        if let SqlExpr::Function(f) = x {
            let n = f.name.to_string().to_ascii_uppercase();
            if AGGREGATES.contains(&n.as_str()) || OTHER_AGGREGATES.contains(&n.as_str()) {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

fn select_item_expr(item: &SelectItem) -> Option<&SqlExpr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
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

    fn plan_query(&mut self, q: &Query, pos: Position) -> Result<Rel, SqlError> {
        if q.order_by.is_some() {
            return Err(unsupported(pos_of(q, pos), "ORDER BY in a streaming query (it needs a time-ordered sort)"));
        }
        if q.limit_clause.is_some() || q.fetch.is_some() {
            return Err(unsupported(pos_of(q, pos), "LIMIT/FETCH"));
        }
        let mut saved = Vec::new();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.clone();
                let rel = self.plan_query(&cte.query, pos)?;
                let rel = requalify(rel, &name, pos)?;
                saved.push((name.clone(), self.views.insert(name, rel)));
            }
        }
        let out = self.plan_set_expr(&q.body, pos);
        for (name, old) in saved.into_iter().rev() {
            match old {
                Some(v) => self.views.insert(name, v),
                None => self.views.remove(&name),
            };
        }
        out
    }

    fn plan_set_expr(&mut self, body: &SetExpr, pos: Position) -> Result<Rel, SqlError> {
        match body {
            SetExpr::Select(s) => self.plan_select(s, pos),
            SetExpr::Query(q) => self.plan_query(q, pos),
            SetExpr::SetOperation { op: SetOperator::Union, set_quantifier: SetQuantifier::All, left, right } => {
                let l = self.plan_set_expr(left, pos)?;
                let r = self.plan_set_expr(right, pos)?;
                self.union(l, r, pos)
            }
            SetExpr::SetOperation { op, .. } => Err(SqlError::new(
                pos,
                format!("{op} (without ALL) is not supported yet: it needs deduplication; UNION ALL is supported"),
            )),
            SetExpr::Values(_) => Err(unsupported(pos, "VALUES")),
            _ => Err(unsupported(pos, &format!("`{body}`"))),
        }
    }

    fn union(&mut self, l: Rel, r: Rel, pos: Position) -> Result<Rel, SqlError> {
        let (lf, rf) = (l.schema.fields(), r.schema.fields());
        if lf.len() != rf.len() {
            return Err(SqlError::new(pos, format!("UNION ALL inputs have {} and {} columns", lf.len(), rf.len())));
        }
        let mut types = Vec::new();
        for (a, b) in lf.iter().zip(rf.iter()) {
            let t = if a.data_type() == b.data_type() {
                a.data_type().clone()
            } else {
                datafusion_expr::type_coercion::binary::comparison_coercion(a.data_type(), b.data_type()).ok_or_else(
                    || {
                        SqlError::new(
                            pos,
                            format!(
                                "UNION ALL column `{}`: {} and {} have no common type",
                                a.name(),
                                flink_name(a.data_type()),
                                flink_name(b.data_type())
                            ),
                        )
                    },
                )?
            };
            types.push(t);
        }
        let names: Vec<String> = lf.iter().map(|f| f.name().clone()).collect();
        let cast_to = |rel: Rel| -> Result<Rel, SqlError> {
            let exprs: Vec<(Expr, String)> = rel
                .schema
                .iter()
                .zip(&types)
                .zip(&names)
                .map(|(((q, f), t), n)| {
                    let c = Expr::Column(Column::new(q.cloned(), f.name()));
                    let e = if f.data_type() == t { c } else { datafusion_expr::cast(c, t.clone()) };
                    (e, n.clone())
                })
                .collect();
            project(rel, exprs, pos)
        };
        let (l, r) = (cast_to(l)?, cast_to(r)?);
        let rowtime = if l.rowtime.is_some() && l.rowtime == r.rowtime { l.rowtime } else { None };
        // Flatten nested unions so that an n-way UNION ALL is one node.
        let mut inputs = Vec::new();
        for rel in [l, r] {
            match rel.node {
                PlanNode::Union { inputs: inner } => inputs.extend(inner),
                _ => inputs.push(rel),
            }
        }
        let schema = inputs[0].schema.clone();
        Ok(Rel { node: PlanNode::Union { inputs }, schema, rowtime })
    }

    fn lookup(&self, name: &str, pos: Position) -> Result<Rel, SqlError> {
        if let Some(v) = self.views.get(name) {
            return requalify(v.clone(), name, pos);
        }
        if let Some(t) = self.tables.get(name) {
            return Ok(Rel { node: PlanNode::Source(t.clone()), schema: t.schema.clone(), rowtime: t.rowtime() });
        }
        let mut known: Vec<&String> = self.tables.keys().chain(self.views.keys()).collect();
        known.sort();
        Err(SqlError::new(
            pos,
            format!(
                "table or view `{name}` is not defined{}",
                if known.is_empty() {
                    String::new()
                } else {
                    format!("; defined: {}", known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
                }
            ),
        ))
    }

    fn plan_from(&mut self, f: &TableFactor, pos: Position) -> Result<From, SqlError> {
        let pos = pos_of(f, pos);
        match f {
            TableFactor::Table { name, alias, args: None, .. } => {
                let rel = self.lookup(&object_name(name), pos)?;
                let rel = match alias {
                    Some(a) => self.alias(rel, a, pos)?,
                    None => rel,
                };
                Ok(From::Plain(rel))
            }
            TableFactor::Derived { subquery, alias, .. } => {
                let rel = self.plan_query(subquery, pos)?;
                let rel = match alias {
                    Some(a) => self.alias(rel, a, pos)?,
                    None => rel,
                };
                Ok(From::Plain(rel))
            }
            TableFactor::TableFunction { expr, alias } => {
                self.plan_window_tvf(expr, alias.as_ref().map(|a| a.name.value.clone()), pos)
            }
            TableFactor::Table { args: Some(_), .. } | TableFactor::Function { .. } => Err(SqlError::new(
                pos,
                "table functions are written TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE)); supported: TUMBLE, HOP, CUMULATE, SESSION",
            )),
            other => Err(unsupported(pos, &format!("FROM `{other}`"))),
        }
    }

    fn alias(&self, rel: Rel, a: &ast::TableAlias, pos: Position) -> Result<Rel, SqlError> {
        let rel = if a.columns.is_empty() {
            rel
        } else {
            rename(rel, &a.columns.iter().map(|c| c.name.value.clone()).collect::<Vec<_>>(), pos)?
        };
        requalify(rel, &a.name.value, pos)
    }

    fn plan_window_tvf(&mut self, e: &SqlExpr, qualifier: Option<String>, pos: Position) -> Result<From, SqlError> {
        let SqlExpr::Function(f) = e else {
            return Err(SqlError::new(
                pos,
                format!("expected a window TVF such as TUMBLE(...) in TABLE(...), found `{e}`"),
            ));
        };
        let fname = f.name.to_string().to_ascii_uppercase();
        let args = plain_args(f);
        let usage = match fname.as_str() {
            "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(ts), size)",
            "HOP" => "HOP(TABLE t, DESCRIPTOR(ts), slide, size)",
            "CUMULATE" => "CUMULATE(TABLE t, DESCRIPTOR(ts), step, max_size)",
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
        if args.len() == 2 + n_intervals + 1 {
            return Err(SqlError::new(pos, format!("{fname}: window offsets are not supported yet; use {usage}")));
        }
        if args.len() != 2 + n_intervals {
            return Err(SqlError::new(pos, format!("{fname} takes {} arguments: {usage}", 2 + n_intervals)));
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
                if input.rowtime != Some(idx) {
                    return Err(SqlError::new(
                        expr_position(&args[1], pos),
                        format!(
                            "{fname}: DESCRIPTOR({col}): `{col}` is not an event-time attribute; declare `WATERMARK FOR {col} AS {col} - INTERVAL '5' SECOND` in its CREATE TABLE, or use window_time of an upstream window aggregation"
                        ),
                    ));
                }
                idx
            }
            other => {
                return Err(SqlError::new(
                    expr_position(other, pos),
                    format!("{fname}: the second argument must be DESCRIPTOR(time_column); use {usage}"),
                ));
            }
        };
        let a = interval_ms(&args[2], expr_position(&args[2], pos))?;
        let kind = match fname.as_str() {
            "TUMBLE" => WindowKind::Tumble { size: a },
            "SESSION" => WindowKind::Session { gap: a },
            "HOP" => {
                let size = interval_ms(&args[3], expr_position(&args[3], pos))?;
                if size % a != 0 {
                    return Err(SqlError::new(pos, "HOP: the size must be an integral multiple of the slide"));
                }
                WindowKind::Hop { slide: a, size }
            }
            _ => {
                let max_size = interval_ms(&args[3], expr_position(&args[3], pos))?;
                if max_size % a != 0 {
                    return Err(SqlError::new(pos, "CUMULATE: the max size must be an integral multiple of the step"));
                }
                WindowKind::Cumulate { step: a, max_size }
            }
        };
        if let Some(dup) = input.schema.fields().iter().find(|f| WINDOW_COLUMNS.contains(&f.name().as_str())) {
            return Err(SqlError::new(
                pos,
                format!(
                    "{fname}: its input already has a column named {}; rename it (for example `window_start AS w_start`) in the view or subquery it comes from",
                    dup.name()
                ),
            ));
        }
        let time_zone = match input.schema.field(time_col).data_type() {
            DataType::Timestamp(_, Some(_)) => Some(self.tz.clone()),
            _ => None,
        };
        Ok(From::Window { input, window: WindowSpec { kind, time_col, time_zone }, partition_by, qualifier })
    }

    /// The schema of a window TVF's output: the input's columns, then the window columns.
    fn window_schema(
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

    fn plan_select(&mut self, s: &Select, pos: Position) -> Result<Rel, SqlError> {
        let pos = pos_of(s, pos);
        if s.distinct.is_some() {
            return Err(unsupported(pos, "SELECT DISTINCT (an updating aggregation)"));
        }
        if s.from.len() != 1 {
            return Err(SqlError::new(
                pos,
                if s.from.is_empty() {
                    "a SELECT needs a FROM clause".into()
                } else {
                    "joins (FROM a, b) are not supported yet".to_string()
                },
            ));
        }
        if !s.from[0].joins.is_empty() {
            return Err(unsupported(pos_of(&s.from[0].joins[0], pos), "JOIN"));
        }
        if !s.named_window.is_empty() || s.qualify.is_some() {
            return Err(unsupported(pos, "OVER windows and QUALIFY"));
        }
        let group_by = match &s.group_by {
            GroupByExpr::Expressions(e, m) if m.is_empty() => e.clone(),
            _ => return Err(unsupported(pos, "GROUP BY ALL / ROLLUP / CUBE")),
        };
        let aggregating = !group_by.is_empty()
            || s.having.is_some()
            || s.projection.iter().filter_map(select_item_expr).any(contains_aggregate);
        let from = self.plan_from(&s.from[0].relation, pos)?;
        match from {
            From::Plain(rel) => {
                if aggregating {
                    return Err(SqlError::new(
                        pos,
                        "non-windowed aggregation (GROUP BY without a window TVF) is not supported yet; aggregate over a window: FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, ...",
                    ));
                }
                let rel = match &s.selection {
                    Some(w) => self.filter(rel, w, pos)?,
                    None => rel,
                };
                self.plan_projection(rel, &s.projection, pos)
            }
            From::Window { input, window, partition_by, qualifier } => {
                // A WHERE over the input's columns is applied before the window.
                let wschema = self.window_schema(&input, &window, qualifier.as_deref(), pos)?;
                let mut input = input;
                let mut late_filter = None;
                if let Some(w) = &s.selection {
                    let refs_window = {
                        let mut found = false;
                        let _ = ast::visit_expressions(w, |x| {
                            if is_window_col(x).is_some() {
                                found = true;
                            }
                            ControlFlow::<()>::Continue(())
                        });
                        found
                    };
                    if refs_window {
                        late_filter = Some(w.clone());
                    } else {
                        input = self.filter(input, w, pos)?;
                    }
                }
                if aggregating {
                    if late_filter.is_some() {
                        return Err(unsupported(pos, "a WHERE on window columns before a window aggregation"));
                    }
                    return self.plan_window_aggregate(input, window, partition_by, &group_by, s, pos);
                }
                if matches!(window.kind, WindowKind::Session { .. }) {
                    return Err(unsupported(pos, "SESSION without an aggregation (GROUP BY window_start, window_end)"));
                }
                let rowtime = Some(wschema.fields().len() - 1);
                let mut rel =
                    Rel { node: PlanNode::WindowAssign { input: Box::new(input), window }, schema: wschema, rowtime };
                if let Some(w) = late_filter {
                    rel = self.filter(rel, &w, pos)?;
                }
                self.plan_projection(rel, &s.projection, pos)
            }
        }
    }

    fn filter(&self, rel: Rel, w: &SqlExpr, pos: Position) -> Result<Rel, SqlError> {
        if contains_aggregate(w) {
            return Err(SqlError::new(expr_position(w, pos), "aggregates are not allowed in WHERE; use HAVING"));
        }
        let predicate = self.plan_expr(w, &rel.schema, pos)?;
        let t = predicate.get_type(&rel.schema).map_err(df_err(pos))?;
        if t != DataType::Boolean && t != DataType::Null {
            return Err(SqlError::new(
                expr_position(w, pos),
                format!("WHERE must be a BOOLEAN condition, not {}", flink_name(&t)),
            ));
        }
        let schema = rel.schema.clone();
        let rowtime = rel.rowtime;
        Ok(Rel { node: PlanNode::Filter { input: Box::new(rel), predicate }, schema, rowtime })
    }

    fn plan_projection(&self, rel: Rel, items: &[SelectItem], pos: Position) -> Result<Rel, SqlError> {
        let mut exprs = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                SelectItem::Wildcard(_) => {
                    for (q, f) in rel.schema.iter() {
                        exprs.push((Expr::Column(Column::new(q.cloned(), f.name())), f.name().clone()));
                    }
                }
                SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                    let q = object_name(n);
                    let before = exprs.len();
                    for (fq, f) in rel.schema.iter() {
                        if fq.is_some_and(|fq| fq.table() == q) {
                            exprs.push((Expr::Column(Column::new(fq.cloned(), f.name())), f.name().clone()));
                        }
                    }
                    if exprs.len() == before {
                        return Err(SqlError::new(pos_of(item, pos), format!("`{q}.*`: no such table in FROM")));
                    }
                }
                SelectItem::UnnamedExpr(e) => {
                    let planned = self.plan_expr(e, &rel.schema, pos)?;
                    let name = match (&planned, ident_name(e)) {
                        (Expr::Column(c), _) => c.name.clone(),
                        (_, Some(n)) => n.to_string(),
                        _ => format!("EXPR${i}"),
                    };
                    exprs.push((planned, name));
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    exprs.push((self.plan_expr(expr, &rel.schema, pos)?, alias.value.clone()));
                }
                other => return Err(unsupported(pos_of(other, pos), &format!("select item `{other}`"))),
            }
        }
        project(rel, exprs, pos)
    }

    fn plan_window_aggregate(
        &mut self,
        input: Rel,
        window: WindowSpec,
        partition_by: Vec<SqlExpr>,
        group_by: &[SqlExpr],
        s: &Select,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let mut has = [false; 3];
        let mut keys: Vec<(SqlExpr, String)> = Vec::new();
        let mut key_exprs = Vec::new();
        for g in group_by {
            if let Some(w) = is_window_col(g) {
                if let Some(i) = WINDOW_COLUMNS.iter().position(|c| *c == w) {
                    has[i] = true;
                }
                continue;
            }
            let planned = self.plan_expr(g, &input.schema, pos)?;
            let name = match &planned {
                Expr::Column(c) => c.name.clone(),
                _ => format!("__key{}", keys.len()),
            };
            keys.push((g.clone(), name));
            key_exprs.push(planned);
        }
        if !(has[0] && has[1]) {
            return Err(SqlError::new(
                pos,
                "a window aggregation must GROUP BY window_start, window_end (and optionally keys); non-windowed aggregation is not supported yet",
            ));
        }
        if matches!(window.kind, WindowKind::Session { .. }) {
            let pnames: Vec<String> = partition_by.iter().map(|e| e.to_string()).collect();
            let knames: Vec<String> = keys.iter().map(|(e, _)| e.to_string()).collect();
            let mut ps = pnames.clone();
            let mut ks = knames.clone();
            ps.sort();
            ks.sort();
            if ps != ks {
                return Err(SqlError::new(
                    pos,
                    format!(
                        "SESSION windows: the GROUP BY keys ({}) must equal the PARTITION BY columns ({})",
                        if knames.is_empty() { "none".into() } else { knames.join(", ") },
                        if pnames.is_empty() { "none".into() } else { pnames.join(", ") }
                    ),
                ));
            }
        }
        // Rewrite the SELECT list and HAVING over the aggregation's output.
        let mut rw = AggRewriter { keys: &keys, calls: Vec::new(), error: None, fallback: pos };
        let mut items = s.projection.clone();
        for item in items.iter_mut() {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    // Keep the output name of a rewritten plain column.
                    if let Some(n) = ident_name(e).map(str::to_string)
                        && !contains_aggregate(e)
                    {
                        let mut e2 = e.clone();
                        let _ = ast::VisitMut::visit(&mut e2, &mut rw);
                        *item = SelectItem::ExprWithAlias { expr: e2, alias: Ident::with_quote('`', n) };
                    } else {
                        let _ = ast::VisitMut::visit(e, &mut rw);
                    }
                }
                SelectItem::ExprWithAlias { expr, .. } => {
                    let _ = ast::VisitMut::visit(expr, &mut rw);
                }
                other => {
                    return Err(SqlError::new(
                        pos_of(other, pos),
                        "SELECT * is not allowed in a window aggregation; list the group keys and aggregates",
                    ));
                }
            }
        }
        let mut having = s.having.clone();
        if let Some(h) = having.as_mut() {
            let _ = ast::VisitMut::visit(h, &mut rw);
        }
        if let Some(e) = rw.error {
            return Err(e);
        }
        let calls = rw.calls;
        let mut aggs = Vec::new();
        for call in &calls {
            aggs.push(self.plan_agg_call(call, &input.schema, pos)?);
        }
        // The aggregation's output schema.
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let wt = input.schema.field(window.time_col).data_type().clone();
        let mut fields: Vec<(Option<TableReference>, Arc<Field>)> = WINDOW_COLUMNS
            .iter()
            .zip([ts.clone(), ts, wt])
            .map(|(n, t)| (None, Arc::new(Field::new(*n, t, false))))
            .collect();
        for ((_, name), e) in keys.iter().zip(&key_exprs) {
            let t = e.get_type(&input.schema).map_err(df_err(pos))?;
            let nullable = e.nullable(&input.schema).map_err(df_err(pos))?;
            fields.push((None, Arc::new(Field::new(name, t, nullable))));
        }
        for (i, a) in aggs.iter().enumerate() {
            fields.push((
                None,
                Arc::new(Field::new(format!("__agg{i}"), a.output_type.clone(), a.func != AggFunc::Count)),
            ));
        }
        let schema = Arc::new(
            DFSchema::new_with_metadata(fields, HashMap::new()).map_err(|e| SqlError::new(pos, e.to_string()))?,
        );
        let mut rel = Rel {
            node: PlanNode::WindowAggregate { input: Box::new(input), window, keys: key_exprs, aggs },
            schema,
            rowtime: Some(2),
        };
        let explain_missing = |e: SqlError| {
            if e.message.contains("No field named") {
                SqlError::new(
                    e.position,
                    format!(
                        "{}: in a window aggregation, a column must be a GROUP BY key or inside an aggregate",
                        e.message
                    ),
                )
            } else {
                e
            }
        };
        if let Some(h) = &having {
            rel = self.filter(rel, h, pos).map_err(explain_missing)?;
        }
        self.plan_projection(rel, &items, pos).map_err(explain_missing)
    }

    fn plan_agg_call(&self, f: &ast::Function, schema: &DFSchema, pos: Position) -> Result<AggCall, SqlError> {
        let fpos = pos_of(f, pos);
        let name = f.name.to_string().to_ascii_uppercase();
        let func = match name.as_str() {
            "COUNT" => AggFunc::Count,
            "SUM" => AggFunc::Sum,
            "MIN" => AggFunc::Min,
            "MAX" => AggFunc::Max,
            _ => AggFunc::Avg,
        };
        let FunctionArguments::List(list) = &f.args else {
            return Err(SqlError::new(fpos, format!("{name} takes one argument")));
        };
        let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
        if distinct && func != AggFunc::Count {
            return Err(SqlError::new(
                fpos,
                format!("{name}(DISTINCT ...) is not supported yet; COUNT(DISTINCT ...) is"),
            ));
        }
        let arg = match list.args.as_slice() {
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] if func == AggFunc::Count && !distinct => None,
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => {
                if contains_aggregate(e) {
                    return Err(SqlError::new(fpos, "aggregates cannot be nested"));
                }
                Some(self.plan_expr(e, schema, pos)?)
            }
            _ => return Err(SqlError::new(fpos, format!("{name} takes exactly one argument"))),
        };
        let filter = match &f.filter {
            Some(w) => Some(self.plan_expr(w, schema, pos)?),
            None => None,
        };
        let in_type = match &arg {
            Some(a) => Some(a.get_type(schema).map_err(df_err(fpos))?),
            None => None,
        };
        let bad = |t: &DataType| SqlError::new(fpos, format!("{name} does not accept {}", flink_name(t)));
        let output_type = match (func, &in_type) {
            (AggFunc::Count, _) => DataType::Int64,
            (_, None) => return Err(SqlError::new(fpos, format!("{name} takes one argument"))),
            (AggFunc::Sum, Some(t)) => match t {
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Float64 => t.clone(),
                DataType::Float32 => DataType::Float64,
                DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
                other => return Err(bad(other)),
            },
            (AggFunc::Avg, Some(t)) => match t {
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Float64 => t.clone(),
                DataType::Float32 => DataType::Float64,
                DataType::Decimal128(_, s) => DataType::Decimal128(38, (*s).max(6)),
                other => return Err(bad(other)),
            },
            (AggFunc::Min | AggFunc::Max, Some(t)) => match t {
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float64
                | DataType::Decimal128(_, _)
                | DataType::Utf8
                | DataType::Boolean
                | DataType::Timestamp(_, _) => t.clone(),
                other => return Err(bad(other)),
            },
        };
        Ok(AggCall { func, arg, distinct, filter, output_type })
    }

    fn plan_insert(&mut self, ins: &parser::Insert) -> Result<SinkPlan, SqlError> {
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
        let sink_fields = table.physical.fields();
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
                    return Err(SqlError::new(
                        ins.position,
                        format!("sink `{}` has no column `{}`", table.name, c.value),
                    ));
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
        Ok(SinkPlan { table, input, position: ins.position })
    }
}
