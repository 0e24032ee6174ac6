//! Stateless operators: filter and projection with DataFusion physical expressions.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_physical_expr::PhysicalExpr;

use sluice_format::changelog;

use super::{StreamEvent, StreamOperator};
use crate::error::OpError;

pub struct Filter {
    pub predicate: Arc<dyn PhysicalExpr>,
}

impl StreamOperator for Filter {
    fn name(&self) -> String {
        format!("Filter({})", self.predicate)
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let mask = self.predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
        let mask = mask.as_boolean_opt().ok_or_else(|| OpError::Other("filter predicate is not boolean".into()))?;
        let filtered = filter_record_batch(&batch, mask)?;
        if filtered.num_rows() > 0 {
            out.push(StreamEvent::Batch(filtered));
        }
        Ok(())
    }
}

pub struct Project {
    pub exprs: Vec<Arc<dyn PhysicalExpr>>,
    pub schema: SchemaRef,
    /// Whether the input's row kinds pass through; without, every row of an
    /// updating input becomes an insert (an insert-only Top-1 read by a
    /// window TVF or an OVER aggregation, as Flink reads it).
    pub keep_kinds: bool,
}

impl Project {
    pub fn evaluate(
        exprs: &[Arc<dyn PhysicalExpr>],
        schema: &SchemaRef,
        batch: &RecordBatch,
    ) -> Result<RecordBatch, OpError> {
        let n = batch.num_rows();
        let cols: Vec<ArrayRef> =
            exprs.iter().map(|e| e.evaluate(batch).and_then(|v| v.into_array(n))).collect::<Result<_, _>>()?;
        // Nullability in the planned schema is advisory: the engine never relies
        // on it, so columns are checked against types only.
        let cols = cols
            .into_iter()
            .zip(schema.fields().iter())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { arrow::compute::cast(&c, f.data_type()) })
            .collect::<Result<Vec<_>, _>>()?;
        let relaxed = relax(schema);
        Ok(RecordBatch::try_new_with_options(relaxed, cols, &RecordBatchOptions::new().with_row_count(Some(n)))?)
    }
}

/// A batch with a kind column (of the batch it was computed from) appended.
pub fn with_kind_column(batch: RecordBatch, kinds: ArrayRef) -> Result<RecordBatch, OpError> {
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(changelog::kind_field()));
    let mut cols = batch.columns().to_vec();
    cols.push(kinds);
    let n = batch.num_rows();
    Ok(RecordBatch::try_new_with_options(
        Arc::new(arrow::datatypes::Schema::new(fields)),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}

/// The same schema with every field nullable.
pub fn relax(schema: &SchemaRef) -> SchemaRef {
    if schema.fields().iter().all(|f| f.is_nullable()) {
        return schema.clone();
    }
    Arc::new(arrow::datatypes::Schema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ))
}

impl StreamOperator for Project {
    fn name(&self) -> String {
        format!("Project({})", self.exprs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "))
    }

    /// The rows of an updating stream keep their row kinds (the trailing kind
    /// column, see `sluice_format::changelog`), which no expression reads,
    /// unless `keep_kinds` is off.
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let projected = Self::evaluate(&self.exprs, &self.schema, &batch)?;
        let projected = if self.keep_kinds && changelog::has_kinds(&batch) {
            with_kind_column(projected, batch.column(batch.num_columns() - 1).clone())?
        } else {
            projected
        };
        out.push(StreamEvent::Batch(projected));
        Ok(())
    }
}
