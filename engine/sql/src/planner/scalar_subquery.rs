//! Scalar subqueries: `(SELECT agg FROM ...)` as a value, in a WHERE, in a
//! SELECT list or in a HAVING, as in `WHERE price > (SELECT AVG(price) FROM
//! bid)`.
//!
//! Each is replaced in the SELECT by a column named for its position
//! (`__scalar_<line>_<column>`), which a join then brings, as Flink plans it:
//! - an uncorrelated one: its single row, LEFT JOINed without a key (in one
//!   subtask);
//! - a correlated one: its aggregation grouped by the columns that relate it
//!   to the outer query, LEFT JOINed on them (see `scalar_correlated`).
//!
//! In an aggregation, the subqueries of the SELECT list and HAVING (outside an
//! aggregate's argument) join the aggregation's output, and those of the
//! WHERE and of the aggregates' arguments join its input.
//!
//! The result is updating: when a subquery's value changes, the rows it
//! reached are retracted and emitted again. A subquery that returns more than
//! one row (per outer row) is a runtime error, as in Flink: unless it cannot
//! (it aggregates), its rows are counted (Flink's `SINGLE_VALUE`), and the job
//! fails when one gets a second row. In a WHERE, Flink turns the LEFT JOIN into
//! an inner one when the condition rejects NULLs; Sluice keeps the LEFT JOIN,
//! whose padded rows the WHERE then drops.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Expr as SqlExpr, Ident, Query, Select, VisitorMut};

use super::aggregate::{contains_aggregate, is_aggregate_name};
use super::scalar_correlated::single_value_call;
use super::select::select_item_expr;
use super::{Planner, requalify};
use crate::dialect::FlinkDialect;
use crate::error::{Position, SqlError};
use crate::logical::{JoinKind, PlanNode, Rel};
use crate::parser::expr_position;

/// A scalar subquery taken out of a SELECT, and the column that stands for it.
pub(super) struct Scalar {
    pub alias: String,
    pub query: Query,
    pub position: Position,
}

/// A SELECT's scalar subqueries: those that join the FROM clause (`before`),
/// and those that join its aggregation's output (`after`).
#[derive(Default)]
pub(super) struct Scalars {
    pub before: Vec<Scalar>,
    pub after: Vec<Scalar>,
}

/// Replaces the scalar subqueries of the outermost query level with column
/// references, collecting them with whether each is in an aggregate's argument.
struct Collect {
    found: Vec<(Scalar, bool)>,
    depth: usize,
    in_aggregate: usize,
    fallback: Position,
}

fn is_aggregate_call(e: &SqlExpr) -> bool {
    matches!(e, SqlExpr::Function(f) if f.over.is_none() && is_aggregate_name(&f.name.to_string().to_ascii_uppercase()))
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
        if is_aggregate_call(e) {
            self.in_aggregate += 1;
        }
        let position = expr_position(e, self.fallback);
        if let SqlExpr::Subquery(q) = e {
            let alias = format!("__scalar_{}_{}", position.line, position.column);
            let scalar = Scalar { alias: alias.clone(), query: q.as_ref().clone(), position };
            self.found.push((scalar, self.in_aggregate > 0));
            *e = SqlExpr::Identifier(Ident::new(alias));
        }
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if self.depth == 0 && is_aggregate_call(e) {
            self.in_aggregate -= 1;
        }
        ControlFlow::Continue(())
    }
}

/// Whether planning failed on a column the query does not have: one of an
/// enclosing query's, when the query is a correlated subquery.
pub(super) fn unresolved(e: &SqlError) -> bool {
    e.message.contains("No field named")
}

impl Planner {
    /// The SELECT with its scalar subqueries replaced by columns, and the
    /// subqueries; `None` when it has none.
    pub(super) fn scalar_subqueries(&mut self, s: &Select, pos: Position) -> Option<(Select, Scalars)> {
        let mut rewritten = s.clone();
        let mut c = Collect { found: Vec::new(), depth: 0, in_aggregate: 0, fallback: pos };
        if let Some(w) = rewritten.selection.as_mut() {
            let _ = ast::VisitMut::visit(w, &mut c);
        }
        let in_where = c.found.len();
        for item in rewritten.projection.iter_mut() {
            let _ = ast::VisitMut::visit(item, &mut c);
        }
        if let Some(h) = rewritten.having.as_mut() {
            let _ = ast::VisitMut::visit(h, &mut c);
        }
        if c.found.is_empty() {
            return None;
        }
        // Over the rewritten SELECT: a subquery's own aggregates do not count.
        let aggregating = !matches!(&s.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
            || s.having.is_some()
            || rewritten.projection.iter().filter_map(select_item_expr).any(contains_aggregate);
        let mut scalars = Scalars::default();
        for (i, (scalar, in_aggregate)) in c.found.into_iter().enumerate() {
            if aggregating && i >= in_where && !in_aggregate {
                scalars.after.push(scalar);
            } else {
                scalars.before.push(scalar);
            }
        }
        Some((rewritten, scalars))
    }

    /// `left` with a column for each scalar subquery, in order: joined with an
    /// uncorrelated one's row, or with a correlated one's groups.
    pub(super) fn scalar_joins(&mut self, mut left: Rel, scalars: Vec<Scalar>) -> Result<Rel, SqlError> {
        for scalar in scalars {
            left = match self.plan_query(&scalar.query, scalar.position) {
                Ok(rel) => {
                    let right = self.scalar_column(rel, &scalar)?;
                    keyless_left_join(left, right, scalar.position)?
                }
                Err(e) if unresolved(&e) => self.correlated_scalar(left, &scalar, e)?,
                Err(e) => return Err(e),
            };
        }
        Ok(left)
    }

    /// The uncorrelated scalar subqueries of an aggregation's SELECT list and
    /// HAVING, each a one-column relation named as its column.
    pub(super) fn scalar_values(&mut self, scalars: Vec<Scalar>) -> Result<Vec<Rel>, SqlError> {
        scalars
            .into_iter()
            .map(|scalar| match self.plan_query(&scalar.query, scalar.position) {
                Ok(rel) => self.scalar_column(rel, &scalar),
                // Flink 2.3's decorrelation fails on these (an
                // ArrayIndexOutOfBoundsException in Calcite's RelDecorrelator).
                Err(e) if unresolved(&e) => Err(SqlError::new(
                    scalar.position,
                    format!(
                        "a correlated scalar subquery in the SELECT list or HAVING of an aggregation is not supported ({}), as in Flink 2.3, which fails to plan it; compute it in a query over the aggregation's result",
                        e.message.trim_end_matches('.')
                    ),
                )),
                Err(e) => Err(e),
            })
            .collect()
    }
}

impl Planner {
    /// A planned uncorrelated subquery as the one column that stands for it.
    /// Unless it cannot return more than one row (a global aggregation), its
    /// rows are counted, and a second one fails the job, as Flink's
    /// `SINGLE_VALUE` does.
    fn scalar_column(&mut self, rel: Rel, scalar: &Scalar) -> Result<Rel, SqlError> {
        let pos = scalar.position;
        let n = rel.schema.fields().len();
        if n != 1 {
            return Err(SqlError::new(pos, format!("a scalar subquery must select exactly one column, not {n}")));
        }
        let rel = if at_most_one_row(&rel) {
            rel
        } else {
            let (q, f) = rel.schema.qualified_field(0);
            let name = Ident::with_quote('`', f.name().clone());
            let column = match q {
                Some(q) => SqlExpr::CompoundIdentifier(vec![Ident::with_quote('`', q.table()), name]),
                None => SqlExpr::Identifier(name),
            };
            let mut select = select_template(pos)?;
            select.projection = vec![ast::SelectItem::UnnamedExpr(single_value_call(column))];
            self.plan_group_aggregate(rel, &[], &select, pos, Vec::new())?
        };
        let rel = super::rename(rel, std::slice::from_ref(&scalar.alias), pos)?;
        requalify(rel, &format!("{}_q", scalar.alias), pos)
    }
}

/// Whether a relation has at most one row: a global aggregation, projected
/// or filtered.
fn at_most_one_row(rel: &Rel) -> bool {
    match &rel.node {
        PlanNode::Project { input, .. } | PlanNode::Filter { input, .. } => at_most_one_row(input),
        PlanNode::GroupAggregate { keys, .. } => keys.is_empty(),
        _ => false,
    }
}

/// A SELECT to give a SELECT list to.
pub(super) fn select_template(pos: Position) -> Result<Select, SqlError> {
    let parsed = sqlparser::parser::Parser::parse_sql(&FlinkDialect, "SELECT 1")
        .map_err(|e| SqlError::new(pos, format!("internal: parsing a SELECT template: {e}")))?;
    match parsed.into_iter().next() {
        Some(ast::Statement::Query(q)) => match *q.body {
            ast::SetExpr::Select(s) => Ok(*s),
            _ => Err(SqlError::new(pos, "internal: the SELECT template is not a SELECT")),
        },
        _ => Err(SqlError::new(pos, "internal: the SELECT template is not a query")),
    }
}

/// `left` LEFT JOINed, without a key (in one subtask), with a subquery's row.
pub(super) fn keyless_left_join(left: Rel, right: Rel, pos: Position) -> Result<Rel, SqlError> {
    super::subquery_mark::keyless_join(left, right, JoinKind::Left, pos)
}
