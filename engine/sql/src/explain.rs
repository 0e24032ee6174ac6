//! The logical plan as text: deterministic and meant for people, so that plan
//! golden files (`tests/plans/*.plan`) read as a review of what the planner did.
//!
//! Settings and tables (the catalog: columns, computed columns, watermark) come
//! in name order; sinks in statement order, each followed by its plan tree, one
//! node a line, inputs indented under it. A node whose output carries an
//! event-time attribute ends with `[rowtime=<column>]`.

use std::fmt::Write;

use crate::logical::{AggCall, AggFunc, Job, PlanNode, Rel, WindowSpec};
use crate::types::flink_name;

impl Job {
    /// The job's settings, tables and per-sink logical plans, as text.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Logical plan: {} sink{}, local time zone {}",
            self.sinks.len(),
            if self.sinks.len() == 1 { "" } else { "s" },
            self.local_time_zone
        );
        for (key, value) in &self.settings {
            let _ = writeln!(s, "SET '{key}' = '{value}'");
        }
        for table in self.tables.values() {
            let _ = writeln!(s, "\nTable {} [{}]", table.name, table.connector());
            for ((_, field), expr) in table.schema.iter().zip(&table.columns) {
                let null = if field.is_nullable() { "" } else { " NOT NULL" };
                let _ = write!(s, "  {} {}{null}", field.name(), flink_name(field.data_type()));
                match table.physical.field_with_name(field.name()) {
                    Err(_) => {
                        let _ = write!(s, " AS {expr}");
                    }
                    Ok(f) => {
                        if let Some(key) = sluice_api::columns::metadata_key(f.metadata()) {
                            let _ = write!(s, " METADATA FROM '{key}'");
                            if sluice_api::columns::is_virtual(f.metadata()) {
                                s.push_str(" VIRTUAL");
                            }
                        }
                    }
                }
                s.push('\n');
            }
            if let Some(w) = &table.watermark {
                let _ = writeln!(s, "  WATERMARK FOR {} AS {}", table.schema.field(w.column).name(), w.text);
            }
            if !table.primary_key.is_empty() {
                let _ = writeln!(s, "  PRIMARY KEY ({}) NOT ENFORCED", table.primary_key.join(", "));
            }
        }
        for sink in &self.sinks {
            let _ = writeln!(s, "\nSink {} [{}]", sink.table.name, sink.table.connector());
            explain_rel(&mut s, &sink.input, 1);
        }
        s
    }
}

fn explain_rel(s: &mut String, rel: &Rel, depth: usize) {
    let _ = write!(s, "{:width$}", "", width = depth * 2);
    let column = |rel: &Rel, i: usize| rel.schema.field(i).name().clone();
    match &rel.node {
        PlanNode::Source(table) => {
            let _ = write!(s, "Source: {} [{}]", table.name, table.connector());
        }
        PlanNode::Filter { predicate, .. } => {
            let _ = write!(s, "Filter: {predicate}");
        }
        PlanNode::Project { exprs, .. } => {
            let items: Vec<String> = exprs
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let name = column(rel, i);
                    match e {
                        datafusion_expr::Expr::Column(c) if c.name == name => e.to_string(),
                        _ => format!("{e} AS {name}"),
                    }
                })
                .collect();
            let _ = write!(s, "Project: {}", items.join(", "));
        }
        PlanNode::Union { inputs } => {
            let _ = write!(s, "Union: {} inputs", inputs.len());
        }
        PlanNode::WindowAssign { input, window } => {
            let _ = write!(s, "WindowAssign: {}", window_text(window, input));
        }
        PlanNode::WindowAggregate { input, window, keys, aggs, attached } => {
            let (keys, aggs) = aggregation_text(rel, 3, keys, aggs);
            let on = match attached {
                Some([start, end]) => format!(
                    "{} attached to {}, {}",
                    window.kind,
                    input.schema.field(*start).name(),
                    input.schema.field(*end).name()
                ),
                None => window_text(window, input),
            };
            let _ = write!(s, "WindowAggregate: {on}, keys [{keys}], aggregates [{aggs}]");
        }
        PlanNode::GroupAggregate { keys, aggs, .. } => {
            let (keys, aggs) = aggregation_text(rel, 0, keys, aggs);
            let _ = write!(s, "GroupAggregate: keys [{keys}], aggregates [{aggs}]");
        }
        PlanNode::ChangelogNormalize { keys, .. } => {
            let keys: Vec<String> = keys.iter().map(|k| column(rel, *k)).collect();
            let _ = write!(s, "ChangelogNormalize: keys [{}]", keys.join(", "));
        }
        PlanNode::Rank { input, partition, order, range, output_rank, window, .. } => {
            let order: Vec<String> = order
                .iter()
                .map(|k| {
                    format!(
                        "{} {} NULLS {}",
                        k.expr,
                        if k.asc { "ASC" } else { "DESC" },
                        if k.nulls_first { "FIRST" } else { "LAST" }
                    )
                })
                .collect();
            let range = range.map(|r| r.to_string()).unwrap_or_else(|| "no range".into());
            let kind = match window {
                Some(w) if w.later_wins_ties => {
                    format!("Window Rank (per {}, later rows win ties)", column(input, w.end_col))
                }
                Some(w) => format!("Window Rank (per {})", column(input, w.end_col)),
                None => "Rank".into(),
            };
            let _ = write!(
                s,
                "{kind}: partition [{}], order [{}], {range}, {}",
                exprs_text(partition),
                order.join(", "),
                if *output_rank { "row number in the output" } else { "without the row number" }
            );
        }
        PlanNode::TemporalSort { order, .. } => {
            let keys: Vec<String> =
                order.iter().map(|k| format!("{} {}", k.expr, if k.asc { "ASC" } else { "DESC" })).collect();
            let _ = write!(s, "TemporalSort: order by {}", keys.join(", "));
        }
        PlanNode::Deduplicate { input, partition, time_col, keep_last, proctime } => {
            let _ = write!(
                s,
                "Deduplicate: keep the {} row per [{}] on {}{}",
                if *keep_last { "last" } else { "first" },
                exprs_text(partition),
                column(input, *time_col),
                if *proctime { " (processing time)" } else { "" }
            );
        }
        PlanNode::OverAggregate { input, partition, time_col, frame, aggs } => {
            let first = input.schema.fields().len();
            let (_, aggs) = aggregation_text(rel, first, &[], aggs);
            let _ = write!(
                s,
                "OverAggregate: partition [{}], order [{} ASC], {frame}, aggregates [{aggs}]",
                exprs_text(partition),
                column(input, *time_col),
            );
        }
        PlanNode::Unnest { expr, ordinality, outer, .. } => {
            let _ = write!(
                s,
                "{}Unnest: {expr}{}",
                if *outer { "Left " } else { "" },
                if *ordinality { " WITH ORDINALITY" } else { "" }
            );
        }
        PlanNode::Join { kind, left, right, left_keys, right_keys, residual, interval, temporal, window } => {
            let keys: Vec<String> =
                left_keys.iter().zip(right_keys).map(|(l, r)| format!("{} = {}", key_text(l), key_text(r))).collect();
            match (interval, temporal, window) {
                (_, Some(t), _) => {
                    let _ = write!(
                        s,
                        "TemporalJoin: {kind}, keys [{}], version of the right at {} AS OF {}",
                        keys.join(", "),
                        right.schema.field(t.right_time).name(),
                        left.schema.field(t.left_time).name()
                    );
                }
                (None, None, Some(w)) => {
                    let _ = write!(
                        s,
                        "WindowJoin: {kind}, {}, keys [{}], window ends {} = {}",
                        w.kind,
                        keys.join(", "),
                        qualified(left, w.left_end),
                        qualified(right, w.right_end)
                    );
                }
                (None, None, None) => {
                    let _ = write!(s, "Join: {kind}, keys [{}]", keys.join(", "));
                }
                (Some(i), None, _) => {
                    let _ = write!(
                        s,
                        "IntervalJoin: {kind}, keys [{}], {} - {} in [{}, {}] ms",
                        keys.join(", "),
                        left.schema.field(i.left_time).name(),
                        right.schema.field(i.right_time).name(),
                        i.lower,
                        i.upper
                    );
                }
            }
            if let Some(r) = residual {
                let _ = write!(s, ", residual {r}");
            }
        }
    }
    if rel.updating {
        let key = rel.unique_key.as_ref().map(|k| k.iter().map(|c| column(rel, *c)).collect::<Vec<_>>().join(", "));
        match key {
            Some(k) => {
                let _ = write!(s, " [updates, unique key ({k})]");
            }
            None => s.push_str(" [updates]"),
        }
    }
    if let Some(rt) = rel.rowtime {
        let _ = write!(s, " [rowtime={}]", column(rel, rt));
    }
    s.push('\n');
    match &rel.node {
        PlanNode::Source(_) => {}
        PlanNode::Filter { input, .. }
        | PlanNode::Project { input, .. }
        | PlanNode::WindowAssign { input, .. }
        | PlanNode::WindowAggregate { input, .. }
        | PlanNode::GroupAggregate { input, .. }
        | PlanNode::ChangelogNormalize { input, .. }
        | PlanNode::Rank { input, .. }
        | PlanNode::TemporalSort { input, .. }
        | PlanNode::Deduplicate { input, .. }
        | PlanNode::OverAggregate { input, .. }
        | PlanNode::Unnest { input, .. } => explain_rel(s, input, depth + 1),
        PlanNode::Union { inputs } => inputs.iter().for_each(|i| explain_rel(s, i, depth + 1)),
        PlanNode::Join { left, right, .. } => {
            explain_rel(s, left, depth + 1);
            explain_rel(s, right, depth + 1);
        }
    }
}

/// A column with its qualifier, if it has one.
fn qualified(rel: &Rel, i: usize) -> String {
    let (q, f) = rel.schema.qualified_field(i);
    match q {
        Some(q) => format!("{q}.{}", f.name()),
        None => f.name().clone(),
    }
}

/// A join key; a cast to the common key type is shown with its type.
fn key_text(e: &datafusion_expr::Expr) -> String {
    match e {
        datafusion_expr::Expr::Cast(c) => format!("CAST({} AS {})", c.expr, flink_name(c.field.data_type())),
        _ => e.to_string(),
    }
}

/// The keys (output columns from `first`) and aggregates of an aggregation.
fn aggregation_text(rel: &Rel, first: usize, keys: &[crate::expr::Expr], aggs: &[AggCall]) -> (String, String) {
    let name = |i: usize| rel.schema.field(i).name().clone();
    let keys: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| match k {
            datafusion_expr::Expr::Column(c) if c.name == name(first + i) => k.to_string(),
            _ => format!("{k} AS {}", name(first + i)),
        })
        .collect();
    let aggs: Vec<String> = aggs.iter().enumerate().map(|(i, a)| agg_text(a, &name(first + keys.len() + i))).collect();
    (keys.join(", "), aggs.join(", "))
}

fn exprs_text(exprs: &[datafusion_expr::Expr]) -> String {
    exprs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
}

fn window_text(window: &WindowSpec, input: &Rel) -> String {
    let mut text = format!("{} on {}", window.kind, input.schema.field(window.time_col).name());
    if let Some(tz) = &window.time_zone {
        let _ = write!(text, " in {tz}");
    }
    text
}

fn agg_text(a: &AggCall, name: &str) -> String {
    let func = match a.func {
        AggFunc::Count => "COUNT",
        AggFunc::Sum => "SUM",
        AggFunc::Min => "MIN",
        AggFunc::Max => "MAX",
        AggFunc::Avg => "AVG",
        AggFunc::FirstValue => "FIRST_VALUE",
        AggFunc::LastValue => "LAST_VALUE",
        AggFunc::ListAgg => "LISTAGG",
        AggFunc::StddevPop => "STDDEV_POP",
        AggFunc::StddevSamp => "STDDEV_SAMP",
        AggFunc::VarPop => "VAR_POP",
        AggFunc::VarSamp => "VAR_SAMP",
    };
    let distinct = if a.distinct { "DISTINCT " } else { "" };
    let arg = a.arg.as_ref().map_or_else(|| "*".to_string(), |e| e.to_string());
    let sep = a.separator.as_ref().map_or_else(String::new, |s| format!(", '{}'", s.replace('\'', "''")));
    let mut text = format!("{func}({distinct}{arg}{sep})");
    if let Some(f) = &a.filter {
        let _ = write!(text, " FILTER (WHERE {f})");
    }
    let _ = write!(text, " AS {name} {}", flink_name(&a.output_type));
    text
}
