//! Queries: WITH, UNION ALL (the other set operations are in `set_ops`), and the FROM items (tables, views, subqueries,
//! aliases) that a SELECT reads.

use datafusion_common::Column;
use sqlparser::ast::{self, Expr as SqlExpr, Query, SetExpr, SetOperator, SetQuantifier, TableFactor};

use super::{Planner, pos_of, project, rename, requalify, unsupported};
use crate::error::{Position, SqlError};
use crate::expr::Expr;
use crate::logical::{PlanNode, Rel, WindowSpec};
use crate::parser::object_name;
use crate::types::flink_name;

/// A FROM item: a plain relation, or a window TVF over one.
pub(super) enum FromItem {
    Plain(Rel),
    Window { input: Rel, window: WindowSpec, partition_by: Vec<SqlExpr>, qualifier: Option<String> },
}

impl Planner {
    pub(super) fn plan_query(&mut self, q: &Query, pos: Position) -> Result<Rel, SqlError> {
        let mut saved = Vec::new();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.clone();
                let rel = self.plan_query(&cte.query, pos)?;
                let rel = requalify(rel, &name, pos)?;
                saved.push((name.clone(), self.views.insert(name, rel)));
            }
        }
        let out = self.plan_set_expr(&q.body, pos).and_then(|rel| self.plan_sorted(rel, q, pos_of(q, pos)));
        for (name, old) in saved.into_iter().rev() {
            match old {
                Some(v) => self.views.insert(name, v),
                None => self.views.remove(&name),
            };
        }
        out
    }

    pub(super) fn plan_set_expr(&mut self, body: &SetExpr, pos: Position) -> Result<Rel, SqlError> {
        match body {
            SetExpr::Select(s) => self.plan_select(s, pos),
            SetExpr::Query(q) => self.plan_query(q, pos),
            SetExpr::SetOperation { op: SetOperator::Union, set_quantifier: SetQuantifier::All, left, right } => {
                let l = self.plan_set_expr(left, pos)?;
                let r = self.plan_set_expr(right, pos)?;
                self.union(l, r, pos)
            }
            SetExpr::SetOperation {
                op: op @ (SetOperator::Union | SetOperator::Intersect | SetOperator::Except),
                set_quantifier: SetQuantifier::None | SetQuantifier::Distinct,
                left,
                right,
            } => {
                let l = self.plan_set_expr(left, pos)?;
                let r = self.plan_set_expr(right, pos)?;
                self.set_operation(*op, l, r, pos)
            }
            SetExpr::SetOperation {
                op: op @ (SetOperator::Intersect | SetOperator::Except),
                set_quantifier: SetQuantifier::All,
                left,
                right,
            } => {
                let l = self.plan_set_expr(left, pos)?;
                let r = self.plan_set_expr(right, pos)?;
                self.set_operation_all(*op, l, r, pos)
            }
            SetExpr::SetOperation { op, set_quantifier, .. } => Err(SqlError::new(
                pos,
                format!(
                    "{op} {set_quantifier} is not supported; UNION, INTERSECT and EXCEPT are, with ALL or without (DISTINCT)"
                ),
            )),
            SetExpr::Values(v) => self.plan_values(v, pos),
            _ => Err(unsupported(pos, &format!("`{body}`"))),
        }
    }

    pub(super) fn union(&mut self, l: Rel, r: Rel, pos: Position) -> Result<Rel, SqlError> {
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
        let updating = inputs.iter().any(|r| r.updating);
        Ok(Rel { node: PlanNode::Union { inputs }, schema, rowtime, updating, unique_key: None })
    }

    pub(super) fn lookup(&self, name: &str, pos: Position) -> Result<Rel, SqlError> {
        if let Some(v) = self.views.get(name) {
            return requalify(v.clone(), name, pos);
        }
        if let Some(t) = self.tables.get(name) {
            let source = Rel {
                node: PlanNode::Source(t.clone()),
                schema: t.schema.clone(),
                rowtime: t.rowtime(),
                updating: false,
                unique_key: None,
            };
            let primary_key = || {
                t.primary_key
                    .iter()
                    .map(|c| t.schema.index_of_column_by_name(None, c))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| {
                        SqlError::new(pos, format!("table `{name}`: a PRIMARY KEY column is not a column of the table"))
                    })
            };
            if t.changelog_format().is_some() {
                // Its records are changes: an updating relation, keyed by its
                // PRIMARY KEY when it declares one.
                let unique_key = if t.primary_key.is_empty() { None } else { Some(primary_key()?) };
                return Ok(Rel { updating: true, unique_key, ..source });
            }
            if t.connector() != "upsert-kafka" {
                return Ok(source);
            }
            // An upsert source: its rows are upserts and deletes by primary key.
            let keys = primary_key()?;
            return Ok(Rel {
                node: PlanNode::ChangelogNormalize { input: Box::new(source), keys: keys.clone() },
                schema: t.schema.clone(),
                rowtime: None,
                updating: true,
                unique_key: Some(keys),
            });
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

    pub(super) fn plan_from(&mut self, f: &TableFactor, pos: Position) -> Result<FromItem, SqlError> {
        let pos = pos_of(f, pos);
        match f {
            TableFactor::Table { version: Some(_), .. } => {
                Err(SqlError::new(pos, super::temporal_join::NOT_RIGHT_OF_JOIN))
            }
            TableFactor::Table { name, alias, args: None, .. } => {
                let rel = self.lookup(&object_name(name), pos)?;
                let rel = match alias {
                    Some(a) => self.alias(rel, a, pos)?,
                    None => rel,
                };
                Ok(FromItem::Plain(rel))
            }
            TableFactor::Derived { subquery, alias, .. } => {
                let rel = self.plan_query(subquery, pos)?;
                let rel = match alias {
                    Some(a) => self.alias(rel, a, pos)?,
                    None => rel,
                };
                Ok(FromItem::Plain(rel))
            }
            TableFactor::TableFunction { expr, alias } => {
                self.plan_window_tvf(expr, alias.as_ref().map(|a| a.name.value.clone()), pos)
            }
            f if super::unnest::as_unnest(f).is_some() => Err(SqlError::new(pos, super::unnest::UNCORRELATED)),
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
}
