//! Column pruning: the inputs of a join carry only the columns that something
//! above the join, or the join itself, reads.
//!
//! Flink pushes projections down to its scans. Without that, every column of a
//! joined table travels through the join: into its state, its exchanges and its
//! output (Nexmark q4 joins all ten columns of `auction` and all seven of `bid`
//! to read four and three of them). This pass runs once per sink, after the
//! planner, top-down with the set of columns each relation's consumer reads.
//!
//! Invariants:
//! - [`prune`] returns a relation whose columns are a subsequence `kept` of the
//!   original's, with every needed column among them, each under its own
//!   qualifier, name and type. Expressions are DataFusion columns, resolved by
//!   name, so every expression above still reads the same column.
//! - A relation always keeps its time attribute and its unique key, so that
//!   watermarks, upsert keys and what depends on them are unchanged; and at
//!   least one column, since a batch needs one.
//! - Only `Project`, `Filter`, `Join` and `GroupAggregate` read fewer columns
//!   than their input has; every other node reads all of them, so its column
//!   indices (time columns, window ends, normalize keys) never move.
//! - A scan gets a projection after it only when it feeds a join's input
//!   through filters alone, where the columns would otherwise be stored and
//!   shipped (a projection in between already narrows them). Elsewhere a job's plan, and so its vertex names and uids,
//!   stay as they were.
//!
//! The join's state layout lists its inputs' column types, so a savepoint taken
//! before this pass by a job whose join inputs carry unread columns does not
//! restore into the pruned plan (the restore names the operator and both
//! layouts). `SET 'sluice.planner.column-pruning' = 'false'` plans as before.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion_common::{Column, DFSchema, DFSchemaRef};

use crate::error::{Position, SqlError};
use crate::expr::{Expr, column_indices};
use crate::logical::{PlanNode, Rel};

/// The setting that turns pruning off (`'false'`); on by default.
pub const COLUMN_PRUNING: &str = "sluice.planner.column-pruning";

/// A sink's input with its joins' inputs pruned; its own columns are unchanged.
pub(super) fn prune_sink(rel: Rel, pos: Position) -> Result<Rel, SqlError> {
    let all = (0..rel.schema.fields().len()).collect();
    let (rel, kept) = Pruner { pos }.prune(rel, all, false)?;
    debug_assert_eq!(kept.len(), rel.schema.fields().len());
    Ok(rel)
}

struct Pruner {
    /// The sink's position, for the (internal) errors of rebuilding a schema.
    pos: Position,
}

impl Pruner {
    /// `rel` narrowed to a superset of `needed` (indices into its columns):
    /// the new relation and, for each of its columns, the original index.
    /// `under_join`: the relation feeds a join's input through filters only,
    /// so a scan in it gets a projection.
    fn prune(&self, rel: Rel, mut needed: BTreeSet<usize>, under_join: bool) -> Result<(Rel, Vec<usize>), SqlError> {
        let n = rel.schema.fields().len();
        needed.extend(rel.rowtime);
        needed.extend(rel.unique_key.iter().flatten().copied());
        if needed.is_empty() && n > 0 {
            needed.insert(0);
        }
        let all: Vec<usize> = (0..n).collect();
        let Rel { node, schema, rowtime, updating, unique_key } = rel;
        let (node, kept) = match node {
            PlanNode::Source(t) => {
                let source = Rel {
                    node: PlanNode::Source(t),
                    schema: schema.clone(),
                    rowtime,
                    updating,
                    unique_key: unique_key.clone(),
                };
                if !under_join || needed.len() == n {
                    return Ok((source, all));
                }
                let exprs = needed.iter().map(|&i| Expr::Column(Column::from(schema.qualified_field(i)))).collect();
                (PlanNode::Project { input: Box::new(source), exprs }, needed.into_iter().collect())
            }
            PlanNode::Project { input, exprs } => {
                let kept: Vec<usize> = needed.into_iter().collect();
                let exprs: Vec<Expr> = kept.iter().map(|&i| exprs[i].clone()).collect();
                let reads = refs(&exprs, &input.schema);
                // The projection narrows what is below it in the same chain: a scan
                // under it needs no projection of its own.
                let input = self.prune(*input, reads, false)?.0;
                (PlanNode::Project { input: Box::new(input), exprs }, kept)
            }
            PlanNode::Filter { input, predicate } => {
                let mut reads = refs([&predicate], &input.schema);
                reads.extend(needed);
                let (input, kept) = self.prune(*input, reads, under_join)?;
                (PlanNode::Filter { input: Box::new(input), predicate }, kept)
            }
            PlanNode::GroupAggregate { input, keys, aggs, position } => {
                let args = aggs.iter().flat_map(|a| a.arg.iter().chain(&a.filter));
                let reads = refs(keys.iter().chain(args), &input.schema);
                let input = self.prune(*input, reads, false)?.0;
                (PlanNode::GroupAggregate { input: Box::new(input), keys, aggs, position }, all)
            }
            PlanNode::Join { left, right, kind, left_keys, right_keys, residual, interval, temporal, window } => {
                let nl = left.schema.fields().len();
                let (mut l, mut r) = (BTreeSet::new(), BTreeSet::new());
                for &i in &needed {
                    if i < nl {
                        l.insert(i);
                    } else if !kind.left_only() {
                        r.insert(i - nl);
                    }
                }
                l.extend(refs(&left_keys, &left.schema));
                r.extend(refs(&right_keys, &right.schema));
                if let Some(res) = &residual {
                    // A semi or anti join's residual reads both inputs; its output is the left one.
                    let both;
                    let over = if kind.left_only() {
                        both = left.schema.join(&right.schema).map_err(|e| self.error(e))?;
                        &both
                    } else {
                        schema.as_ref()
                    };
                    for i in refs([res], over) {
                        if i < nl {
                            l.insert(i)
                        } else {
                            r.insert(i - nl)
                        };
                    }
                }
                // The time columns an interval, temporal or window join reads of
                // each input (indices into it), remapped once the inputs are pruned.
                let (mut interval, mut temporal, mut window) = (interval, temporal, window);
                let mut times: Vec<(&mut usize, &mut usize)> = Vec::new();
                if let Some(t) = &mut interval {
                    times.push((&mut t.left_time, &mut t.right_time));
                }
                if let Some(t) = &mut temporal {
                    times.push((&mut t.left_time, &mut t.right_time));
                }
                if let Some(w) = &mut window {
                    times.push((&mut w.left_end, &mut w.right_end));
                }
                for (lt, rt) in &times {
                    l.insert(**lt);
                    r.insert(**rt);
                }
                let (left, kl) = self.prune(*left, l, true)?;
                let (right, kr) = self.prune(*right, r, true)?;
                // Every time column is among the kept ones: it was needed.
                let at = |kept: &[usize], i: usize| kept.iter().position(|&k| k == i).unwrap_or(i);
                for (lt, rt) in times {
                    (*lt, *rt) = (at(&kl, *lt), at(&kr, *rt));
                }
                let mut kept = kl;
                if !kind.left_only() {
                    kept.extend(kr.iter().map(|i| i + nl));
                }
                let node = PlanNode::Join {
                    left: Box::new(left),
                    right: Box::new(right),
                    kind,
                    left_keys,
                    right_keys,
                    residual,
                    interval,
                    temporal,
                    window,
                };
                (node, kept)
            }
            // Every other node reads all of its input's columns (and its
            // indices into them stay valid); below it, pruning goes on.
            other => (self.prune_inputs(other)?, all),
        };
        let schema = if kept.len() == n { schema } else { self.restrict(&schema, &kept)? };
        let at = |i: usize| kept.iter().position(|&k| k == i);
        let rowtime = rowtime.and_then(at);
        let unique_key = unique_key.and_then(|k| k.into_iter().map(at).collect::<Option<Vec<_>>>());
        Ok((Rel { node, schema, rowtime, updating, unique_key }, kept))
    }

    /// `node` with each input pruned to all of its columns (so unchanged),
    /// which prunes what is below them.
    fn prune_inputs(&self, node: PlanNode) -> Result<PlanNode, SqlError> {
        let whole = |rel: Box<Rel>| -> Result<Box<Rel>, SqlError> {
            let all = (0..rel.schema.fields().len()).collect();
            Ok(Box::new(self.prune(*rel, all, false)?.0))
        };
        Ok(match node {
            PlanNode::Union { inputs } => PlanNode::Union {
                inputs: inputs.into_iter().map(|r| Ok(*whole(Box::new(r))?)).collect::<Result<_, SqlError>>()?,
            },
            PlanNode::WindowAssign { input, window } => PlanNode::WindowAssign { input: whole(input)?, window },
            PlanNode::WindowAggregate { input, window, keys, aggs, attached } => {
                PlanNode::WindowAggregate { input: whole(input)?, window, keys, aggs, attached }
            }
            PlanNode::ChangelogNormalize { input, keys } => PlanNode::ChangelogNormalize { input: whole(input)?, keys },
            PlanNode::Rank { input, partition, order, range, output_rank, window, position } => {
                PlanNode::Rank { input: whole(input)?, partition, order, range, output_rank, window, position }
            }
            PlanNode::TemporalSort { input, order } => PlanNode::TemporalSort { input: whole(input)?, order },
            PlanNode::Deduplicate { input, partition, time_col, keep_last, proctime } => {
                PlanNode::Deduplicate { input: whole(input)?, partition, time_col, keep_last, proctime }
            }
            PlanNode::OverAggregate { input, partition, time_col, frame, aggs } => {
                PlanNode::OverAggregate { input: whole(input)?, partition, time_col, frame, aggs }
            }
            PlanNode::Unnest { input, expr, ordinality, outer } => {
                PlanNode::Unnest { input: whole(input)?, expr, ordinality, outer }
            }
            n @ (PlanNode::Source(_)
            | PlanNode::Project { .. }
            | PlanNode::Filter { .. }
            | PlanNode::GroupAggregate { .. }
            | PlanNode::Join { .. }) => n,
        })
    }

    /// `schema`'s columns at `kept`, in that order.
    fn restrict(&self, schema: &DFSchema, kept: &[usize]) -> Result<DFSchemaRef, SqlError> {
        let fields = kept
            .iter()
            .map(|&i| {
                let (q, f) = schema.qualified_field(i);
                (q.cloned(), Arc::clone(f))
            })
            .collect();
        Ok(Arc::new(DFSchema::new_with_metadata(fields, schema.metadata().clone()).map_err(|e| self.error(e))?))
    }

    fn error(&self, e: impl std::fmt::Display) -> SqlError {
        SqlError::new(self.pos, format!("internal error while pruning columns: {e}"))
    }
}

/// The columns of `schema` the expressions read. A column it cannot place
/// (which the planner never builds) makes every column read: pruning then
/// keeps the input whole rather than guess.
fn refs<'a>(exprs: impl IntoIterator<Item = &'a Expr>, schema: &DFSchema) -> BTreeSet<usize> {
    column_indices(exprs, schema).unwrap_or_else(|| (0..schema.fields().len()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use crate::compile;
    use crate::logical::{PlanNode, Rel};

    const TABLES: &str = "
CREATE TABLE a (id BIGINT, name STRING, note STRING, big STRING, ts TIMESTAMP(3), cat BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE b (aid BIGINT, price BIGINT, url STRING, extra STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE o (cat BIGINT, m BIGINT) WITH ('connector' = 'print');
CREATE TABLE o2 (id BIGINT, name STRING) WITH ('connector' = 'print');
";

    fn names(rel: &Rel) -> Vec<String> {
        rel.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// The first join below `rel`, through single-input nodes.
    fn join(rel: &Rel) -> &Rel {
        match &rel.node {
            PlanNode::Join { .. } => rel,
            PlanNode::Project { input, .. }
            | PlanNode::Filter { input, .. }
            | PlanNode::GroupAggregate { input, .. } => join(input),
            other => panic!("no join: {other:?}"),
        }
    }

    fn inputs(rel: &Rel) -> (&Rel, &Rel) {
        match &rel.node {
            PlanNode::Join { left, right, .. } => (left, right),
            _ => unreachable!(),
        }
    }

    const Q4: &str = "INSERT INTO o SELECT a.cat, MAX(b.price) FROM a, b
WHERE a.id = b.aid AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' HOUR GROUP BY a.id, a.cat;";

    #[test]
    fn a_join_reads_only_the_columns_above_it_and_its_own() {
        let job = compile(&format!("{TABLES}{Q4}")).unwrap();
        let j = join(&job.sinks[0].input);
        let (l, r) = inputs(j);
        // Keys, the residual's times, the grouping keys, the aggregate's argument.
        assert_eq!(names(l), ["id", "ts", "cat"]);
        assert_eq!(names(r), ["aid", "price", "ts"]);
        assert_eq!(names(j), ["id", "ts", "cat", "aid", "price", "ts"]);
        // The time attributes stay, at their new places.
        assert_eq!((l.rowtime, r.rowtime), (Some(1), Some(2)));
        assert!(matches!(l.node, PlanNode::Project { .. }) && matches!(r.node, PlanNode::Project { .. }));
        assert_eq!(names(&job.sinks[0].input).len(), 2);
    }

    #[test]
    fn the_setting_turns_pruning_off() {
        let job = compile(&format!("SET 'sluice.planner.column-pruning' = 'FALSE';{TABLES}{Q4}")).unwrap();
        let (l, r) = inputs(join(&job.sinks[0].input));
        assert!(matches!(l.node, PlanNode::Source(_)) && matches!(r.node, PlanNode::Source(_)));
        assert_eq!((names(l).len(), names(r).len()), (6, 5));
        let err = compile(&format!("SET 'sluice.planner.column-pruning' = 'no';{TABLES}{Q4}")).unwrap_err();
        assert_eq!(
            err.render("job.sql"),
            "job.sql:1:1: 'sluice.planner.column-pruning' must be 'true' or 'false', not 'no'"
        );
    }

    #[test]
    fn an_interval_join_keeps_its_time_columns_at_their_new_places() {
        let sql = format!(
            "{TABLES}INSERT INTO o2 SELECT a.id, a.name FROM a JOIN b ON a.id = b.aid
AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '1' SECOND;"
        );
        let job = compile(&sql).unwrap();
        let j = join(&job.sinks[0].input);
        let PlanNode::Join { left, right, interval: Some(iv), .. } = &j.node else {
            panic!("not an interval join: {j:?}")
        };
        assert_eq!(names(left), ["id", "name", "ts"]);
        assert_eq!(names(right), ["aid", "ts"]);
        assert_eq!((iv.left_time, iv.right_time), (2, 1));
    }

    #[test]
    fn a_semi_join_keeps_the_right_columns_its_residual_reads() {
        let sql = format!(
            "{TABLES}INSERT INTO o2 SELECT id, name FROM a WHERE EXISTS (SELECT * FROM b WHERE b.aid = a.id AND b.price > a.cat);"
        );
        let job = compile(&sql).unwrap();
        let j = join(&job.sinks[0].input);
        let (l, r) = inputs(j);
        assert_eq!(names(l), ["id", "name", "ts", "cat"]);
        assert!(names(r).contains(&"price".to_string()) && !names(r).contains(&"url".to_string()), "{:?}", names(r));
    }
}
