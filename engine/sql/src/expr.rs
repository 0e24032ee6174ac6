//! Scalar expressions: Flink SQL AST → DataFusion logical `Expr` → `PhysicalExpr`.
//!
//! Flink-only syntax is first rewritten in the AST (`FLOOR(ts TO MINUTE)`,
//! `EXTRACT` returning BIGINT, `MOD`, `IF`), then DataFusion's `SqlToRel` plans the
//! expression against the input schema, its analyzer's type coercion makes the
//! types line up, and casts to STRING are replaced by Flink's text formatting.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{DFSchema, TableReference};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::expr::ScalarFunction;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::{ContextProvider, ExprPlanner as DfExprPlanner, TypePlanner};
use datafusion_expr::{AggregateUDF, ExprSchemable, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};
use datafusion_optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion_physical_expr::PhysicalExpr;
use datafusion_sql::planner::{ParserOptions, PlannerContext, SqlToRel};
use sqlparser::ast::{
    self, BinaryOperator, CastKind, CeilFloorKind, DateTimeField, Expr as SqlExpr, Function, FunctionArg,
    FunctionArgExpr, FunctionArguments, Ident, Value, ValueWithSpan, VisitorMut,
};

use crate::error::{LowerError, Position, SqlError};
use crate::functions::{self, TO_STRING};
use crate::parser::expr_position;

pub use datafusion_expr::Expr;

/// Plans scalar expressions for one job (one session time zone).
pub struct ExprPlanner {
    provider: Provider,
}

#[derive(Debug)]
struct Provider {
    udfs: HashMap<String, Arc<ScalarUDF>>,
    options: ConfigOptions,
    expr_planners: Vec<Arc<dyn DfExprPlanner>>,
    types: Arc<dyn TypePlanner>,
}

#[derive(Debug)]
struct FlinkTypes {
    tz: String,
}

impl TypePlanner for FlinkTypes {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> datafusion_common::Result<Option<FieldRef>> {
        crate::types::to_arrow(sql_type, &self.tz)
            .map(|t| Some(Arc::new(arrow::datatypes::Field::new("", t, true))))
            .map_err(|e| datafusion_common::DataFusionError::Plan(e.to_string()))
    }
}

impl ContextProvider for Provider {
    fn get_table_source(&self, name: TableReference) -> datafusion_common::Result<Arc<dyn TableSource>> {
        Err(datafusion_common::DataFusionError::Plan(format!(
            "a subquery here is not supported (it reads {name}): Sluice plans `k [NOT] IN (SELECT ...)` and `[NOT] EXISTS (SELECT ...)` in the condition of a WHERE or a HAVING (also under OR and NOT), and scalar subqueries `(SELECT ...)` as values in a WHERE, a SELECT list or a HAVING; not IN or EXISTS as a value of a SELECT list, and no subquery in ON or inside another subquery's SELECT list or condition"
        )))
    }
    fn get_expr_planners(&self) -> &[Arc<dyn DfExprPlanner>] {
        &self.expr_planners
    }
    fn get_type_planner(&self) -> Option<Arc<dyn TypePlanner>> {
        Some(self.types.clone())
    }
    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.udfs.get(&name.to_ascii_lowercase()).cloned()
    }
    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }
    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }
    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }
    fn get_variable_type(&self, _names: &[String]) -> Option<DataType> {
        None
    }
    fn options(&self) -> &ConfigOptions {
        &self.options
    }
    fn udf_names(&self) -> Vec<String> {
        self.udfs.keys().cloned().collect()
    }
    fn higher_order_function_names(&self) -> Vec<String> {
        vec![]
    }
    fn udaf_names(&self) -> Vec<String> {
        vec![]
    }
    fn udwf_names(&self) -> Vec<String> {
        vec![]
    }
}

/// Flink's `ARRAY[a, b, ...]` value constructor (DataFusion's `make_array`).
#[derive(Debug)]
struct ArrayConstructor;

impl DfExprPlanner for ArrayConstructor {
    fn plan_array_literal(
        &self,
        exprs: Vec<Expr>,
        _schema: &DFSchema,
    ) -> datafusion_common::Result<datafusion_expr::planner::PlannerResult<Vec<Expr>>> {
        Ok(datafusion_expr::planner::PlannerResult::Planned(datafusion_functions_nested::make_array::make_array(exprs)))
    }
}

/// `map[key]` with a key that is not a constant, which DataFusion's
/// `get_field` cannot look up: the first value `map_extract` finds (NULL for
/// a missing key). Constant keys are left to DataFusion's field access.
#[derive(Debug)]
struct MapAccess;

impl DfExprPlanner for MapAccess {
    fn plan_field_access(
        &self,
        access: datafusion_expr::planner::RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> datafusion_common::Result<datafusion_expr::planner::PlannerResult<datafusion_expr::planner::RawFieldAccessExpr>>
    {
        use datafusion_expr::GetFieldAccess;
        use datafusion_expr::planner::{PlannerResult, RawFieldAccessExpr};
        let RawFieldAccessExpr { expr, field_access } = access;
        match field_access {
            GetFieldAccess::ListIndex { key }
                if !matches!(key.as_ref(), Expr::Literal(..))
                    && matches!(expr.get_type(schema)?, DataType::Map(_, _)) =>
            {
                let found = datafusion_functions_nested::map_extract::map_extract(expr, *key);
                Ok(PlannerResult::Planned(datafusion_functions_nested::extract::array_element(
                    found,
                    Expr::Literal(datafusion_common::ScalarValue::Int64(Some(1)), None),
                )))
            }
            field_access => Ok(PlannerResult::Original(RawFieldAccessExpr { expr, field_access })),
        }
    }
}

/// Names of the aggregate functions Sluice implements.
pub const AGGREGATES: [&str; 14] = [
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "FIRST_VALUE",
    "LAST_VALUE",
    "LISTAGG",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "STDDEV",
    "VAR_POP",
    "VAR_SAMP",
    "VARIANCE",
];

impl ExprPlanner {
    pub fn new(local_time_zone: &str) -> Self {
        let mut udfs = HashMap::new();
        for f in datafusion_functions::all_default_functions().into_iter() {
            for alias in f.aliases() {
                udfs.insert(alias.to_ascii_lowercase(), f.clone());
            }
            udfs.insert(f.name().to_ascii_lowercase(), f);
        }
        // CARDINALITY(ARRAY or MAP); its BIGINT result is cast to Flink's INT.
        let cardinality = datafusion_functions_nested::cardinality::cardinality_udf();
        udfs.insert(cardinality.name().to_ascii_lowercase(), cardinality);
        for f in functions::flink_functions(local_time_zone) {
            udfs.insert(f.name().to_ascii_lowercase(), f);
        }
        // `MAP[k1, v1, ...]`, which the dialect parses into a call of this name.
        udfs.insert(crate::map_value::MAP_VALUE_CALL.to_string(), crate::map_value::map_value_udf());
        let mut options = ConfigOptions::default();
        options.execution.time_zone = Some(local_time_zone.to_string());
        let expr_planners: Vec<Arc<dyn DfExprPlanner>> = vec![
            Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
            Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
            Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
            // `arr[i]` (1-based, NULL out of range) and `map[key]`.
            Arc::new(MapAccess),
            Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
            Arc::new(ArrayConstructor),
        ];
        ExprPlanner {
            provider: Provider {
                udfs,
                options,
                expr_planners,
                types: Arc::new(FlinkTypes { tz: local_time_zone.to_string() }),
            },
        }
    }

    /// Plans `e` against `schema`: a typed, coerced DataFusion expression.
    pub fn plan(&self, e: &SqlExpr, schema: &DFSchema, fallback: Position) -> Result<Expr, SqlError> {
        let pos = expr_position(e, fallback);
        reject_window_calls(e, pos)?;
        let mut e = e.clone();
        rewrite_flink_syntax(&mut e, pos)?;
        let opts = ParserOptions {
            parse_float_as_decimal: true,
            enable_ident_normalization: false,
            support_varchar_with_length: true,
            enable_options_value_normalization: false,
            collect_spans: false,
            map_string_types_to_utf8view: false,
            default_null_ordering: datafusion_sql::planner::NullOrdering::NullsMax,
        };
        let s2r = SqlToRel::new_with_options(&self.provider, opts);
        let planned = s2r
            .sql_to_expr(e, schema, &mut PlannerContext::new())
            .map_err(|err| SqlError::new(pos, clean_df_error(&err.to_string())))?;
        let coerced = planned
            .rewrite(&mut TypeCoercionRewriter::new(schema))
            .map_err(|err| SqlError::new(pos, clean_df_error(&err.to_string())))?
            .data;
        let fixed =
            self.flink_casts(coerced, schema).map_err(|err| SqlError::new(pos, clean_df_error(&err.to_string())))?;
        // Simplification also rewrites functions that have no physical form
        // (COALESCE, NVL) and folds constants.
        let ctx = datafusion_expr::simplify::SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .with_config_options(Arc::new(self.provider.options.clone()))
            .build();
        let simplified = datafusion_optimizer::simplify_expressions::ExprSimplifier::new(ctx)
            .simplify(fixed)
            .map_err(|err| SqlError::new(pos, clean_df_error(&err.to_string())))?;
        simplified.get_type(schema).map_err(|err| SqlError::new(pos, clean_df_error(&err.to_string())))?;
        Ok(simplified)
    }

    /// Replaces casts to STRING with Flink's formatting function, and gives
    /// CARDINALITY Flink's INT type.
    fn flink_casts(&self, e: Expr, schema: &DFSchema) -> datafusion_common::Result<Expr> {
        let to_string = self.provider.udfs.get(TO_STRING).cloned();
        Ok(e.transform_up(|e| {
            if let Expr::ScalarFunction(f) = &e
                && f.func.name() == "cardinality"
            {
                return Ok(Transformed::yes(datafusion_expr::cast(e, DataType::Int32)));
            }
            let (inner, target) = match &e {
                Expr::Cast(c) => (&c.expr, c.field.data_type().clone()),
                Expr::TryCast(c) => (&c.expr, c.field.data_type().clone()),
                _ => return Ok(Transformed::no(e)),
            };
            let needs = target == DataType::Utf8
                && matches!(
                    inner.get_type(schema)?,
                    DataType::Timestamp(_, _) | DataType::Float64 | DataType::Float32 | DataType::Boolean
                );
            match (&to_string, needs) {
                (Some(f), true) => Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    f.clone(),
                    vec![(**inner).clone()],
                )))),
                _ => Ok(Transformed::no(e)),
            }
        })?
        .data)
    }
}

/// Makes DataFusion's error text read as a Sluice message.
fn clean_df_error(s: &str) -> String {
    // A function's own reason, without DataFusion's wrapping of it.
    const COERCION: &str = "coercion failed with: ";
    let s = s.find(COERCION).map_or(s, |i| &s[i + COERCION.len()..]);
    let s = s
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .trim_start_matches("This feature is not implemented: ");
    let s = s.split("\nValid fields are").next().unwrap_or(s);
    let s = s.split(". Valid fields are").next().unwrap_or(s);
    s.replace("Utf8", "STRING").replace("Int64", "BIGINT").replace("Int32", "INT").replace("Float64", "DOUBLE")
}

/// The indices in `schema` of the columns the expressions read; `None` when
/// one of them is not in `schema`.
pub fn column_indices<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
    schema: &DFSchema,
) -> Option<std::collections::BTreeSet<usize>> {
    let mut out = std::collections::BTreeSet::new();
    for e in exprs {
        for c in e.column_refs() {
            out.insert(schema.index_of_column(c).ok()?);
        }
    }
    Some(out)
}

/// Lowers a planned expression to a physical one over `schema`.
pub fn physical(e: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>, LowerError> {
    let props = ExecutionProps::new();
    Ok(datafusion_physical_expr::create_physical_expr(e, schema, &props, &PhysicalPlanningContext::default())?)
}

fn func(name: &str, args: Vec<SqlExpr>) -> SqlExpr {
    crate::dialect::call(Ident::new(name), args)
}

fn string_lit(s: &str) -> SqlExpr {
    SqlExpr::Value(ValueWithSpan::from(Value::SingleQuotedString(s.to_string())))
}

fn unit_name(f: &DateTimeField) -> Option<&'static str> {
    Some(match f {
        DateTimeField::Year | DateTimeField::Years => "year",
        DateTimeField::Quarter => "quarter",
        DateTimeField::Month | DateTimeField::Months => "month",
        DateTimeField::Week(_) | DateTimeField::Weeks => "week",
        DateTimeField::Day | DateTimeField::Days => "day",
        DateTimeField::Hour | DateTimeField::Hours => "hour",
        DateTimeField::Minute | DateTimeField::Minutes => "minute",
        DateTimeField::Second | DateTimeField::Seconds => "second",
        _ => return None,
    })
}

/// The field Flink's one-argument time unit functions (`HOUR(ts)`, ...) extract.
fn time_unit_function(name: &str) -> Option<DateTimeField> {
    Some(match name {
        "YEAR" => DateTimeField::Year,
        "QUARTER" => DateTimeField::Quarter,
        "MONTH" => DateTimeField::Month,
        "WEEK" => DateTimeField::Week(None),
        "DAYOFYEAR" => DateTimeField::Doy,
        "DAYOFMONTH" => DateTimeField::Day,
        "HOUR" => DateTimeField::Hour,
        "MINUTE" => DateTimeField::Minute,
        "SECOND" => DateTimeField::Second,
        _ => return None,
    })
}

/// Function arguments as plain expressions.
pub fn plain_args(f: &Function) -> Vec<SqlExpr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                FunctionArg::Named { arg: FunctionArgExpr::Expr(e), .. } => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

struct FlinkSyntax {
    error: Option<SqlError>,
    fallback: Position,
}

impl VisitorMut for FlinkSyntax {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        let pos = expr_position(e, self.fallback);
        let replacement = match e {
            SqlExpr::Floor { expr, field: CeilFloorKind::DateTimeField(f) } if *f != DateTimeField::NoDateTime => {
                match unit_name(f) {
                    Some(u) => Some(func("date_trunc", vec![string_lit(u), (**expr).clone()])),
                    None => {
                        self.error = Some(SqlError::new(pos, format!("FLOOR(... TO {f}) is not supported")));
                        return ControlFlow::Break(());
                    }
                }
            }
            SqlExpr::Ceil { expr, field: CeilFloorKind::DateTimeField(f) } if *f != DateTimeField::NoDateTime => {
                match unit_name(f) {
                    Some(u) => {
                        let trunc = func("date_trunc", vec![string_lit(u), (**expr).clone()]);
                        let next = SqlExpr::BinaryOp {
                            left: Box::new(trunc.clone()),
                            op: BinaryOperator::Plus,
                            right: Box::new(SqlExpr::Interval(ast::Interval {
                                value: Box::new(string_lit("1")),
                                leading_field: Some(f.clone()),
                                leading_precision: None,
                                last_field: None,
                                fractional_seconds_precision: None,
                            })),
                        };
                        Some(SqlExpr::Case {
                            case_token: ast::helpers::attached_token::AttachedToken::empty(),
                            end_token: ast::helpers::attached_token::AttachedToken::empty(),
                            operand: None,
                            conditions: vec![ast::CaseWhen {
                                condition: SqlExpr::BinaryOp {
                                    left: Box::new(trunc.clone()),
                                    op: BinaryOperator::Eq,
                                    right: expr.clone(),
                                },
                                result: trunc,
                            }],
                            else_result: Some(Box::new(next)),
                        })
                    }
                    None => {
                        self.error = Some(SqlError::new(pos, format!("CEIL(... TO {f}) is not supported")));
                        return ControlFlow::Break(());
                    }
                }
            }
            // `3.0e0` is a DOUBLE in Flink; plain decimals stay DECIMAL.
            SqlExpr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.contains(['e', 'E'])) => {
                Some(SqlExpr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(e.clone()),
                    data_type: ast::DataType::Double(ast::ExactNumberInfo::None),
                    array: false,
                    format: None,
                })
            }
            // LOCALTIMESTAMP, written without parentheses, parses as a name.
            SqlExpr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("LOCALTIMESTAMP") => {
                Some(func(functions::LOCALTIMESTAMP, vec![]))
            }
            SqlExpr::Extract { .. } => Some(SqlExpr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(SqlExpr::Nested(Box::new(e.clone()))),
                data_type: ast::DataType::BigInt(None),
                array: false,
                format: None,
            }),
            SqlExpr::Function(f) if functions::rewrite_json_call(f).is_some() => {
                match functions::rewrite_json_call(f) {
                    Some(Err(msg)) => {
                        self.error = Some(SqlError::new(pos, msg));
                        return ControlFlow::Break(());
                    }
                    rewritten => rewritten.and_then(Result::ok),
                }
            }
            SqlExpr::Function(f) => {
                let name = f.name.to_string().to_ascii_uppercase();
                let args = plain_args(f);
                match (name.as_str(), args.len()) {
                    ("MOD", 2) => Some(SqlExpr::BinaryOp {
                        left: Box::new(SqlExpr::Nested(Box::new(args[0].clone()))),
                        op: BinaryOperator::Modulo,
                        right: Box::new(SqlExpr::Nested(Box::new(args[1].clone()))),
                    }),
                    // HOUR(ts) and friends: EXTRACT(unit FROM ts), a BIGINT.
                    (n, 1) if time_unit_function(n).is_some() => time_unit_function(n).map(|field| SqlExpr::Cast {
                        kind: CastKind::Cast,
                        expr: Box::new(SqlExpr::Nested(Box::new(SqlExpr::Extract {
                            field,
                            syntax: ast::ExtractSyntax::From,
                            expr: Box::new(args[0].clone()),
                        }))),
                        data_type: ast::DataType::BigInt(None),
                        array: false,
                        format: None,
                    }),
                    // The unit is a bare word: the function takes it as a string.
                    ("TIMESTAMPDIFF" | "TIMESTAMPADD", 3) => match &args[0] {
                        SqlExpr::Identifier(unit) => Some(func(
                            &name.to_ascii_lowercase(),
                            vec![string_lit(&unit.value), args[1].clone(), args[2].clone()],
                        )),
                        _ => None,
                    },
                    ("IF", 3) => Some(SqlExpr::Case {
                        case_token: ast::helpers::attached_token::AttachedToken::empty(),
                        end_token: ast::helpers::attached_token::AttachedToken::empty(),
                        operand: None,
                        conditions: vec![ast::CaseWhen { condition: args[0].clone(), result: args[1].clone() }],
                        else_result: Some(Box::new(args[2].clone())),
                    }),
                    (n, _) if AGGREGATES.contains(&n) => {
                        self.error = Some(SqlError::new(
                            pos,
                            format!(
                                "aggregate {n} is not allowed here: aggregates belong in the SELECT list or HAVING of a window aggregation (GROUP BY window_start, window_end)"
                            ),
                        ));
                        return ControlFlow::Break(());
                    }
                    (n, _) if n == crate::dialect::TABLE_ARG_FUNCTION.to_ascii_uppercase() => {
                        self.error = Some(SqlError::new(
                            pos,
                            "TABLE arguments are only allowed in window TVFs (TUMBLE, HOP, CUMULATE, SESSION) in FROM",
                        ));
                        return ControlFlow::Break(());
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(r) = replacement {
            *e = r;
        }
        ControlFlow::Continue(())
    }
}

/// Window functions (`f(...) OVER (...)`) are planned by the planner (Top-N, OVER aggregation),
/// never as scalar expressions: one anywhere else is an error here, so that
/// DataFusion's "no functions registered" never reaches the user.
fn reject_window_calls(e: &SqlExpr, fallback: Position) -> Result<(), SqlError> {
    let mut err = None;
    let _ = sqlparser::ast::visit_expressions(e, |x| {
        if let SqlExpr::Function(f) = x
            && f.over.is_some()
        {
            err = Some(SqlError::new(
                expr_position(x, fallback),
                format!(
                    "{}(...) OVER (...) is only supported in a SELECT list: as an OVER aggregation (SUM(x) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 10 PRECEDING AND CURRENT ROW)), or in a Top-N (ROW_NUMBER() OVER (PARTITION BY k ORDER BY c DESC) AS rn, read by a query with WHERE rn <= N)",
                    f.name.to_string().to_ascii_uppercase()
                ),
            ));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn rewrite_flink_syntax(e: &mut SqlExpr, fallback: Position) -> Result<(), SqlError> {
    let mut v = FlinkSyntax { error: None, fallback };
    let _ = sqlparser::ast::VisitMut::visit(e, &mut v);
    match v.error {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
