//! Which physical columns of each scanned table a job reads (Flink's
//! projection push-down): a source reader leaves the others NULL instead of
//! converting them ([`sluice_connectors::SourceReader::read_only`]).
//!
//! A scan reads only some columns when every use of it is a projection right
//! after it (as the planner puts after a scan that feeds a join): then it reads
//! what those projections read, plus what its computed columns, its watermark
//! and its metadata columns need. Any other use reads every column, and so
//! does a table under a data policy (its row filter and masks read columns of
//! their own). A table scanned several times reads the union. A column the
//! analysis cannot place makes the whole table read: skipping is only ever an
//! optimization.

use std::collections::{BTreeSet, HashMap};

use sluice_sql::catalog::TableDef;
use sluice_sql::expr::{Expr, column_indices};
use sluice_sql::plan::{Job, PlanNode, Rel};

/// Per scanned table, the physical columns the job reads; `None`: all of them.
pub(super) fn source_reads(job: &Job) -> HashMap<String, Option<Vec<bool>>> {
    let mut used: HashMap<String, (&TableDef, Option<BTreeSet<usize>>)> = HashMap::new();
    for sink in &job.sinks {
        visit(&sink.input, &mut used);
    }
    used.into_iter().map(|(name, (t, cols))| (name, cols.and_then(|c| physical(t, c)))).collect()
}

/// Records the columns of `t`'s schema that one scan reads (`None`: all).
fn scan<'a>(
    used: &mut HashMap<String, (&'a TableDef, Option<BTreeSet<usize>>)>,
    t: &'a TableDef,
    cols: Option<BTreeSet<usize>>,
) {
    let entry = used.entry(t.name.clone()).or_insert((t, Some(BTreeSet::new())));
    match (&mut entry.1, cols) {
        (Some(acc), Some(c)) => acc.extend(c),
        (acc, _) => *acc = None,
    }
}

fn visit<'a>(rel: &'a Rel, used: &mut HashMap<String, (&'a TableDef, Option<BTreeSet<usize>>)>) {
    match &rel.node {
        PlanNode::Source(t) => scan(used, t, None),
        PlanNode::Project { input, exprs } => match &input.node {
            PlanNode::Source(t) => scan(used, t, column_indices(exprs, &input.schema)),
            _ => visit(input, used),
        },
        node => node.inputs().into_iter().for_each(|r| visit(r, used)),
    }
}

/// The physical columns behind the schema columns `cols` of `t`, with those
/// its watermark needs and every metadata column; `None` when that is all.
fn physical(t: &TableDef, mut cols: BTreeSet<usize>) -> Option<Vec<bool>> {
    // A data policy's row filter and masks read raw columns of their own.
    if t.policy.source.is_some() {
        return None;
    }
    if let Some(w) = &t.watermark {
        cols.insert(w.column);
        cols.extend(column_indices([&w.expr], &t.schema)?);
    }
    let columns: Vec<Expr> = cols.iter().map(|&i| t.columns.get(i).cloned()).collect::<Option<_>>()?;
    let read = column_indices(&columns, &t.physical_df)?;
    let mask: Vec<bool> =
        t.physical.fields().iter().enumerate().map(|(i, f)| read.contains(&i) || !f.metadata().is_empty()).collect();
    if mask.iter().all(|&r| r) { None } else { Some(mask) }
}
