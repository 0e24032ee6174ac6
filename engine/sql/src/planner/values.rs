//! `VALUES (...), (...)`: a bounded relation of constant rows, as in
//! `INSERT INTO t VALUES (...)` or `FROM (VALUES (...)) AS v(a, b)`.
//!
//! Every expression is evaluated once, at planning: VALUES rows are constant
//! (Flink plans them as a `Values` node). A column's type is the common type
//! of its rows, as for UNION ALL; its name is Flink's `EXPR$i` until an alias
//! renames it. The rows become a [`TableDef`] whose `rows` the engine emits
//! from one source subtask; such a table reads nothing and is not a dataset
//! of the job's lineage.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion_common::{DFSchema, ScalarValue};
use datafusion_expr::ColumnarValue;
use sqlparser::ast::{Expr as SqlExpr, Values};

use super::Planner;
use crate::catalog::TableDef;
use crate::error::{Position, SqlError};
use crate::expr::{Expr, physical};
use crate::logical::{PlanNode, Rel};
use crate::parser::expr_position;
use crate::types::flink_name;

/// The `connector` option of a VALUES table.
pub const VALUES_CONNECTOR: &str = "values";

impl Planner {
    pub(super) fn plan_values(&mut self, values: &Values, pos: Position) -> Result<Rel, SqlError> {
        let empty = DFSchema::empty();
        let width = values.rows.first().map(|r| r.content.len()).unwrap_or(0);
        let mut rows: Vec<Vec<ScalarValue>> = Vec::with_capacity(values.rows.len());
        for (i, row) in values.rows.iter().enumerate() {
            if row.content.len() != width {
                return Err(SqlError::new(
                    row.content.first().map(|e| expr_position(e, pos)).unwrap_or(pos),
                    format!("VALUES row {} has {} columns, the first row has {width}", i + 1, row.content.len()),
                ));
            }
            rows.push(row.content.iter().map(|e| self.constant(e, &empty, pos)).collect::<Result<_, _>>()?);
        }
        if width == 0 {
            return Err(SqlError::new(pos, "VALUES needs at least one column"));
        }
        let mut fields = Vec::with_capacity(width);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(width);
        for c in 0..width {
            let t = common_type(rows.iter().map(|r| r[c].data_type()), c, pos)?;
            let name = format!("EXPR${c}");
            let cells = rows
                .iter()
                .map(|r| r[c].cast_to(&t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SqlError::new(pos, format!("VALUES column {}: {e}", c + 1)))?;
            let array = ScalarValue::iter_to_array(cells)
                .map_err(|e| SqlError::new(pos, format!("VALUES column {}: {e}", c + 1)))?;
            fields.push(Field::new(name, t, rows.iter().any(|r| r[c].is_null())));
            columns.push(array);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )
        .map_err(|e| SqlError::new(pos, format!("VALUES: {e}")))?;
        let name = format!("VALUES@{}:{}", pos.line, pos.column);
        let table = TableDef::constant(name, batch, pos).map_err(|e| SqlError::new(pos, format!("VALUES: {e}")))?;
        Ok(Rel {
            schema: table.schema.clone(),
            node: PlanNode::Source(Arc::new(table)),
            rowtime: None,
            updating: false,
            unique_key: None,
        })
    }

    /// The value of a constant expression.
    fn constant(&self, e: &SqlExpr, empty: &DFSchema, pos: Position) -> Result<ScalarValue, SqlError> {
        let epos = expr_position(e, pos);
        let planned = self.plan_expr(e, empty, pos)?;
        if let Expr::Literal(v, _) = &planned {
            return Ok(v.clone());
        }
        let fail = |m: String| SqlError::new(epos, format!("VALUES needs constant expressions: `{e}`: {m}"));
        let phys = physical(&planned, empty).map_err(|err| fail(err.to_string()))?;
        let one_row = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .map_err(|err| fail(err.to_string()))?;
        match phys.evaluate(&one_row).map_err(|err| fail(err.to_string()))? {
            ColumnarValue::Scalar(v) => Ok(v),
            ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0).map_err(|err| fail(err.to_string())),
        }
    }
}

/// The type of a VALUES column: its rows' common type (NULLs take the others').
fn common_type(types: impl Iterator<Item = DataType>, column: usize, pos: Position) -> Result<DataType, SqlError> {
    let mut acc: Option<DataType> = None;
    for t in types {
        acc = match acc {
            None => Some(t),
            Some(a) if a == t || t == DataType::Null => Some(a),
            Some(DataType::Null) => Some(t),
            Some(a) => Some(datafusion_expr::type_coercion::binary::comparison_coercion(&a, &t).ok_or_else(|| {
                SqlError::new(
                    pos,
                    format!(
                        "VALUES column {}: {} and {} have no common type",
                        column + 1,
                        flink_name(&a),
                        flink_name(&t)
                    ),
                )
            })?),
        };
    }
    Ok(match acc {
        Some(DataType::Null) | None => DataType::Null,
        Some(t) => t,
    })
}

impl TableDef {
    /// The table of a VALUES clause: its rows, emitted once.
    pub fn constant(name: String, rows: RecordBatch, position: Position) -> Result<TableDef, String> {
        let physical = rows.schema();
        let df = Arc::new(DFSchema::try_from(physical.as_ref().clone()).map_err(|e| e.to_string())?);
        let columns = physical
            .fields()
            .iter()
            .map(|f| Expr::Column(datafusion_common::Column::new_unqualified(f.name())))
            .collect();
        Ok(TableDef {
            name,
            options: BTreeMap::from([("connector".to_string(), VALUES_CONNECTOR.to_string())]),
            physical,
            schema: df.clone(),
            columns,
            physical_df: df,
            watermark: None,
            primary_key: vec![],
            position,
            policy: Default::default(),
            rows: Some(rows),
        })
    }
}
