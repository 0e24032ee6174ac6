//! Aggregation: window aggregation (`GROUP BY window_start, window_end, keys`
//! over a window TVF) and non-windowed `GROUP BY`, with their aggregate calls
//! and HAVING.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion_common::{DFSchema, TableReference};
use datafusion_expr::ExprSchemable;
use sqlparser::ast::{
    self, DuplicateTreatment, Expr as SqlExpr, FunctionArguments, Ident, Select, SelectItem, VisitorMut,
};

use super::scalar_subquery::keyless_left_join;
use super::subquery::take_subqueries;
use super::subquery_mark::Clause;
use super::window::is_window_col;
use super::{Planner, df_err, ident_name, pos_of};
use crate::error::{Position, SqlError};
use crate::expr::{AGGREGATES, Expr};
use crate::logical::{AggCall, AggFunc, PlanNode, Rel, WINDOW_COLUMNS, WindowKind, WindowSpec};
use crate::parser::expr_position;
use crate::types::flink_name;

/// The known aggregate functions Sluice does not implement, for clear errors.
const OTHER_AGGREGATES: [&str; 5] = ["COLLECT", "ARRAY_AGG", "STRING_AGG", "BIT_AND", "BIT_OR"];

/// Rewrites a SELECT item or HAVING of a window aggregation: aggregate calls
/// become `__aggN`, group keys become their output names.
struct AggRewriter<'a> {
    keys: &'a [(SqlExpr, String)],
    calls: Vec<ast::Function>,
    error: Option<SqlError>,
    fallback: Position,
    /// How deep in subqueries (of a HAVING), whose columns and aggregates are
    /// their own: they are left as they are.
    depth: usize,
}

impl VisitorMut for AggRewriter<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, _q: &mut ast::Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _q: &mut ast::Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
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
                        "aggregate function {name} is not supported yet; supported aggregates are COUNT, SUM, MIN, MAX, AVG (each also with DISTINCT), FIRST_VALUE, LAST_VALUE, LISTAGG, STDDEV_POP, STDDEV_SAMP (STDDEV), VAR_POP and VAR_SAMP (VARIANCE)"
                    ),
                ));
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// An aggregation's SELECT list and HAVING over its output, and its aggregate calls.
type Rewritten = (Vec<SelectItem>, Option<SqlExpr>, Vec<AggCall>);

/// An aggregation's output schema: `first` (the window columns), the keys,
/// then the aggregates as `__aggN`.
fn aggregation_schema(
    first: Vec<Field>,
    keys: &[(SqlExpr, String)],
    key_exprs: &[Expr],
    aggs: &[AggCall],
    input: &Rel,
    pos: Position,
) -> Result<Arc<DFSchema>, SqlError> {
    let mut fields: Vec<(Option<TableReference>, Arc<Field>)> =
        first.into_iter().map(|f| (None, Arc::new(f))).collect();
    for ((_, name), e) in keys.iter().zip(key_exprs) {
        let t = e.get_type(&input.schema).map_err(df_err(pos))?;
        let nullable = e.nullable(&input.schema).map_err(df_err(pos))?;
        fields.push((None, Arc::new(Field::new(name, t, nullable))));
    }
    for (i, a) in aggs.iter().enumerate() {
        fields.push((None, Arc::new(Field::new(format!("__agg{i}"), a.output_type.clone(), a.func != AggFunc::Count))));
    }
    let schema = DFSchema::new_with_metadata(fields, HashMap::new()).map_err(|e| SqlError::new(pos, e.to_string()))?;
    Ok(Arc::new(schema))
}

/// Whether `name` (upper case) is an aggregate function, implemented or not.
pub(super) fn is_aggregate_name(name: &str) -> bool {
    AGGREGATES.contains(&name) || OTHER_AGGREGATES.contains(&name)
}

/// Whether an expression holds an aggregate call (not an OVER aggregation).
pub(super) fn contains_aggregate(e: &SqlExpr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        if let SqlExpr::Function(f) = x
            && f.over.is_none()
        {
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

/// FIRST_VALUE and LAST_VALUE have no merge in Flink, and HOP, CUMULATE and
/// SESSION windows merge their slices' (or sessions') accumulators, so Flink
/// refuses them there ("Could not find an implementation method 'merge'").
fn merged_windows_refuse(a: &AggCall, kind: &WindowKind, pos: Position) -> Result<(), SqlError> {
    if a.func.is_variance() && matches!(kind, WindowKind::Hop { .. } | WindowKind::Cumulate { .. }) {
        // Flink merges a HOP or CUMULATE window's slice accumulators, and the
        // merged M2 depends on that grouping in its last digits; Sluice keeps
        // one accumulator per window.
        return Err(SqlError::new(
            pos,
            format!(
                "STDDEV_POP, STDDEV_SAMP, VAR_POP and VAR_SAMP are not supported in a {} window aggregation yet (Flink merges its slices' accumulators, which changes the last digits); use a TUMBLE or SESSION window or a non-windowed GROUP BY",
                window_name(kind)
            ),
        ));
    }
    let window = match kind {
        WindowKind::Tumble { .. } => return Ok(()),
        WindowKind::Hop { .. } => "HOP",
        WindowKind::Cumulate { .. } => "CUMULATE",
        WindowKind::Session { .. } => "SESSION",
    };
    if a.func == AggFunc::ListAgg && window == "HOP" {
        // Flink joins a HOP window's slices from the latest to the earliest;
        // Sluice's HOP panes keep rows in arrival order only.
        return Err(SqlError::new(
            pos,
            "LISTAGG is not supported in a HOP window aggregation yet (Flink orders a HOP window's values by slice, the latest first); use TUMBLE, CUMULATE or SESSION windows",
        ));
    }
    if !a.func.needs_arrival_order() {
        return Ok(());
    }
    let name = if a.func == AggFunc::FirstValue { "FIRST_VALUE" } else { "LAST_VALUE" };
    Err(SqlError::new(
        pos,
        format!(
            "{name} is not supported in a {window} window aggregation, as in Flink (its {name} has no merge, which HOP, CUMULATE and SESSION windows need); use a TUMBLE window or a non-windowed GROUP BY"
        ),
    ))
}

fn window_name(kind: &WindowKind) -> &'static str {
    match kind {
        WindowKind::Tumble { .. } => "TUMBLE",
        WindowKind::Hop { .. } => "HOP",
        WindowKind::Cumulate { .. } => "CUMULATE",
        WindowKind::Session { .. } => "SESSION",
    }
}

/// The windows a window aggregation aggregates: a window TVF's (with its
/// PARTITION BY, for SESSION), or those its input's rows carry in their
/// `window_start` and `window_end` columns (`attached`).
pub(super) struct Windowing {
    pub window: WindowSpec,
    pub partition_by: Vec<SqlExpr>,
    pub attached: Option<[usize; 2]>,
}

impl Planner {
    /// A window aggregation; `scalars` are the values of the scalar subqueries
    /// its SELECT list and HAVING read, joined with its output (which makes
    /// that updating, as in Flink).
    pub(super) fn plan_window_aggregate(
        &mut self,
        input: Rel,
        windowing: Windowing,
        group_by: &[SqlExpr],
        s: &Select,
        pos: Position,
        scalars: Vec<Rel>,
    ) -> Result<Rel, SqlError> {
        let Windowing { window, partition_by, attached } = windowing;
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
        let (items, having, aggs) = self.rewrite_aggregation(&keys, &input, s, Some(&window.kind), pos)?;
        // The aggregation's output schema.
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let wt = window.time_type(input.schema.as_arrow());
        let window_fields: Vec<Field> =
            WINDOW_COLUMNS.iter().zip([ts.clone(), ts, wt]).map(|(n, t)| Field::new(*n, t, false)).collect();
        let schema = aggregation_schema(window_fields, &keys, &key_exprs, &aggs, &input, pos)?;
        let rel = Rel {
            node: PlanNode::WindowAggregate { input: Box::new(input), window, keys: key_exprs, aggs, attached },
            schema,
            rowtime: Some(2),
            updating: false,
            unique_key: None,
        };
        self.finish_aggregation(rel, having, &items, pos, scalars)
    }

    /// Rewrites the SELECT list and HAVING of an aggregation over its output
    /// (keys by name, aggregate calls as `__aggN`) and plans its aggregate calls;
    /// `window` is the kind of a window aggregation's windows.
    fn rewrite_aggregation(
        &self,
        keys: &[(SqlExpr, String)],
        input: &Rel,
        s: &Select,
        window: Option<&WindowKind>,
        pos: Position,
    ) -> Result<Rewritten, SqlError> {
        let mut rw = AggRewriter { keys, calls: Vec::new(), error: None, fallback: pos, depth: 0 };
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
                        "SELECT * is not allowed in an aggregation; list the group keys and aggregates",
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
        let aggs = rw
            .calls
            .iter()
            .map(|call| {
                let a = self.plan_agg_call(call, &input.schema, pos)?;
                if let Some(kind) = window {
                    merged_windows_refuse(&a, kind, pos_of(call, pos))?;
                }
                Ok(a)
            })
            .collect::<Result<_, SqlError>>()?;
        Ok((items, having, aggs))
    }

    /// HAVING and the SELECT list over an aggregation's output, joined with
    /// the values of the scalar subqueries they read (`scalars`).
    fn finish_aggregation(
        &mut self,
        mut rel: Rel,
        having: Option<SqlExpr>,
        items: &[SelectItem],
        pos: Position,
        scalars: Vec<Rel>,
    ) -> Result<Rel, SqlError> {
        for scalar in scalars {
            rel = keyless_left_join(rel, scalar, pos)?;
        }
        let explain_missing = |e: SqlError| {
            if e.message.contains("No field named") {
                SqlError::new(
                    e.position,
                    format!("{}: in an aggregation, a column must be a GROUP BY key or inside an aggregate", e.message),
                )
            } else {
                e
            }
        };
        // HAVING's subquery conjuncts join the aggregation's rows, as in a WHERE.
        let (subqueries, nested, having) = take_subqueries(having.as_ref(), pos);
        rel = self.subquery_joins(rel, subqueries, Clause::Having).map_err(explain_missing)?;
        if let Some(h) = &having {
            rel = self.filter(rel, h, pos).map_err(explain_missing)?;
        }
        for c in &nested {
            rel = self.filter_with_subqueries(rel, c, Clause::Having, pos).map_err(explain_missing)?;
        }
        self.plan_projection(rel, items, pos).map_err(explain_missing)
    }

    /// A non-windowed `GROUP BY` (or a global aggregation): an updating result,
    /// keyed by the group keys. Output: keys..., aggregates...; `scalars` are
    /// the values of the scalar subqueries its SELECT list and HAVING read.
    pub(super) fn plan_group_aggregate(
        &mut self,
        input: Rel,
        group_by: &[SqlExpr],
        s: &Select,
        pos: Position,
        scalars: Vec<Rel>,
    ) -> Result<Rel, SqlError> {
        let mut keys: Vec<(SqlExpr, String)> = Vec::new();
        let mut key_exprs = Vec::new();
        for g in group_by {
            let planned = self.plan_expr(g, &input.schema, pos)?;
            let name = match &planned {
                Expr::Column(c) => c.name.clone(),
                _ => format!("__key{}", keys.len()),
            };
            keys.push((g.clone(), name));
            key_exprs.push(planned);
        }
        let (items, having, aggs) = self.rewrite_aggregation(&keys, &input, s, None, pos)?;
        let schema = aggregation_schema(Vec::new(), &keys, &key_exprs, &aggs, &input, pos)?;
        let nkeys = key_exprs.len();
        let rel = Rel {
            node: PlanNode::GroupAggregate { input: Box::new(input), keys: key_exprs, aggs, position: pos },
            schema,
            rowtime: None,
            updating: true,
            unique_key: Some((0..nkeys).collect()),
        };
        self.finish_aggregation(rel, having, &items, pos, scalars)
    }

    pub(super) fn plan_agg_call(
        &self,
        f: &ast::Function,
        schema: &DFSchema,
        pos: Position,
    ) -> Result<AggCall, SqlError> {
        let fpos = pos_of(f, pos);
        let name = f.name.to_string().to_ascii_uppercase();
        let func = match name.as_str() {
            "COUNT" => AggFunc::Count,
            "SUM" => AggFunc::Sum,
            "MIN" => AggFunc::Min,
            "MAX" => AggFunc::Max,
            "FIRST_VALUE" => AggFunc::FirstValue,
            "LAST_VALUE" => AggFunc::LastValue,
            "LISTAGG" => AggFunc::ListAgg,
            "STDDEV_POP" => AggFunc::StddevPop,
            "STDDEV_SAMP" | "STDDEV" => AggFunc::StddevSamp,
            "VAR_POP" => AggFunc::VarPop,
            "VAR_SAMP" | "VARIANCE" => AggFunc::VarSamp,
            _ => AggFunc::Avg,
        };
        let FunctionArguments::List(list) = &f.args else {
            return Err(SqlError::new(fpos, format!("{name} takes one argument")));
        };
        let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
        if distinct && func.is_variance() {
            return Err(SqlError::new(fpos, format!("{name}(DISTINCT ...) is not supported yet")));
        }
        if distinct && matches!(func, AggFunc::FirstValue | AggFunc::LastValue | AggFunc::ListAgg) {
            return Err(SqlError::new(
                fpos,
                format!("{name}(DISTINCT ...) is not supported; DISTINCT applies to COUNT, SUM, AVG, MIN and MAX"),
            ));
        }
        let (args, separator) = match (func, list.args.as_slice()) {
            (AggFunc::ListAgg, [a, ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(sep))]) => {
                let sep = match sep {
                    SqlExpr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) => s.clone(),
                        _ => return Err(listagg_separator(fpos)),
                    },
                    _ => return Err(listagg_separator(fpos)),
                };
                (std::slice::from_ref(a), Some(sep))
            }
            (AggFunc::ListAgg, args) => (args, Some(",".to_string())),
            (_, args) => (args, None),
        };
        let arg = match args {
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] if func == AggFunc::Count && !distinct => None,
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => {
                if contains_aggregate(e) {
                    return Err(SqlError::new(fpos, "aggregates cannot be nested"));
                }
                Some(self.plan_expr(e, schema, pos)?)
            }
            _ if func == AggFunc::ListAgg => {
                return Err(SqlError::new(fpos, "LISTAGG takes one or two arguments: LISTAGG(x [, 'separator'])"));
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
                // Flink adds in 32-bit floats, rounding at every step; Sluice's
                // sums of floating-point values are 64-bit.
                DataType::Float32 => {
                    return Err(SqlError::new(
                        fpos,
                        "SUM(FLOAT) is not supported yet (Flink rounds the sum to FLOAT at every row); use SUM(CAST(x AS DOUBLE))",
                    ));
                }
                DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
                other => return Err(bad(other)),
            },
            // Flink's CAST of the DOUBLE variance to the AVG type of the argument.
            (AggFunc::Avg | AggFunc::StddevPop | AggFunc::StddevSamp | AggFunc::VarPop | AggFunc::VarSamp, Some(t)) => {
                match t {
                    // AVG(FLOAT) is FLOAT: Flink sums in DOUBLE and narrows the quotient.
                    DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::Float32
                    | DataType::Float64 => t.clone(),
                    DataType::Decimal128(_, s) => DataType::Decimal128(38, (*s).max(6)),
                    other => return Err(bad(other)),
                }
            }
            (AggFunc::Min | AggFunc::Max | AggFunc::FirstValue | AggFunc::LastValue, Some(t)) => match t {
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(_, _)
                | DataType::Utf8
                | DataType::Boolean
                | DataType::Date32
                | DataType::Timestamp(_, _) => t.clone(),
                other => return Err(bad(other)),
            },
            // Flink: "Supported form(s): 'LISTAGG(<CHARACTER>)', 'LISTAGG(<CHARACTER>, <CHARACTER_LITERAL>)'".
            (AggFunc::ListAgg, Some(DataType::Utf8)) => DataType::Utf8,
            (AggFunc::ListAgg, Some(other)) => {
                return Err(SqlError::new(
                    fpos,
                    format!(
                        "LISTAGG does not accept {}, as in Flink (LISTAGG(<CHARACTER>) or LISTAGG(<CHARACTER>, <CHARACTER_LITERAL>)); CAST the argument to STRING",
                        flink_name(other)
                    ),
                ));
            }
        };
        Ok(AggCall { func, arg, distinct, filter, output_type, separator })
    }
}

fn listagg_separator(pos: Position) -> SqlError {
    SqlError::new(pos, "LISTAGG's separator must be a string literal, as in Flink (LISTAGG(x, ';'))")
}
