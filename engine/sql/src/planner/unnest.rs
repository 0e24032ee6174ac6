//! `UNNEST` in FROM, correlated with the relation on its left (Flink's
//! correlate with UNNEST): `t CROSS JOIN UNNEST(t.arr) AS u(x)`,
//! `t, UNNEST(t.arr) AS u(x)`, `t [INNER] JOIN UNNEST(...) ON TRUE` and
//! `t LEFT JOIN UNNEST(...) AS u(x) ON TRUE`, of an ARRAY (one column, the
//! element) or a MAP (two, the key and the value), optionally `WITH
//! ORDINALITY` (a last INT column, the 1-based position).
//!
//! The result is a [`PlanNode::Unnest`]: the left relation's columns (with
//! their qualifiers, time attribute and changelog kind), then the new columns
//! qualified by the alias. Default names are Calcite's: `EXPR$0` for an
//! element, `KEY` and `VALUE` for a map, `ORDINALITY`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion_common::{DFSchema, TableReference};
use datafusion_expr::ExprSchemable;
use sqlparser::ast::{Expr as SqlExpr, FunctionArg, FunctionArgExpr, JoinConstraint, JoinOperator, TableFactor, Value};

use super::{Planner, df_err};
use crate::error::{Position, SqlError};
use crate::logical::{PlanNode, Rel};
use crate::parser::{expr_position, object_name};
use crate::types::{flink_name, map_entries};

/// An `UNNEST(...)` FROM item in sqlparser's UNNEST form. The Flink dialect
/// reads `UNNEST(e) [WITH ORDINALITY] [AS t(...)]` as a table function
/// named UNNEST.
pub(super) fn as_unnest(f: &TableFactor) -> Option<TableFactor> {
    match f {
        TableFactor::UNNEST { .. } => Some(f.clone()),
        TableFactor::Table { name, args: Some(args), alias, with_ordinality, version: None, .. }
            if object_name(name).eq_ignore_ascii_case("UNNEST") =>
        {
            let array_exprs = args
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some(TableFactor::UNNEST {
                alias: alias.clone(),
                array_exprs,
                with_offset: false,
                with_offset_alias: None,
                with_ordinality: *with_ordinality,
            })
        }
        _ => None,
    }
}

/// Why an UNNEST that does not follow a FROM item is refused.
pub(super) const UNCORRELATED: &str = "UNNEST must follow the relation whose column it unnests, as in `FROM t CROSS JOIN UNNEST(t.arr) AS u(x)`; UNNEST alone in FROM (as `FROM UNNEST(ARRAY[1, 2])`) is not supported yet";

const FORMS: &str = "UNNEST is supported as `CROSS JOIN UNNEST(...)`, `, UNNEST(...)`, `[INNER] JOIN UNNEST(...) ON TRUE` and `LEFT JOIN UNNEST(...) ON TRUE`";

impl Planner {
    /// `left` joined with an UNNEST by `op` (a JOIN of a FROM item).
    pub(super) fn unnest_join(
        &self,
        left: Rel,
        op: &JoinOperator,
        factor: &TableFactor,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let on_true = |c: &JoinConstraint| match c {
            JoinConstraint::On(SqlExpr::Value(v)) => matches!(v.value, Value::Boolean(true)),
            _ => false,
        };
        let outer = match op {
            JoinOperator::CrossJoin(JoinConstraint::None) => false,
            JoinOperator::Join(c) | JoinOperator::Inner(c) if on_true(c) => false,
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) if on_true(c) => true,
            JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
                let at = match c {
                    JoinConstraint::On(e) => expr_position(e, pos),
                    _ => pos,
                };
                return Err(SqlError::new(
                    at,
                    format!("a join with UNNEST must be ON TRUE; filter the unnested rows in WHERE instead. {FORMS}"),
                ));
            }
            _ => return Err(SqlError::new(pos, format!("this join with UNNEST is not supported; {FORMS}"))),
        };
        self.unnest(left, factor, outer, pos)
    }

    /// `left` with each row repeated per element of an UNNEST's collection.
    pub(super) fn unnest(&self, left: Rel, factor: &TableFactor, outer: bool, pos: Position) -> Result<Rel, SqlError> {
        let TableFactor::UNNEST { alias, array_exprs, with_offset, with_ordinality, .. } = factor else {
            return Err(SqlError::new(pos, "expected UNNEST(...)"));
        };
        if *with_offset {
            return Err(SqlError::new(pos, "UNNEST ... WITH OFFSET is not Flink SQL; use WITH ORDINALITY"));
        }
        let [arg] = array_exprs.as_slice() else {
            return Err(SqlError::new(
                pos,
                "UNNEST of several collections is not supported (Flink 2.3 fails to plan it too); unnest one ARRAY or MAP per UNNEST: `CROSS JOIN UNNEST(t.a) AS u(x) CROSS JOIN UNNEST(t.b) AS v(y)`",
            ));
        };
        let arg_pos = expr_position(arg, pos);
        let expr = self.plan_expr(arg, &left.schema, arg_pos)?;
        let t = expr.get_type(&left.schema).map_err(df_err(arg_pos))?;
        let mut fields: Vec<Field> = match &t {
            DataType::List(f) => vec![Field::new("EXPR$0", f.data_type().clone(), true)],
            other => match map_entries(other) {
                Some((k, v)) => {
                    vec![
                        Field::new("KEY", k.data_type().clone(), outer),
                        Field::new("VALUE", v.data_type().clone(), true),
                    ]
                }
                None => {
                    return Err(SqlError::new(
                        arg_pos,
                        format!("UNNEST needs an ARRAY or a MAP, not {}", flink_name(other)),
                    ));
                }
            },
        };
        if *with_ordinality {
            fields.push(Field::new("ORDINALITY", DataType::Int32, outer));
        }
        let qualifier = alias.as_ref().map(|a| a.name.value.clone());
        if let Some(a) = alias.as_ref().filter(|a| !a.columns.is_empty()) {
            if a.columns.len() != fields.len() {
                return Err(SqlError::new(
                    pos,
                    format!(
                        "UNNEST of {} gives {} columns but `{}` names {}",
                        flink_name(&t),
                        fields.len(),
                        a.name.value,
                        a.columns.len()
                    ),
                ));
            }
            for (f, c) in fields.iter_mut().zip(&a.columns) {
                *f = f.clone().with_name(c.name.value.clone());
            }
        }
        let mut qualified: Vec<(Option<TableReference>, Arc<Field>)> =
            left.schema.iter().map(|(q, f)| (q.cloned(), f.clone())).collect();
        qualified.extend(fields.into_iter().map(|f| (qualifier.as_deref().map(TableReference::bare), Arc::new(f))));
        let schema = DFSchema::new_with_metadata(qualified, HashMap::new())
            .map_err(|e| SqlError::new(pos, format!("{e}; give the UNNEST columns distinct names with AS t(...)")))?;
        let (rowtime, updating) = (left.rowtime, left.updating);
        Ok(Rel {
            node: PlanNode::Unnest { input: Box::new(left), expr, ordinality: *with_ordinality, outer },
            schema: Arc::new(schema),
            rowtime,
            updating,
            unique_key: None,
        })
    }
}
