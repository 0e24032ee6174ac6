//! The data policy at a source: every batch its reader returns passes the
//! table's row filter and then has its columns masked, before the first
//! operator of the vertex sees it (`sluice_sql::policy`). The reader's splits
//! and lag are its own: the wrapper changes rows, never positions.

use std::sync::Arc;

use arrow::compute::filter_record_batch;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use datafusion_physical_expr::PhysicalExpr;
use sluice_connectors::{BatchError, ConnectorError, SourceEvent, SourceReader};
use sluice_sql::catalog::TableDef;
use sluice_sql::expr::physical;

use super::calc::Project;
use crate::error::EngineError;

pub struct PolicyReader {
    inner: Box<dyn SourceReader>,
    table: String,
    filter: Option<Arc<dyn PhysicalExpr>>,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: arrow::datatypes::SchemaRef,
}

/// The reader of `t` under its data policy, or the reader itself when the policy leaves `t` alone.
pub fn with_policy(t: &TableDef, inner: Box<dyn SourceReader>) -> Result<Box<dyn SourceReader>, EngineError> {
    let Some(p) = &t.policy.source else {
        return Ok(inner);
    };
    let lower = |e| {
        physical(e, &p.raw).map_err(|err| EngineError::Internal(format!("table `{}`: the data policy: {err}", t.name)))
    };
    let filter = t.policy.row_filter.as_ref().map(|f| lower(&f.expr)).transpose()?;
    let exprs = p.exprs.iter().map(lower).collect::<Result<_, _>>()?;
    Ok(Box::new(PolicyReader { inner, table: t.name.clone(), filter, exprs, schema: p.schema.clone() }))
}

impl PolicyReader {
    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        let batch = match &self.filter {
            None => batch,
            Some(f) => {
                let mask = f
                    .evaluate(&batch)
                    .and_then(|v| v.into_array(batch.num_rows()))
                    .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
                let mask = arrow::array::AsArray::as_boolean_opt(&mask)
                    .ok_or_else(|| ArrowError::ComputeError("the row filter is not boolean".into()))?;
                filter_record_batch(&batch, mask)?
            }
        };
        Project::evaluate(&self.exprs, &self.schema, &batch).map_err(|e| ArrowError::ComputeError(e.to_string()))
    }
}

impl SourceReader for PolicyReader {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        match self.inner.poll()? {
            SourceEvent::Batch(b) => self.apply(b).map(SourceEvent::Batch).map_err(|e| ConnectorError::Batch {
                table: self.table.clone(),
                source: BatchError::Arrow(ArrowError::ComputeError(format!("the data policy: {e}"))),
            }),
            other => Ok(other),
        }
    }

    fn has_work(&self) -> bool {
        self.inner.has_work()
    }

    fn pending_records(&self) -> Option<u64> {
        self.inner.pending_records()
    }

    fn splits(&self) -> Option<u64> {
        self.inner.splits()
    }

    fn skipped_records(&self) -> u64 {
        self.inner.skipped_records()
    }

    fn set_batch_size(&mut self, rows: usize) {
        self.inner.set_batch_size(rows);
    }

    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        self.inner.snapshot()
    }
}
