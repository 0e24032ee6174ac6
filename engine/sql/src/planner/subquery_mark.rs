//! `IN` and `EXISTS` subqueries inside a condition, not conjuncts of their own
//! (under OR or NOT, in a CASE), in a WHERE or a HAVING, as Calcite's
//! `SubQueryRemoveRule` plans them for Flink: the relation is LEFT JOINed with
//! the subquery's distinct values, each with a marker `TRUE`, and the subquery
//! becomes an expression over the marker (a "mark join"):
//!
//! - `EXISTS (q)`: `q`'s rows grouped by the subquery's side of its
//!   correlation (equalities `outer = inner`; none: one group, joined without
//!   a key in one subtask); the value is `marker IS NOT NULL`;
//! - `k IN (q)`: also an inner join, without a key, with `q`'s counts
//!   `COUNT(*)` and `COUNT(c)` (as Flink, no row at all while `q` has none),
//!   and the LEFT JOIN on `k = c`; the value is SQL's three-valued IN: FALSE
//!   for an empty `q`, TRUE on a match, else NULL when `k` or a value of `q`
//!   is NULL, else FALSE;
//! - `NOT` of either is the negated value.
//!
//! The condition filters the joined rows, whose marker and count columns are
//! then dropped. The result is updating: a row is retracted and emitted again
//! when its subquery's answer changes.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{Column, DFSchema, TableReference};
use datafusion_expr::utils::split_conjunction;
use datafusion_expr::{BinaryExpr, ExprSchemable, Operator, lit, when};
use sqlparser::ast::{self, Expr as SqlExpr, Ident, Query, VisitorMut};

use super::join::join_schema;
use super::join_push::{Side, side_of};
use super::{Planner, df_err, project, requalify};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{AggCall, AggFunc, JoinKind, PlanNode, Rel};
use crate::parser::expr_position;

/// Where a condition is: a HAVING's subqueries must be uncorrelated (Flink
/// 2.3 fails to plan a correlated one there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Clause {
    Where,
    Having,
}

/// A subquery of a condition, replaced there by a BOOLEAN column `alias`.
struct Found {
    alias: String,
    /// `Some(k)` for `k [NOT] IN (q)`, `None` for `[NOT] EXISTS (q)`.
    expr: Option<SqlExpr>,
    query: Query,
    negated: bool,
    position: Position,
}

/// Replaces the `IN` and `EXISTS` subqueries of a condition (not those of its
/// own subqueries) with column references, collecting them.
struct Collect {
    found: Vec<Found>,
    depth: usize,
    fallback: Position,
    prefix: String,
}

impl VisitorMut for Collect {
    type Break = ();
    fn pre_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        let position = expr_position(e, self.fallback);
        let (expr, query, negated) = match e {
            SqlExpr::InSubquery { expr, subquery, negated } => (Some(expr.as_ref().clone()), subquery, *negated),
            SqlExpr::Exists { subquery, negated } => (None, subquery, *negated),
            _ => return ControlFlow::Continue(()),
        };
        let alias = format!("{}{}", self.prefix, self.found.len());
        self.found.push(Found { alias: alias.clone(), expr, query: query.as_ref().clone(), negated, position });
        *e = SqlExpr::Identifier(Ident::new(alias));
        ControlFlow::Continue(())
    }
}

/// Whether a condition holds an `IN` or `EXISTS` subquery of its own.
pub(super) fn has_subquery(e: &SqlExpr) -> bool {
    let mut c =
        Collect { found: Vec::new(), depth: 0, fallback: Position { line: 0, column: 0 }, prefix: String::new() };
    let _ = ast::VisitMut::visit(&mut e.clone(), &mut c);
    !c.found.is_empty()
}

fn column(schema: &DFSchema, i: usize) -> Expr {
    Expr::Column(Column::from(schema.qualified_field(i)))
}

/// SQL's `k IN (q)` over `q`'s row count `n`, its non-NULL count `n_values`,
/// and the marker of `k`'s match (NULL: none).
fn in_value(k: Expr, n: Expr, n_values: Expr, marker: Expr) -> Result<Expr, datafusion_common::DataFusionError> {
    let null = lit(datafusion_common::ScalarValue::Boolean(None));
    when(n.clone().eq(lit(0i64)), lit(false))
        .when(marker.is_not_null(), lit(true))
        .when(k.is_null(), null.clone())
        .when(n_values.lt(n), null)
        .otherwise(lit(false))
}

/// The distinct rows of `rel`, each with a last column `TRUE`, under `qualifier`.
fn distinct_marked(rel: Rel, keys: Vec<Expr>, qualifier: &str, pos: Position) -> Result<Rel, SqlError> {
    let nkeys = keys.len();
    let mut fields: Vec<(Option<TableReference>, Arc<Field>)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let t = k.get_type(&rel.schema).map_err(df_err(pos))?;
        fields.push((None, Arc::new(Field::new(format!("k{i}"), t, true))));
    }
    // Without keys, Flink groups the marker itself: one row while `rel` has any.
    let (keys, marker_input) = if keys.is_empty() {
        let with_marker = project(rel, vec![(lit(true), "m".into())], pos)?;
        fields.push((None, Arc::new(Field::new("m", DataType::Boolean, false))));
        (vec![column(&with_marker.schema, 0)], with_marker)
    } else {
        (keys, rel)
    };
    let schema = Arc::new(DFSchema::new_with_metadata(fields, HashMap::new()).map_err(df_err(pos))?);
    let n = keys.len();
    let grouped = Rel {
        node: PlanNode::GroupAggregate { input: Box::new(marker_input), keys, aggs: vec![], position: pos },
        schema,
        rowtime: None,
        updating: true,
        unique_key: Some((0..n).collect()),
    };
    let mut exprs: Vec<(Expr, String)> = (0..nkeys).map(|i| (column(&grouped.schema, i), format!("k{i}"))).collect();
    exprs.push((lit(true), "m".into()));
    requalify(project(grouped, exprs, pos)?, qualifier, pos)
}

/// `left` joined, without a key (in one subtask), with `right`.
pub(super) fn keyless_join(left: Rel, right: Rel, kind: JoinKind, pos: Position) -> Result<Rel, SqlError> {
    let schema = join_schema(&left, &right, kind, pos)?;
    Ok(Rel {
        node: PlanNode::Join {
            left: Box::new(left),
            right: Box::new(right),
            kind,
            left_keys: vec![],
            right_keys: vec![],
            residual: None,
            interval: None,
            temporal: None,
            window: None,
        },
        schema,
        rowtime: None,
        updating: true,
        unique_key: None,
    })
}

/// The first `n` columns of `rel`, with their qualifiers.
fn first_columns(rel: Rel, n: usize, pos: Position) -> Result<Rel, SqlError> {
    let fields: Vec<(Option<TableReference>, Arc<Field>)> =
        rel.schema.iter().take(n).map(|(q, f)| (q.cloned(), f.clone())).collect();
    let exprs: Vec<Expr> = (0..n).map(|i| column(&rel.schema, i)).collect();
    let schema = Arc::new(DFSchema::new_with_metadata(fields, HashMap::new()).map_err(df_err(pos))?);
    let unique_key = rel.unique_key.clone().filter(|k| k.iter().all(|c| *c < n));
    let (rowtime, updating) = (rel.rowtime.filter(|t| *t < n), rel.updating);
    Ok(Rel { node: PlanNode::Project { input: Box::new(rel), exprs }, schema, rowtime, updating, unique_key })
}

impl Planner {
    /// `rel` filtered by a condition whose `IN` and `EXISTS` subqueries are
    /// mark joins (see the module doc).
    pub(super) fn filter_with_subqueries(
        &mut self,
        rel: Rel,
        cond: &SqlExpr,
        clause: Clause,
        pos: Position,
    ) -> Result<Rel, SqlError> {
        let cond_pos = expr_position(cond, pos);
        let n = rel.schema.fields().len();
        let prefix = format!("__sq{}_{}_", cond_pos.line, cond_pos.column);
        let mut c = Collect { found: Vec::new(), depth: 0, fallback: pos, prefix };
        let mut cond = cond.clone();
        let _ = ast::VisitMut::visit(&mut cond, &mut c);
        let mut rel = rel;
        let mut values = HashMap::new();
        for f in c.found {
            let qualifier = f.alias.clone();
            let (joined, value) = match &f.expr {
                Some(k) => self.in_mark(rel, k, &f.query, &qualifier, clause, f.position)?,
                None => self.exists_mark(rel, &f.query, &qualifier, clause, f.position)?,
            };
            rel = joined;
            values.insert(f.alias, if f.negated { !value } else { value });
        }
        // The condition over the joined columns, each subquery a placeholder
        // BOOLEAN column, which its value then replaces.
        let mut fields: Vec<(Option<TableReference>, Arc<Field>)> =
            rel.schema.iter().map(|(q, f)| (q.cloned(), f.clone())).collect();
        fields.extend(values.keys().map(|a| (None, Arc::new(Field::new(a, DataType::Boolean, true)))));
        let with_placeholders = DFSchema::new_with_metadata(fields, HashMap::new()).map_err(df_err(pos))?;
        let predicate = self.plan_expr(&cond, &with_placeholders, cond_pos)?;
        let predicate = predicate
            .transform(|e| match &e {
                Expr::Column(c) if c.relation.is_none() && values.contains_key(&c.name) => {
                    Ok(Transformed::yes(values[&c.name].clone()))
                }
                _ => Ok(Transformed::no(e)),
            })
            .map_err(df_err(cond_pos))?
            .data;
        let t = predicate.get_type(&rel.schema).map_err(df_err(cond_pos))?;
        if t != DataType::Boolean {
            return Err(SqlError::new(cond_pos, "a condition must be BOOLEAN"));
        }
        let (schema, unique_key) = (rel.schema.clone(), rel.unique_key.clone());
        let filtered = Rel {
            node: PlanNode::Filter { input: Box::new(rel), predicate },
            schema,
            rowtime: None,
            updating: true,
            unique_key,
        };
        first_columns(filtered, n, pos)
    }

    /// `rel` with `k IN (query)`'s counts and marker joined, and its value.
    fn in_mark(
        &mut self,
        rel: Rel,
        k: &SqlExpr,
        query: &Query,
        qualifier: &str,
        clause: Clause,
        pos: Position,
    ) -> Result<(Rel, Expr), SqlError> {
        let right = self.plan_query(query, pos).map_err(|e| super::subquery::correlated_in(e, clause))?;
        if right.schema.fields().len() != 1 {
            return Err(SqlError::new(
                pos,
                format!(
                    "IN (subquery): the subquery must select exactly one column, not {}",
                    right.schema.fields().len()
                ),
            ));
        }
        let value = column(&right.schema, 0);
        let count = |arg: Option<Expr>| AggCall {
            func: AggFunc::Count,
            arg,
            distinct: false,
            filter: None,
            output_type: DataType::Int64,
            separator: None,
        };
        let counts_schema = DFSchema::new_with_metadata(
            vec![
                (None, Arc::new(Field::new("n", DataType::Int64, false))),
                (None, Arc::new(Field::new("n_values", DataType::Int64, false))),
            ],
            HashMap::new(),
        )
        .map_err(df_err(pos))?;
        let counts = Rel {
            node: PlanNode::GroupAggregate {
                input: Box::new(right.clone()),
                keys: vec![],
                aggs: vec![count(None), count(Some(value.clone()))],
                position: pos,
            },
            schema: Arc::new(counts_schema),
            rowtime: None,
            updating: true,
            unique_key: Some(vec![]),
        };
        let counts = requalify(counts, &format!("{qualifier}n"), pos)?;
        let k_pos = expr_position(k, pos);
        let k = self.plan_expr(k, &rel.schema, k_pos)?;
        let with_counts = keyless_join(rel, counts, JoinKind::Inner, pos)?;
        let n = with_counts.schema.fields().len();
        let (count_all, count_values) = (column(&with_counts.schema, n - 2), column(&with_counts.schema, n - 1));
        let marked = distinct_marked(right, vec![value], qualifier, pos)?;
        let (r, marker) = (column(&marked.schema, 0), column(&marked.schema, 1));
        let (lk, rk) = self.common_key(&k, &r, &with_counts, &marked, k_pos)?;
        let schema = join_schema(&with_counts, &marked, JoinKind::Left, pos)?;
        let joined = self.join_planned(with_counts, marked, JoinKind::Left, lk.eq(rk), schema, k_pos)?;
        let value = in_value(k, count_all, count_values, marker).map_err(df_err(pos))?;
        Ok((joined, value))
    }

    /// `rel` with `EXISTS (query)`'s marker joined, and its value.
    fn exists_mark(
        &mut self,
        rel: Rel,
        query: &Query,
        qualifier: &str,
        clause: Clause,
        pos: Position,
    ) -> Result<(Rel, Expr), SqlError> {
        let (right, correlation) = self.exists_input(query, pos)?;
        let (left_keys, right, right_keys) = if correlation.is_empty() {
            (vec![], right, vec![])
        } else if clause == Clause::Having {
            return Err(SqlError::new(pos, super::subquery::CORRELATED_IN_HAVING));
        } else {
            self.correlation_keys(&rel, right, &correlation, pos)?
        };
        let marked = distinct_marked(right, right_keys, qualifier, pos)?;
        let marker = column(&marked.schema, marked.schema.fields().len() - 1);
        let joined = if left_keys.is_empty() {
            keyless_join(rel, marked, JoinKind::Left, pos)?
        } else {
            let cond = left_keys
                .into_iter()
                .enumerate()
                .map(|(i, l)| l.eq(column(&marked.schema, i)))
                .reduce(Expr::and)
                .unwrap_or(lit(true));
            let schema = join_schema(&rel, &marked, JoinKind::Left, pos)?;
            self.join_planned(rel, marked, JoinKind::Left, cond, schema, pos)?
        };
        Ok((joined, marker.is_not_null()))
    }

    /// The keys that relate an EXISTS subquery's rows (`right`) to the outer
    /// query's (`left`), from its correlation: each condition is an equality
    /// `outer = inner`, or one that reads the outer query only through columns
    /// those equalities equate with the subquery's (Calcite substitutes them,
    /// as in `B.bidder = P.id AND B.price > P.id * 2`), which then filters
    /// `right`. Returns the left keys, `right` filtered, and the right keys.
    fn correlation_keys(
        &self,
        left: &Rel,
        right: Rel,
        correlation: &[SqlExpr],
        pos: Position,
    ) -> Result<(Vec<Expr>, Rel, Vec<Expr>), SqlError> {
        let schema = join_schema(left, &right, JoinKind::Inner, pos)?;
        let n_left = left.schema.fields().len();
        let side = |e: &Expr| side_of(&schema, n_left, e);
        let (mut lks, mut rks, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for c in correlation {
            let c_pos = expr_position(c, pos);
            let e = self.plan_expr(c, &schema, c_pos)?;
            for conjunct in split_conjunction(&e) {
                if let Expr::BinaryExpr(BinaryExpr { left: l, op: Operator::Eq, right: r }) = conjunct {
                    let pair = match (side(l), side(r)) {
                        (Side::Left, Side::Right) => Some((l.as_ref(), r.as_ref())),
                        (Side::Right, Side::Left) => Some((r.as_ref(), l.as_ref())),
                        _ => None,
                    };
                    if let Some((lk, rk)) = pair {
                        let (lk, rk) = self.common_key(lk, rk, left, &right, c_pos)?;
                        lks.push(lk);
                        rks.push(rk);
                        continue;
                    }
                }
                others.push((conjunct.clone(), c_pos));
            }
        }
        let mut filters = Vec::new();
        for (o, o_pos) in others {
            let substituted = o
                .transform(|e| {
                    let found = lks.iter().position(|k| k == &e);
                    Ok(match found {
                        Some(i) => Transformed::yes(rks[i].clone()),
                        None => Transformed::no(e),
                    })
                })
                .map_err(df_err(o_pos))?
                .data;
            if side(&substituted) != Side::Right {
                return Err(SqlError::new(
                    o_pos,
                    "EXISTS (subquery) under OR or NOT: a correlation other than equalities between the outer query and the subquery (outer.k = inner.k) is not supported yet; other conditions may read the outer query only through the columns those equalities equate",
                ));
            }
            filters.push(substituted);
        }
        let right = match datafusion_expr::utils::conjunction(filters) {
            None => right,
            Some(predicate) => {
                let (schema, unique_key, updating) = (right.schema.clone(), right.unique_key.clone(), right.updating);
                Rel {
                    node: PlanNode::Filter { input: Box::new(right), predicate },
                    schema,
                    rowtime: None,
                    updating,
                    unique_key,
                }
            }
        };
        if lks.is_empty() {
            return Err(SqlError::new(
                pos,
                "EXISTS (subquery) under OR or NOT: a correlated subquery needs an equality between the outer query and the subquery (outer.k = inner.k)",
            ));
        }
        Ok((lks, right, rks))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use arrow::array::{Array, AsArray, BooleanArray, Int64Array, RecordBatch};
    use arrow::datatypes::Schema;

    use super::*;

    #[test]
    fn in_is_sqls_three_valued_answer_over_the_counts_and_the_marker() {
        // (k, COUNT(*), COUNT(c), marker) -> k IN (q)
        type Row = (Option<i64>, i64, i64, Option<bool>, Option<bool>);
        let rows: [Row; 7] = [
            (Some(1), 0, 0, None, Some(false)), // empty subquery
            (None, 0, 0, None, Some(false)),    // empty subquery, NULL k
            (Some(1), 3, 3, Some(true), Some(true)),
            (Some(1), 3, 2, Some(true), Some(true)), // a match wins over a NULL in q
            (Some(1), 3, 3, None, Some(false)),
            (Some(1), 3, 2, None, None), // no match, a NULL in q
            (None, 3, 3, None, None),    // NULL k
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("n", DataType::Int64, false),
            Field::new("n_values", DataType::Int64, false),
            Field::new("m", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                Arc::new(BooleanArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        let df = DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let e = in_value(column(&df, 0), column(&df, 1), column(&df, 2), column(&df, 3)).unwrap();
        let got = crate::expr::physical(&e, &df).unwrap().evaluate(&batch).unwrap().into_array(rows.len()).unwrap();
        let got = got.as_boolean();
        let got: Vec<Option<bool>> = (0..rows.len()).map(|i| got.is_valid(i).then(|| got.value(i))).collect();
        assert_eq!(got, rows.iter().map(|r| r.4).collect::<Vec<_>>());
    }

    #[test]
    fn only_a_conditions_own_subqueries_are_collected() {
        let parse = |s: &str| {
            let dialect = crate::dialect::FlinkDialect;
            sqlparser::parser::Parser::new(&dialect).try_with_sql(s).unwrap().parse_expr().unwrap()
        };
        assert!(has_subquery(&parse("a = 1 OR b IN (SELECT x FROM t)")));
        assert!(has_subquery(&parse("NOT EXISTS (SELECT * FROM t)")));
        // A subquery's own IN is planned with that subquery.
        assert!(!has_subquery(&parse("a > (SELECT MAX(x) FROM t WHERE x IN (SELECT y FROM u))")));
        assert!(!has_subquery(&parse("a = 1 OR b = 2")));
    }
}
