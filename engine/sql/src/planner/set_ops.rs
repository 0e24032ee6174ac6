//! UNION, INTERSECT and EXCEPT without ALL, as Flink plans them: UNION is the
//! distinct rows of a UNION ALL; INTERSECT and EXCEPT are the distinct rows of
//! a semi or anti join of the left input with the right one on every column
//! (`IS NOT DISTINCT FROM`: NULLs equal, Flink's `ReplaceIntersectWithSemiJoinRule`
//! and `ReplaceMinusWithAntiJoinRule`). All three are updating results (a
//! distinct aggregation); EXCEPT also retracts a row when the right input
//! catches up with it.
//!
//! A null-safe equality is keyed, so that the join runs in parallel: each
//! column pair becomes two keys, whether the value is NULL and the value with
//! NULL replaced by a constant of its type, which are equal exactly when the
//! values are not distinct.

use arrow::datatypes::DataType;
use datafusion_common::{Column, ScalarValue};
use datafusion_expr::{BinaryExpr, ExprSchemable, Operator};
use sqlparser::ast::SetOperator;

use super::join::join_schema;
use super::select::distinct_rows;
use super::{Planner, df_err, requalify};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{JoinKind, Rel};

/// A value of type `t` to stand for NULL in a null-safe key, if there is one.
fn stand_in(t: &DataType) -> Option<ScalarValue> {
    match t {
        DataType::Utf8 => Some(ScalarValue::Utf8(Some(String::new()))),
        DataType::LargeUtf8 => Some(ScalarValue::LargeUtf8(Some(String::new()))),
        DataType::Boolean => Some(ScalarValue::Boolean(Some(false))),
        t => ScalarValue::new_zero(t).ok(),
    }
}

impl Planner {
    /// `l op r` for UNION, INTERSECT or EXCEPT without ALL.
    pub(super) fn set_operation(&mut self, op: SetOperator, l: Rel, r: Rel, pos: Position) -> Result<Rel, SqlError> {
        let (nl, nr) = (l.schema.fields().len(), r.schema.fields().len());
        if nl != nr {
            return Err(SqlError::new(pos, format!("{op} inputs have {nl} and {nr} columns")));
        }
        let rel = match op {
            SetOperator::Union => self.union(l, r, pos)?,
            SetOperator::Intersect | SetOperator::Except => {
                let kind = if op == SetOperator::Intersect { JoinKind::Semi } else { JoinKind::Anti };
                self.null_safe_semi_anti(l, r, kind, &op.to_string(), pos)?
            }
            other => return Err(SqlError::new(pos, format!("{other} is not supported"))),
        };
        distinct_rows(rel, pos)
    }

    /// `l` semi- or anti-joined with `r` on every column, NULLs equal.
    fn null_safe_semi_anti(&self, l: Rel, r: Rel, kind: JoinKind, op: &str, pos: Position) -> Result<Rel, SqlError> {
        // Each input's columns under a name of its own, which cannot clash.
        let (l, r) = (requalify(l, "__left", pos)?, requalify(r, "__right", pos)?);
        let schema = join_schema(&l, &r, JoinKind::Inner, pos)?;
        let mut cond: Option<Expr> = None;
        let mut and = |e: Expr| cond = Some(cond.take().map_or(e.clone(), |c| c.and(e)));
        for (i, ((lq, lf), (rq, rf))) in l.schema.iter().zip(r.schema.iter()).enumerate() {
            let lc = Expr::Column(Column::new(lq.cloned(), lf.name()));
            let rc = Expr::Column(Column::new(rq.cloned(), rf.name()));
            let (lc, rc) = self
                .common_key(&lc, &rc, &l, &r, pos)
                .map_err(|e| SqlError::new(pos, format!("{op}: column {} of its inputs: {}", i + 1, e.message)))?;
            let t = lc.get_type(&l.schema).map_err(df_err(pos))?;
            let nullable = lf.is_nullable() || rf.is_nullable();
            match (nullable, stand_in(&t)) {
                (false, _) => and(lc.eq(rc)),
                (true, Some(v)) => {
                    let lit = |v: &ScalarValue| Expr::Literal(v.clone(), None);
                    let coalesce =
                        |c: Expr| datafusion_expr::when(c.clone().is_null(), lit(&v)).otherwise(c).map_err(df_err(pos));
                    and(lc.clone().is_null().eq(rc.clone().is_null()));
                    and(coalesce(lc)?.eq(coalesce(rc)?));
                }
                (true, None) => {
                    and(Expr::BinaryExpr(BinaryExpr::new(Box::new(lc), Operator::IsNotDistinctFrom, Box::new(rc))))
                }
            }
        }
        let cond = cond.unwrap_or(Expr::Literal(ScalarValue::Boolean(Some(true)), None));
        self.join_planned(l, r, kind, cond, schema, pos)
    }
}
