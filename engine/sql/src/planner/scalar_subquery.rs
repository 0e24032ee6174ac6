//! Scalar subqueries: `(SELECT agg FROM ...)` as a value in a WHERE or in the
//! SELECT list of a query that does not aggregate, as in
//! `WHERE price > (SELECT AVG(price) FROM bid)`.
//!
//! As Flink plans an uncorrelated one: the FROM clause LEFT JOINed, without a
//! key (in one subtask), with the subquery's single row, whose column stands
//! for the subquery. The result is updating: when the subquery's value changes,
//! the rows it reached are retracted and emitted again. A subquery that
//! returns more than one row is a runtime error in Flink; here each row of it
//! joins, so it must return one, as SQL requires.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Expr as SqlExpr, Ident, Query, Select, VisitorMut};

use super::aggregate::contains_aggregate;
use super::join::join_schema;
use super::select::select_item_expr;
use super::{Planner, requalify};
use crate::error::{Position, SqlError};
use crate::logical::{JoinKind, PlanNode, Rel};
use crate::parser::expr_position;

/// Replaces the scalar subqueries of the outermost query level with column
/// references, collecting them.
struct Collect {
    found: Vec<(String, Query, Position)>,
    depth: usize,
    fallback: Position,
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
        if let SqlExpr::Subquery(q) = e {
            let alias = format!("__scalar_{}_{}", position.line, position.column);
            self.found.push((alias.clone(), q.as_ref().clone(), position));
            *e = SqlExpr::Identifier(Ident::new(alias));
        }
        ControlFlow::Continue(())
    }
}

impl Planner {
    /// The SELECT with its scalar subqueries replaced by columns, and the
    /// subqueries planned, each a one-column relation named as its column;
    /// `None` when it has none.
    pub(super) fn scalar_subqueries(
        &mut self,
        s: &Select,
        pos: Position,
    ) -> Result<Option<(Select, Vec<Rel>)>, SqlError> {
        let mut rewritten = s.clone();
        let mut c = Collect { found: Vec::new(), depth: 0, fallback: pos };
        if let Some(w) = rewritten.selection.as_mut() {
            let _ = ast::VisitMut::visit(w, &mut c);
        }
        let in_where = c.found.len();
        for item in rewritten.projection.iter_mut() {
            let _ = ast::VisitMut::visit(item, &mut c);
        }
        if c.found.is_empty() {
            return Ok(None);
        }
        // Over the rewritten SELECT: a subquery's own aggregates do not count.
        let aggregating = !matches!(&s.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
            || s.having.is_some()
            || rewritten.projection.iter().filter_map(select_item_expr).any(contains_aggregate);
        if aggregating && c.found.len() > in_where {
            return Err(SqlError::new(
                c.found[in_where].2,
                "a scalar subquery in the SELECT list of an aggregation is not supported yet; aggregate in a subquery of the FROM, then use the scalar subquery in the enclosing SELECT",
            ));
        }
        let mut rels = Vec::new();
        for (alias, q, position) in c.found {
            let rel = self.plan_query(&q, position)?;
            let n = rel.schema.fields().len();
            if n != 1 {
                return Err(SqlError::new(
                    position,
                    format!("a scalar subquery must select exactly one column, not {n}"),
                ));
            }
            let rel = super::rename(rel, std::slice::from_ref(&alias), position)?;
            rels.push(requalify(rel, &format!("{alias}_q"), position)?);
        }
        Ok(Some((rewritten, rels)))
    }

    /// `left` LEFT JOINed, without a key, with each scalar subquery's row.
    pub(super) fn scalar_joins(&self, mut left: Rel, scalars: Vec<Rel>, pos: Position) -> Result<Rel, SqlError> {
        for right in scalars {
            let schema = join_schema(&left, &right, JoinKind::Left, pos)?;
            left = Rel {
                node: PlanNode::Join {
                    left: Box::new(left),
                    right: Box::new(right),
                    kind: JoinKind::Left,
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
            };
        }
        Ok(left)
    }
}
