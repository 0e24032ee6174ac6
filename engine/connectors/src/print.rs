//! The `print` sink: each row as Flink's `PrintSink` shows it,
//! `[<identifier>[:<subtask+1>]> ]+I[v1, v2, ...]`, to stdout, or to stderr
//! with `'standard-error' = 'true'`. A batch is written under one lock.
//!
//! With checkpoints the print sink is at-least-once, as in Flink: rows are
//! printed when they arrive, so after a restore the rows printed since the
//! last completed checkpoint are printed again.

use std::io::Write;

use arrow::record_batch::RecordBatch;
use sluice_format::row::RowStringEncoder;
use sluice_format::types::column_types_nested;

use crate::options::Options;
use crate::{ConnectorError, SinkContext, SinkWriter};

pub(crate) const OPTIONS: &str = "'print-identifier', 'standard-error'";

#[derive(Debug, Clone)]
pub(crate) struct PrintConfig {
    identifier: String,
    stderr: bool,
}

impl PrintConfig {
    pub(crate) fn parse(o: &Options<'_>, schema: &arrow::datatypes::SchemaRef) -> Result<Self, ConnectorError> {
        let identifier = o.get("print-identifier").unwrap_or("").to_string();
        let stderr = o.bool("standard-error", false)?;
        column_types_nested(schema.fields(), "print").map_err(|e| o.error(e.to_string()))?;
        o.check_all_used("print", OPTIONS)?;
        Ok(PrintConfig { identifier, stderr })
    }
}

/// Flink's `PrintSinkOutputWriter` prefix.
pub(crate) fn prefix(identifier: &str, subtask: usize, parallelism: usize) -> String {
    let mut p = identifier.to_string();
    if parallelism > 1 {
        if !p.is_empty() {
            p.push(':');
        }
        p.push_str(&(subtask + 1).to_string());
    }
    if !p.is_empty() {
        p.push_str("> ");
    }
    p
}

pub(crate) struct PrintSink {
    table: String,
    encoder: RowStringEncoder,
    stderr: bool,
    buf: Vec<u8>,
}

impl PrintSink {
    pub(crate) fn new(ctx: &SinkContext, cfg: PrintConfig) -> Result<Self, ConnectorError> {
        let types = column_types_nested(ctx.schema.fields(), "print")
            .map_err(|e| ConnectorError::InvalidOption { table: ctx.table.clone(), message: e.to_string() })?;
        Ok(PrintSink {
            table: ctx.table.clone(),
            encoder: RowStringEncoder::new(types, prefix(&cfg.identifier, ctx.subtask, ctx.parallelism)),
            stderr: cfg.stderr,
            buf: Vec::new(),
        })
    }
}

impl SinkWriter for PrintSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.buf.clear();
        self.encoder
            .encode(batch, &mut self.buf)
            .map_err(|e| ConnectorError::Batch { table: self.table.clone(), source: e.into() })?;
        let res = if self.stderr {
            std::io::stderr().lock().write_all(&self.buf)
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(&self.buf).and_then(|_| out.flush())
        };
        res.map_err(|e| ConnectorError::Io {
            table: self.table.clone(),
            path: if self.stderr { "<stderr>" } else { "<stdout>" }.into(),
            source: e,
        })
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        let res = if self.stderr { std::io::stderr().flush() } else { std::io::stdout().flush() };
        res.map_err(|e| ConnectorError::Io { table: self.table.clone(), path: "<stdout>".into(), source: e })
    }

    /// Rows are printed as they arrive: at-least-once, as in Flink (rows
    /// printed after the last completed checkpoint are printed again after a
    /// restore). Nothing to commit.
    fn pre_commit(&mut self, _checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        Ok(Vec::new())
    }

    fn commit(&mut self, _committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_flink() {
        assert_eq!(prefix("", 0, 1), "");
        assert_eq!(prefix("tag", 0, 1), "tag> ");
        assert_eq!(prefix("", 1, 3), "2> ");
        assert_eq!(prefix("tag", 2, 3), "tag:3> ");
    }
}
