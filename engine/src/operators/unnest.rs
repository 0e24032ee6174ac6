//! UNNEST correlated with its input (Flink's correlate with UNNEST): each
//! input row once per element of its ARRAY, or per entry of its MAP.
//!
//! Invariants:
//! - stateless, and order-preserving: the rows of an input row follow each
//!   other, in element order, in the input rows' order;
//! - each output row has its input row's kind (the trailing kind column of an
//!   updating stream is repeated with the row), so a retraction of an input
//!   row retracts each of its element rows;
//! - a NULL or empty collection gives no row, or with `outer` (`LEFT JOIN
//!   UNNEST ... ON TRUE`) one row whose new columns are NULL;
//! - output: the input's data columns, the element (or key and value), the
//!   1-based position when `ordinality`, then the kind column if any.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog;

use super::calc::relax;
use super::{StreamEvent, StreamOperator};
use crate::error::OpError;

pub struct Unnest {
    /// The ARRAY or MAP, over the input's data columns.
    pub expr: Arc<dyn PhysicalExpr>,
    pub ordinality: bool,
    pub outer: bool,
    /// The output's data columns (without a kind column).
    pub schema: SchemaRef,
}

/// Which input row each output row repeats, and which element (an index into
/// the collection's flattened values) it carries; `None` for a padded row.
fn expansion(
    offsets: &[i32],
    valid: impl Fn(usize) -> bool,
    outer: bool,
) -> (Vec<u32>, Vec<Option<u32>>, Vec<Option<i32>>) {
    let (mut rows, mut elements, mut positions) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..offsets.len().saturating_sub(1) {
        let (start, end) = (offsets[r], offsets[r + 1]);
        if !valid(r) || start == end {
            if outer {
                rows.push(r as u32);
                elements.push(None);
                positions.push(None);
            }
            continue;
        }
        for (n, e) in (start..end).enumerate() {
            rows.push(r as u32);
            elements.push(Some(e as u32));
            positions.push(Some(n as i32 + 1));
        }
    }
    (rows, elements, positions)
}

impl Unnest {
    pub fn expand(&self, batch: &RecordBatch) -> Result<RecordBatch, OpError> {
        let kinds = changelog::has_kinds(batch);
        let width = batch.num_columns() - usize::from(kinds);
        let data = batch.project(&(0..width).collect::<Vec<_>>())?;
        let n = batch.num_rows();
        let coll = self.expr.evaluate(&data)?.into_array(n)?;
        let valid = |r: usize| coll.is_valid(r);
        let (rows, elements, positions, parts): (_, _, _, Vec<ArrayRef>) = match coll.data_type() {
            DataType::List(_) => {
                let list = coll.as_list::<i32>();
                let (rows, elements, positions) = expansion(list.value_offsets(), valid, self.outer);
                (rows, elements, positions, vec![list.values().clone()])
            }
            DataType::Map(_, _) => {
                let map = coll.as_map();
                let (rows, elements, positions) = expansion(map.value_offsets(), valid, self.outer);
                (rows, elements, positions, vec![map.keys().clone(), map.values().clone()])
            }
            other => {
                return Err(OpError::Other(format!("UNNEST of a {other} value; the planner allows ARRAY and MAP")));
            }
        };
        let rows = UInt32Array::from(rows);
        let elements = UInt32Array::from(elements);
        let mut cols: Vec<ArrayRef> =
            data.columns().iter().map(|c| take(c.as_ref(), &rows, None)).collect::<Result<_, _>>()?;
        for p in &parts {
            cols.push(take(p.as_ref(), &elements, None)?);
        }
        if self.ordinality {
            cols.push(Arc::new(Int32Array::from(positions)));
        }
        let mut fields: Vec<_> = relax(&self.schema).fields().iter().cloned().collect();
        if kinds {
            cols.push(take(batch.column(width).as_ref(), &rows, None)?);
            fields.push(Arc::new(changelog::kind_field()));
        }
        // Element types carry the collection's own field names and nullability.
        let fields: Vec<_> = fields
            .into_iter()
            .zip(&cols)
            .map(|(f, c)| Arc::new(f.as_ref().clone().with_data_type(c.data_type().clone())))
            .collect();
        Ok(RecordBatch::try_new_with_options(
            Arc::new(arrow::datatypes::Schema::new(fields)),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?)
    }
}

impl StreamOperator for Unnest {
    fn name(&self) -> String {
        format!("{}Unnest({})", if self.outer { "Left" } else { "" }, self.expr)
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let expanded = self.expand(&batch)?;
        if expanded.num_rows() > 0 {
            out.push(StreamEvent::Batch(expanded));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "unnest_tests.rs"]
mod tests;
