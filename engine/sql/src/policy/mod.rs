//! A job's data policy, enforced at its sources.
//!
//! [`Enforcer::apply`] rewrites each table as the job's queries see it when it is
//! defined, so every scan of the table, and everything downstream of it (windows,
//! state, checkpoints, sinks), sees masked values only.
//!
//! Invariants:
//! - a masked column keeps its name and type (`null` makes it nullable); a
//!   dropped column is gone from the table as queries see it, and a query that
//!   reads it fails to compile, naming the rule;
//! - computed columns are computed from the masked physical columns, and a
//!   computed column that reads a dropped one is an error, so no raw value
//!   reaches a computed column;
//! - a row rule's predicate reads the raw values (before masking) and runs
//!   before the masking, at the source; the rows it rejects never leave it;
//! - for each column, the first rule that matches it applies;
//! - a rule that matches no column, a row rule for a table the job does not
//!   define, and a tag for a column that does not exist are errors: a typo
//!   must not leak what the policy was written to protect;
//! - the event-time column (the one `WATERMARK FOR` names) cannot be masked,
//!   since event time, and with it every window, would change;
//! - an hmac key is read once per Secret and never printed ([`mask::Key`]).

pub mod mask;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{Column, DFSchema, DFSchemaRef, ScalarValue};
use datafusion_expr::ExprSchemable;
use datafusion_expr::ScalarUDF;
use datafusion_expr::expr::ScalarFunction;
pub use sluice_api::policy::{ColumnRule, DataPolicy, Keep, MaskAction, RowRule, SecretKeyRef};

use crate::catalog::TableDef;
use crate::error::{Position, SqlError};
use crate::expr::{Expr, ExprPlanner};
use mask::{Key, MaskFn, Masking};

/// Reads the bytes of a Secret's key, or says why it cannot.
pub type Secrets<'a> = &'a dyn Fn(&SecretKeyRef) -> Result<Vec<u8>, String>;

/// What the policy did to one table: for `explain`, the status and lineage.
#[derive(Debug, Clone, Default)]
pub struct TablePolicy {
    pub masked: Vec<MaskedColumn>,
    pub row_filter: Option<RowFilter>,
    /// What the source does to each batch it reads, before anything else
    /// sees it; None when the policy leaves the table alone.
    pub source: Option<SourcePolicy>,
}

/// A source's batches under the policy: the rows the row filter passes, then
/// the visible physical columns (masked, without the dropped ones), which
/// the table's `physical_df` and `columns` then refer to.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    /// The physical columns as the connector reads them, which `exprs` and
    /// the row filter refer to.
    pub raw: DFSchemaRef,
    pub exprs: Vec<Expr>,
    pub schema: SchemaRef,
}

impl TablePolicy {
    pub fn is_empty(&self) -> bool {
        self.masked.is_empty() && self.row_filter.is_none()
    }

    /// One line per rule applied, for `explain`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .masked
            .iter()
            .map(|m| format!("{} {} (dataPolicy.columns[{}])", m.column, m.action.name(), m.rule))
            .collect();
        if let Some(f) = &self.row_filter {
            let rules = f.rules.iter().map(|r| format!("dataPolicy.rows[{r}]")).collect::<Vec<_>>().join(", ");
            lines.push(format!("rows where {} ({rules})", f.text));
        }
        lines
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaskedColumn {
    pub column: String,
    pub action: MaskAction,
    /// The index of the rule in `dataPolicy.columns`.
    pub rule: usize,
}

#[derive(Debug, Clone)]
pub struct RowFilter {
    /// The predicate over the table's physical columns.
    pub expr: Expr,
    pub text: String,
    /// The indexes of the rules in `dataPolicy.rows`.
    pub rules: Vec<usize>,
}

/// Applies one policy to the tables of one job, as they are defined.
pub(crate) struct Enforcer<'a> {
    policy: &'a DataPolicy,
    secrets: Secrets<'a>,
    /// For each column rule, the tables whose columns it matched.
    column_matched: Vec<BTreeSet<String>>,
    keys: HashMap<(String, String), Key>,
    /// `table.column` of every column of every table defined so far.
    columns: BTreeSet<String>,
}

fn policy_error(message: String) -> SqlError {
    SqlError::new(Position::default(), message)
}

/// `*` any run of characters, `?` one; everything else literally.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(&pattern.chars().collect::<Vec<_>>(), &name.chars().collect::<Vec<_>>())
}

impl<'a> Enforcer<'a> {
    pub fn new(policy: &'a DataPolicy, secrets: Secrets<'a>) -> Result<Enforcer<'a>, SqlError> {
        for (i, r) in policy.columns.iter().enumerate() {
            if r.matches.column.is_none() && r.matches.tag.is_none() {
                return Err(policy_error(format!(
                    "dataPolicy.columns[{i}]: match needs a column (a name or a pattern such as \"*_email\") or a tag"
                )));
            }
        }
        Ok(Enforcer {
            policy,
            secrets,
            column_matched: vec![BTreeSet::new(); policy.columns.len()],
            keys: HashMap::new(),
            columns: BTreeSet::new(),
        })
    }

    fn tags_of(&self, table: &str, column: &str) -> &[String] {
        self.policy.tags.get(&format!("{table}.{column}")).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first rule that matches a column, marking every rule that matches it.
    fn rule_for(&mut self, table: &str, column: &str) -> Option<usize> {
        let mut first = None;
        for (i, r) in self.policy.columns.iter().enumerate() {
            let m = &r.matches;
            let ok = m.table.as_ref().is_none_or(|t| t == table)
                && m.column.as_ref().is_none_or(|p| glob(p, column))
                && m.tag.as_ref().is_none_or(|t| self.tags_of(table, column).contains(t));
            if ok {
                self.column_matched[i].insert(table.to_string());
                first.get_or_insert(i);
            }
        }
        first
    }

    fn masking(&mut self, i: usize, table: &TableDef, column: &str, t: &DataType) -> Result<Option<Masking>, SqlError> {
        let r = &self.policy.columns[i];
        let at = |m: String| {
            SqlError::new(table.position, format!("dataPolicy.columns[{i}] on column `{}.{column}`: {m}", table.name))
        };
        let keep = r.keep.clone().unwrap_or_default();
        let m = match r.action {
            MaskAction::Drop | MaskAction::Null => return Ok(None),
            MaskAction::Redact => Masking::Redact { first: keep.first as usize, last: keep.last as usize },
            MaskAction::Truncate => match (r.unit, keep.first) {
                (Some(u), 0) => Masking::TruncateTime(u),
                (None, n) if n > 0 => Masking::TruncateChars(n as usize),
                (Some(_), _) => {
                    return Err(at("truncate takes either keep.first (a string) or unit (a time), not both".into()));
                }
                (None, _) => {
                    return Err(at("truncate needs keep.first (characters of a string to keep) or unit (for a timestamp or a date)".into()));
                }
            },
            MaskAction::Hmac => {
                let s = r
                    .key_secret_ref
                    .clone()
                    .ok_or_else(|| at("hmac needs keySecretRef: {name, key} of a Secret holding its key".into()))?;
                let key = match self.keys.entry((s.name.clone(), s.key.clone())) {
                    std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let bytes = (self.secrets)(&s)
                            .map_err(|e| at(format!("the hmac key (Secret `{}`, key `{}`): {e}", s.name, s.key)))?;
                        if bytes.is_empty() {
                            return Err(at(format!("the hmac key (Secret `{}`, key `{}`) is empty", s.name, s.key)));
                        }
                        v.insert(Key(Arc::from(bytes))).clone()
                    }
                };
                Masking::Hmac(key)
            }
        };
        m.check_type(t).map_err(|e| at(format!("{e} (the column is {})", crate::types::flink_name(t))))?;
        Ok(Some(m))
    }

    /// The table as the job's queries see it under the policy.
    pub fn apply(&mut self, mut def: TableDef, exprs: &ExprPlanner) -> Result<TableDef, SqlError> {
        for f in def.schema.fields() {
            self.columns.insert(format!("{}.{}", def.name, f.name()));
        }
        let row_filter = self.row_filter(&def, exprs)?;
        let rowtime = def.rowtime().map(|i| def.schema.field(i).name().clone());
        // Each column's fate: None (kept), or the rule and, unless drop or null, its masking.
        let mut fate: Vec<Option<(usize, MaskAction, Option<Masking>)>> = Vec::new();
        for f in def.schema.fields() {
            let name = f.name().clone();
            let Some(i) = self.rule_for(&def.name, &name) else {
                fate.push(None);
                continue;
            };
            if rowtime.as_deref() == Some(name.as_str()) {
                return Err(SqlError::new(
                    def.position,
                    format!(
                        "dataPolicy.columns[{i}] matches `{}.{name}`, the table's event-time column (WATERMARK FOR {name}); masking it would change event time and every window; narrow the rule's match",
                        def.name
                    ),
                ));
            }
            let m = self.masking(i, &def, &name, f.data_type())?;
            fate.push(Some((i, self.policy.columns[i].action, m)));
        }
        if fate.iter().all(Option::is_none) && row_filter.is_none() {
            return Ok(def);
        }
        // The visible physical columns: each physical column masked, the dropped ones left out.
        let mut visible_exprs = Vec::new();
        let mut visible_fields = Vec::new();
        let mut dropped = HashSet::new();
        for (idx, f) in def.physical.fields().iter().enumerate() {
            let full = def.schema.fields().iter().position(|g| g.name() == f.name());
            let (q, _) = def.physical_df.qualified_field(idx);
            let raw = Expr::Column(Column::new(q.cloned(), f.name()));
            let (value, nullable) = match full.and_then(|i| fate[i].as_ref()) {
                None => (raw, f.is_nullable()),
                Some((_, MaskAction::Drop, _)) => {
                    dropped.insert(f.name().clone());
                    continue;
                }
                Some((_, MaskAction::Null, _)) => (null_of(f.data_type()), true),
                Some((_, _, Some(m))) => (call(m, raw), f.is_nullable()),
                Some((_, _, None)) => (raw, f.is_nullable()),
            };
            visible_exprs.push(value);
            visible_fields.push(Field::new(f.name(), f.data_type().clone(), nullable));
        }
        let visible = Arc::new(Schema::new(visible_fields));
        let visible_df = Arc::new(
            DFSchema::try_from_qualified_schema(def.name.as_str(), &visible)
                .map_err(|e| SqlError::new(def.position, e.to_string()))?,
        );
        // Every column of the table over the visible physical columns.
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        let mut masked = Vec::new();
        for (i, (expr, f)) in def.columns.iter().zip(def.schema.fields()).enumerate() {
            if let Some((rule, action, _)) = &fate[i] {
                masked.push(MaskedColumn { column: f.name().clone(), action: *action, rule: *rule });
                if *action == MaskAction::Drop {
                    continue;
                }
            }
            let is_physical =
                matches!(expr, Expr::Column(c) if c.name == *f.name() && def.physical.index_of(&c.name).is_ok());
            if !is_physical && let Some(d) = reads_any(expr, &dropped) {
                return Err(SqlError::new(
                    def.position,
                    format!(
                        "computed column `{}` of table `{}` reads `{d}`, which the data policy drops; drop `{}` too, or mask `{d}` instead of dropping it",
                        f.name(),
                        def.name,
                        f.name()
                    ),
                ));
            }
            // A physical column is already masked in the visible columns; a computed one
            // is masked here, over them.
            let (value, nullable) = match (&fate[i], is_physical) {
                (Some((_, MaskAction::Null, _)), false) => (null_of(f.data_type()), true),
                (Some((_, _, Some(m))), false) => (call(m, expr.clone()), f.is_nullable()),
                _ => {
                    let nullable =
                        visible.field_with_name(f.name()).map(|v| v.is_nullable()).unwrap_or(f.is_nullable());
                    (expr.clone(), nullable)
                }
            };
            columns.push(value);
            fields.push(Field::new(f.name(), f.data_type().clone(), nullable || f.is_nullable()));
        }
        let schema = DFSchema::try_from_qualified_schema(def.name.as_str(), &Schema::new(fields))
            .map_err(|e| SqlError::new(def.position, e.to_string()))?;
        if let (Some(w), Some(name)) = (&mut def.watermark, rowtime) {
            w.column = schema.fields().iter().position(|f| *f.name() == name).unwrap_or(w.column);
        }
        def.policy = TablePolicy {
            masked,
            row_filter,
            source: Some(SourcePolicy { raw: def.physical_df.clone(), exprs: visible_exprs, schema: visible }),
        };
        def.schema = Arc::new(schema);
        def.columns = columns;
        def.physical_df = visible_df;
        Ok(def)
    }

    /// The conjunction of the table's row rules, over its physical columns.
    fn row_filter(&self, def: &TableDef, exprs: &ExprPlanner) -> Result<Option<RowFilter>, SqlError> {
        let mut parts = Vec::new();
        for (i, r) in self.policy.rows.iter().enumerate().filter(|(_, r)| r.table == def.name) {
            let at = |m: String| SqlError::new(def.position, format!("dataPolicy.rows[{i}] (`{}`): {m}", r.predicate));
            let ast = sqlparser::parser::Parser::new(&crate::dialect::FlinkDialect)
                .try_with_sql(&r.predicate)
                .and_then(|mut p| p.parse_expr())
                .map_err(|e| at(e.to_string()))?;
            let e = exprs.plan(&ast, &def.schema, def.position).map_err(|e| at(e.message))?;
            let t = e.get_type(&def.schema).map_err(|e| at(e.to_string()))?;
            if t != DataType::Boolean {
                return Err(at(format!("the predicate is {}, not BOOLEAN", crate::types::flink_name(&t))));
            }
            // Over the physical columns: each column by its value, computed or not.
            let over_physical = e
                .transform_up(|e| match &e {
                    Expr::Column(c) => match def.schema.index_of_column(c) {
                        Ok(idx) => Ok(Transformed::yes(def.columns[idx].clone())),
                        Err(_) => Ok(Transformed::no(e)),
                    },
                    _ => Ok(Transformed::no(e)),
                })
                .map_err(|e| at(e.to_string()))?
                .data;
            parts.push((i, r.predicate.clone(), over_physical));
        }
        let Some((first, rest)) = parts.split_first() else {
            return Ok(None);
        };
        let mut expr = first.2.clone();
        for p in rest {
            expr = expr.and(p.2.clone());
        }
        let text = parts.iter().map(|p| format!("({})", p.1)).collect::<Vec<_>>().join(" AND ");
        let text = if parts.len() == 1 { parts[0].1.clone() } else { text };
        Ok(Some(RowFilter { expr, text, rules: parts.iter().map(|p| p.0).collect() }))
    }

    /// The errors only the whole job can show: rules and tags that match nothing,
    /// and rules that match only tables the job never reads (`read`): a policy masks
    /// what sources read, so a rule on a sink's columns alone protects nothing.
    pub fn finish(self, tables: &BTreeMap<String, Arc<TableDef>>, read: &BTreeSet<String>) -> Result<(), SqlError> {
        let unread = |t: &str| {
            format!(
                "the job writes `{t}` but never reads it, and a policy masks what the sources read; name the table the data comes from"
            )
        };
        for (i, r) in self.policy.rows.iter().enumerate() {
            if !tables.contains_key(&r.table) {
                return Err(policy_error(format!("dataPolicy.rows[{i}]: the job defines no table `{}`", r.table)));
            }
            if !read.contains(&r.table) {
                return Err(policy_error(format!("dataPolicy.rows[{i}]: {}", unread(&r.table))));
            }
        }
        for key in self.policy.tags.keys() {
            if !self.columns.contains(key) {
                return Err(policy_error(format!(
                    "dataPolicy.tags: `{key}` is not a column of the job's tables; tags are keyed by `table.column`"
                )));
            }
        }
        for (i, matched) in self.column_matched.iter().enumerate() {
            if !matched.is_empty() && matched.is_disjoint(read) {
                let t = matched.iter().cloned().collect::<Vec<_>>().join("`, `");
                return Err(policy_error(format!(
                    "dataPolicy.columns[{i}] matches only columns of `{t}`: {}",
                    unread(&t)
                )));
            }
            if matched.is_empty() {
                let m = &self.policy.columns[i].matches;
                let what = [("table", &m.table), ("column", &m.column), ("tag", &m.tag)]
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} `{v}`")))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(policy_error(format!(
                    "dataPolicy.columns[{i}] ({what}) matches no column of the job's tables ({}); a rule that matches nothing protects nothing, so fix its match or remove it",
                    tables.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn null_of(t: &DataType) -> Expr {
    Expr::Literal(ScalarValue::try_from(t).unwrap_or(ScalarValue::Null), None)
}

fn call(m: &Masking, arg: Expr) -> Expr {
    let f = Arc::new(ScalarUDF::new_from_impl(MaskFn::new(m.clone())));
    Expr::ScalarFunction(ScalarFunction::new_udf(f, vec![arg]))
}

/// The first column of `names` that `e` reads.
fn reads_any(e: &Expr, names: &HashSet<String>) -> Option<String> {
    e.column_refs().into_iter().find(|c| names.contains(&c.name)).map(|c| c.name.clone())
}

#[cfg(test)]
mod tests;
