//! Column lineage: for each column a sink writes, the source columns its values
//! come from and how, following OpenLineage's column-lineage facet (`IDENTITY`,
//! `TRANSFORMATION`, `AGGREGATION`), plus the data policy's action on the source
//! column when it masked it.
//!
//! A computed column counts as a column of its table (tags and policies name it),
//! derived from the physical columns it reads.
//!
//! The lineage is derived from the logical plan, so it is exactly what runs:
//! views and CTEs are already inlined, a window's `window_start`, `window_end`
//! and `window_time` come from its time attribute, and a filter adds nothing
//! (OpenLineage calls that indirect lineage, which is left out).

use std::collections::BTreeMap;

use datafusion_common::DFSchema;

use crate::expr::Expr;
use crate::logical::{Job, PlanNode, Rel};
use crate::policy::MaskAction;

/// How a value derives from an input field, OpenLineage's `subtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Derivation {
    Identity,
    Transformation,
    Aggregation,
}

impl Derivation {
    pub fn name(self) -> &'static str {
        match self {
            Derivation::Identity => "IDENTITY",
            Derivation::Transformation => "TRANSFORMATION",
            Derivation::Aggregation => "AGGREGATION",
        }
    }

    /// Of a value derived `self` from a value derived `inner`: the stronger one.
    fn then(self, inner: Derivation) -> Derivation {
        self.max(inner)
    }
}

/// One source column a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputField {
    pub table: String,
    pub column: String,
    pub derivation: Derivation,
    /// The data policy's action on the source column, if it masked it.
    pub masked: Option<MaskAction>,
}

/// A sink's columns, in order, each with the fields it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkLineage {
    pub sink: String,
    pub columns: Vec<(String, Vec<InputField>)>,
}

type Fields = Vec<InputField>;

/// The lineage of every sink of the job (a sink written by several INSERTs
/// gets the union of theirs).
pub fn column_lineage(job: &Job) -> Vec<SinkLineage> {
    let mut by_sink: BTreeMap<String, SinkLineage> = BTreeMap::new();
    for s in &job.sinks {
        let cols = of(&s.input);
        let names: Vec<String> = s.table.physical.fields().iter().map(|f| f.name().clone()).collect();
        let entry = by_sink.entry(s.table.name.clone()).or_insert_with(|| SinkLineage {
            sink: s.table.name.clone(),
            columns: names.iter().map(|n| (n.clone(), vec![])).collect(),
        });
        for (i, fields) in cols.into_iter().enumerate() {
            if let Some((_, all)) = entry.columns.get_mut(i) {
                merge(all, fields);
            }
        }
    }
    by_sink.into_values().collect()
}

fn merge(into: &mut Fields, more: Fields) {
    for f in more {
        match into.iter_mut().find(|g| g.table == f.table && g.column == f.column) {
            Some(g) => g.derivation = g.derivation.max(f.derivation),
            None => into.push(f),
        }
    }
    into.sort();
}

/// The fields an expression over `schema` reads, given the lineage of each column of `schema`.
fn through(e: &Expr, schema: &DFSchema, input: &[Fields], outer: Derivation) -> Fields {
    let outer = if matches!(e, Expr::Column(_)) { outer } else { outer.then(Derivation::Transformation) };
    let mut out = Fields::new();
    for c in e.column_refs() {
        if let Ok(i) = schema.index_of_column(c) {
            let derived = input[i].iter().map(|f| InputField { derivation: outer.then(f.derivation), ..f.clone() });
            merge(&mut out, derived.collect());
        }
    }
    out
}

/// The lineage of each output column of `rel`.
fn of(rel: &Rel) -> Vec<Fields> {
    match &rel.node {
        PlanNode::Source(t) => {
            let masked = |column: &str| t.policy.masked.iter().find(|m| m.column == column).map(|m| m.action);
            // Each physical column is its own field; a computed one reads physical ones.
            let physical: Vec<Fields> = t
                .physical_df
                .fields()
                .iter()
                .map(|f| {
                    vec![InputField {
                        table: t.name.clone(),
                        column: f.name().clone(),
                        derivation: Derivation::Identity,
                        masked: masked(f.name()),
                    }]
                })
                .collect();
            t.columns
                .iter()
                .zip(t.schema.fields())
                .map(|(e, f)| {
                    let mut fields = through(e, &t.physical_df, &physical, Derivation::Identity);
                    if !matches!(e, Expr::Column(_)) {
                        // A computed column is a column of the table too (tags name it).
                        let own = InputField {
                            table: t.name.clone(),
                            column: f.name().clone(),
                            derivation: Derivation::Identity,
                            masked: None,
                        };
                        merge(&mut fields, vec![own]);
                    }
                    if let Some(a) = masked(f.name()) {
                        // A masked computed column: every value it shows went through the mask.
                        fields.iter_mut().for_each(|x| x.masked = x.masked.or(Some(a)));
                    }
                    fields
                })
                .collect()
        }
        PlanNode::Filter { input, .. } => of(input),
        PlanNode::Project { input, exprs } => {
            let cols = of(input);
            exprs.iter().map(|e| through(e, &input.schema, &cols, Derivation::Identity)).collect()
        }
        PlanNode::Union { inputs } => {
            let mut out: Vec<Fields> = vec![Fields::new(); rel.schema.fields().len()];
            for i in inputs {
                for (k, fields) in of(i).into_iter().enumerate() {
                    if let Some(o) = out.get_mut(k) {
                        merge(o, fields);
                    }
                }
            }
            out
        }
        PlanNode::WindowAssign { input, window } => {
            let mut cols = of(input);
            let time = transformed(&cols[window.time_col]);
            cols.extend([time.clone(), time.clone(), time]);
            cols
        }
        PlanNode::WindowAggregate { input, window, keys, aggs, .. } => {
            let cols = of(input);
            let time = transformed(&cols[window.time_col]);
            let mut out = vec![time.clone(), time.clone(), time];
            out.extend(aggregated(input, &cols, keys, aggs));
            out
        }
        PlanNode::GroupAggregate { input, keys, aggs, .. } => aggregated(input, &of(input), keys, aggs),
        PlanNode::ChangelogNormalize { input, .. } => of(input),
        PlanNode::Rank { input, order, output_rank, .. } => {
            let mut cols = of(input);
            if *output_rank {
                let mut fields = Fields::new();
                for k in order {
                    merge(&mut fields, through(&k.expr, &input.schema, &cols, Derivation::Transformation));
                }
                cols.push(fields);
            }
            cols
        }
        PlanNode::Deduplicate { input, .. } | PlanNode::TemporalSort { input, .. } => of(input),
        PlanNode::OverAggregate { input, aggs, .. } => {
            let cols = of(input);
            let mut out = cols.clone();
            out.extend(aggregated(input, &cols, &[], aggs));
            out
        }
        PlanNode::Unnest { input, expr, .. } => {
            let mut cols = of(input);
            let element = through(expr, &input.schema, &cols, Derivation::Transformation);
            cols.extend(std::iter::repeat_n(element, rel.schema.fields().len() - input.schema.fields().len()));
            cols
        }
        PlanNode::Join { left, kind, .. } if kind.left_only() => of(left),
        PlanNode::Join { left, right, .. } => {
            let mut cols = of(left);
            cols.extend(of(right));
            cols
        }
    }
}

/// The lineage of an aggregation's keys and aggregates.
fn aggregated(input: &Rel, cols: &[Fields], keys: &[Expr], aggs: &[crate::logical::AggCall]) -> Vec<Fields> {
    let mut out: Vec<Fields> = keys.iter().map(|k| through(k, &input.schema, cols, Derivation::Identity)).collect();
    for a in aggs {
        let mut fields = Fields::new();
        for e in a.arg.iter() {
            merge(&mut fields, through(e, &input.schema, cols, Derivation::Aggregation));
        }
        out.push(fields);
    }
    out
}

fn transformed(fields: &Fields) -> Fields {
    fields
        .iter()
        .map(|f| InputField { derivation: f.derivation.then(Derivation::Transformation), ..f.clone() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile;

    fn lineage(sql: &str) -> Vec<(String, Vec<String>)> {
        let job = compile(sql).unwrap();
        column_lineage(&job)
            .into_iter()
            .flat_map(|s| {
                s.columns.into_iter().map(move |(c, fields)| {
                    let f =
                        fields.iter().map(|f| format!("{}.{} {}", f.table, f.column, f.derivation.name())).collect();
                    (format!("{}.{c}", s.sink), f)
                })
            })
            .collect()
    }

    const TABLES: &str = "CREATE TABLE clicks (user_id BIGINT, url STRING, ts TIMESTAMP(3),
  host AS SPLIT_INDEX(url, '/', 2), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE views (user_id BIGINT, url STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');\n";

    #[test]
    fn projections_and_expressions() {
        let sql = format!(
            "{TABLES}CREATE TABLE o (u BIGINT, h STRING, n INT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT user_id, host, CHAR_LENGTH(url) + 1 FROM clicks WHERE user_id > 0;"
        );
        assert_eq!(
            lineage(&sql),
            [
                ("o.u".to_string(), vec!["clicks.user_id IDENTITY".to_string()]),
                ("o.h".into(), vec!["clicks.host IDENTITY".into(), "clicks.url TRANSFORMATION".into()]),
                ("o.n".into(), vec!["clicks.url TRANSFORMATION".into()]),
            ]
        );
    }

    #[test]
    fn window_aggregations_and_unions() {
        let sql = format!(
            "{TABLES}CREATE TABLE o (window_start TIMESTAMP(3), user_id BIGINT, c BIGINT, m STRING) WITH ('connector' = 'blackhole');
CREATE VIEW both_ AS SELECT user_id, url, ts FROM clicks UNION ALL SELECT user_id, url, ts FROM views;
INSERT INTO o SELECT window_start, user_id, COUNT(*), MAX(url)
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, user_id;"
        );
        let l = lineage(&sql);
        assert_eq!(l[0], ("o.window_start".to_string(), vec!["clicks.ts TRANSFORMATION".to_string()]));
        assert_eq!(l[1], ("o.user_id".to_string(), vec!["clicks.user_id IDENTITY".to_string()]));
        assert_eq!(l[2], ("o.c".to_string(), vec![]));
        assert_eq!(l[3], ("o.m".to_string(), vec!["clicks.url AGGREGATION".to_string()]));
        let union = sql.replace("TABLE(TUMBLE(TABLE clicks,", "TABLE(TUMBLE(TABLE both_,");
        assert_eq!(lineage(&union)[3].1, ["clicks.url AGGREGATION", "views.url AGGREGATION"]);
    }

    #[test]
    fn masked_source_columns_say_how() {
        let policy: crate::policy::DataPolicy =
            serde_json::from_str(r#"{"columns": [{"match": {"column": "url"}, "action": "redact"}]}"#).unwrap();
        let sql = format!(
            "{TABLES}CREATE TABLE o (h STRING, u BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT host, user_id FROM clicks;"
        );
        let job = crate::compile_with_policy(&sql, &policy, &|_| Err("no keys".into())).unwrap();
        let l = column_lineage(&job);
        // `host` reads the masked `url`, and is masked with it.
        assert_eq!(l[0].columns[0].1.iter().map(|f| f.masked).collect::<Vec<_>>(), [None, Some(MaskAction::Redact)]);
        assert_eq!(l[0].columns[1].1[0].masked, None);
    }
}
