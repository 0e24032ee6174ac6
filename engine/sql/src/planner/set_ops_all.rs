//! INTERSECT ALL and EXCEPT ALL, as Flink's `RewriteIntersectAllRule` and
//! `RewriteMinusAllRule` plan them: the rows of both inputs in one UNION ALL,
//! each tagged with the side it comes from, counted per distinct row (a
//! GROUP BY on every column, so NULLs are equal), then each row repeated as
//! often as the set operation keeps it (Flink's `ReplicateRows` table function):
//!
//! - INTERSECT ALL: tags `TRUE`/NULL per side, `COUNT` of each tag, rows with
//!   both counts at least 1, repeated `min(left, right)` times;
//! - EXCEPT ALL: a tag of `1` on the left and `-1` on the right, their `SUM`,
//!   rows whose sum is positive, repeated `left - right` times.
//!
//! The repetition is an UNNEST of `array_repeat(TRUE, n)`: stateless, each copy
//! keeps its row's kind, so when a row's counts change the aggregation's
//! retraction of the old count retracts each old copy and its new count emits
//! the new copies, as Flink's correlate does. The result is updating.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion_common::{Column, DFSchema, ScalarValue};
use datafusion_expr::{ExprSchemable, lit, when};
use sqlparser::ast::SetOperator;

use super::{Planner, df_err, project};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{AggCall, AggFunc, PlanNode, Rel};

/// The per-row tags of each input, and how the tags are aggregated.
struct Tagging {
    left: Vec<Expr>,
    right: Vec<Expr>,
    aggs: Vec<AggFunc>,
}

fn tagging(op: SetOperator) -> Option<Tagging> {
    let null = || lit(ScalarValue::Boolean(None));
    match op {
        SetOperator::Intersect => Some(Tagging {
            left: vec![lit(true), null()],
            right: vec![null(), lit(true)],
            aggs: vec![AggFunc::Count, AggFunc::Count],
        }),
        SetOperator::Except => {
            Some(Tagging { left: vec![lit(1i64)], right: vec![lit(-1i64)], aggs: vec![AggFunc::Sum] })
        }
        _ => None,
    }
}

/// Over the aggregated tags (`counts`, as columns): whether a row is kept at
/// all, and how many copies of it are.
fn keep_and_copies(op: SetOperator, counts: &[Expr]) -> Option<(Expr, Expr)> {
    match (op, counts) {
        (SetOperator::Intersect, [l, r]) => Some((
            l.clone().gt_eq(lit(1i64)).and(r.clone().gt_eq(lit(1i64))),
            when(l.clone().gt(r.clone()), r.clone()).otherwise(l.clone()).ok()?,
        )),
        (SetOperator::Except, [sum]) => Some((sum.clone().gt(lit(0i64)), sum.clone())),
        _ => None,
    }
}

fn column(schema: &DFSchema, i: usize) -> Expr {
    Expr::Column(Column::from(schema.qualified_field(i)))
}

impl Planner {
    /// `l op ALL r` for INTERSECT or EXCEPT.
    pub(super) fn set_operation_all(
        &mut self,
        op: SetOperator,
        l: Rel,
        r: Rel,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let (nl, nr) = (l.schema.fields().len(), r.schema.fields().len());
        if nl != nr {
            return Err(SqlError::new(pos, format!("{op} ALL inputs have {nl} and {nr} columns")));
        }
        let Some(tags) = tagging(op) else {
            return Err(SqlError::new(pos, format!("{op} ALL is not supported")));
        };
        let names: Vec<String> = l.schema.fields().iter().map(|f| f.name().clone()).collect();
        let tag = |rel: Rel, tags: &[Expr]| {
            let mut exprs: Vec<(Expr, String)> = (0..nl).map(|i| (column(&rel.schema, i), names[i].clone())).collect();
            exprs.extend(tags.iter().enumerate().map(|(i, t)| (t.clone(), format!("__tag{i}"))));
            project(rel, exprs, pos)
        };
        let union = self.union(tag(l, &tags.left)?, tag(r, &tags.right)?, pos)?;
        let keys: Vec<Expr> = (0..nl).map(|i| column(&union.schema, i)).collect();
        let aggs: Vec<AggCall> = tags
            .aggs
            .iter()
            .enumerate()
            .map(|(i, func)| AggCall {
                func: *func,
                arg: Some(column(&union.schema, nl + i)),
                distinct: false,
                filter: None,
                output_type: DataType::Int64,
                separator: None,
            })
            .collect();
        let mut fields: Vec<(Option<datafusion_common::TableReference>, Arc<Field>)> =
            union.schema.fields().iter().take(nl).map(|f| (None, f.clone())).collect();
        for (i, a) in aggs.iter().enumerate() {
            fields.push((None, Arc::new(Field::new(format!("__count{i}"), DataType::Int64, a.func != AggFunc::Count))));
        }
        let schema = Arc::new(DFSchema::new_with_metadata(fields, HashMap::new()).map_err(df_err(pos))?);
        let counted = Rel {
            node: PlanNode::GroupAggregate { input: Box::new(union), keys, aggs, position: pos },
            schema,
            rowtime: None,
            updating: true,
            unique_key: Some((0..nl).collect()),
        };
        let counts: Vec<Expr> = (nl..counted.schema.fields().len()).map(|i| column(&counted.schema, i)).collect();
        let Some((keep, copies)) = keep_and_copies(op, &counts) else {
            return Err(SqlError::new(pos, format!("{op} ALL is not supported")));
        };
        let kept = Rel {
            schema: counted.schema.clone(),
            rowtime: None,
            updating: true,
            unique_key: counted.unique_key.clone(),
            node: PlanNode::Filter { input: Box::new(counted), predicate: keep },
        };
        let mut exprs: Vec<(Expr, String)> = (0..nl).map(|i| (column(&kept.schema, i), names[i].clone())).collect();
        exprs.push((copies, "__copies".into()));
        let with_copies = project(kept, exprs, pos)?;
        let replicated = replicate(with_copies, pos)?;
        let exprs: Vec<(Expr, String)> = (0..nl).map(|i| (column(&replicated.schema, i), names[i].clone())).collect();
        project(replicated, exprs, pos)
    }
}

/// Each row of `rel`, whose last column is a BIGINT count, repeated that many
/// times (none when it is NULL or not positive): Flink's `ReplicateRows`.
/// Output: `rel`'s columns, then a BOOLEAN column to drop.
fn replicate(rel: Rel, pos: Position) -> Result<Rel, SqlError> {
    let n = rel.schema.fields().len();
    let count = column(&rel.schema, n - 1);
    let expr = datafusion_functions_nested::repeat::array_repeat(lit(true), count);
    expr.get_type(&rel.schema).map_err(df_err(pos))?;
    let mut fields: Vec<(Option<datafusion_common::TableReference>, Arc<Field>)> =
        rel.schema.iter().map(|(q, f)| (q.cloned(), f.clone())).collect();
    fields.push((None, Arc::new(Field::new("__copy", DataType::Boolean, true))));
    let schema = Arc::new(DFSchema::new_with_metadata(fields, HashMap::new()).map_err(df_err(pos))?);
    Ok(Rel {
        node: PlanNode::Unnest { input: Box::new(rel), expr, ordinality: false, outer: false },
        schema,
        rowtime: None,
        updating: true,
        unique_key: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
    use arrow::datatypes::{Int64Type, Schema};

    use super::*;

    /// How many copies of a row `op` keeps for each row of aggregated tags
    /// (NULL: the row is not kept).
    fn copies(op: SetOperator, counts: &[Vec<Option<i64>>]) -> Vec<Option<i64>> {
        let fields: Vec<Field> =
            (0..counts.len()).map(|i| Field::new(format!("c{i}"), DataType::Int64, true)).collect();
        let schema = Arc::new(Schema::new(fields));
        let columns = counts.iter().map(|c| Arc::new(Int64Array::from(c.clone())) as _).collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let df = DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let exprs: Vec<Expr> = (0..counts.len()).map(|i| column(&df, i)).collect();
        let (keep, n) = keep_and_copies(op, &exprs).unwrap();
        let eval = |e: &Expr| {
            crate::expr::physical(e, &df).unwrap().evaluate(&batch).unwrap().into_array(batch.num_rows()).unwrap()
        };
        let (keep, n) = (eval(&keep), eval(&n));
        let (keep, n) = (keep.as_boolean(), n.as_primitive::<Int64Type>());
        (0..batch.num_rows()).map(|r| (keep.is_valid(r) && keep.value(r)).then(|| n.value(r))).collect()
    }

    #[test]
    fn intersect_all_keeps_the_smaller_count_of_rows_on_both_sides() {
        let (left, right) =
            (vec![Some(1), Some(3), Some(2), Some(0), Some(4)], vec![Some(1), Some(2), Some(5), Some(3), Some(0)]);
        assert_eq!(copies(SetOperator::Intersect, &[left, right]), [Some(1), Some(2), Some(2), None, None]);
    }

    #[test]
    fn except_all_keeps_what_the_left_side_has_more_of() {
        // The tags' sum: left count minus right count; NULL for no rows.
        let sum = vec![Some(3), Some(1), Some(0), Some(-2), None];
        assert_eq!(copies(SetOperator::Except, &[sum]), [Some(3), Some(1), None, None, None]);
    }

    #[test]
    fn union_has_no_all_rewrite_here() {
        assert!(tagging(SetOperator::Union).is_none());
        assert!(keep_and_copies(SetOperator::Union, &[]).is_none());
    }
}
