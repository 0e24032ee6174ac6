//! Tables declared by `CREATE TABLE`, resolved into Arrow schemas and planned
//! expressions for computed columns and the watermark.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion_common::{DFSchema, DFSchemaRef};
use datafusion_expr::ExprSchemable;
use sluice_api::columns;

use crate::error::{Position, SqlError};
use crate::expr::{Expr, ExprPlanner};
use crate::parser::{ColumnKind, CreateTable};
use crate::types;

/// The formats whose records are changes of rows (Flink's CDC formats).
pub const CHANGELOG_FORMATS: [&str; 3] = ["debezium-json", "canal-json", "maxwell-json"];

/// A table of the job.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    /// `WITH (...)` options, as written.
    pub options: BTreeMap<String, String>,
    /// The physical columns: what a source reads, and, without `VIRTUAL`
    /// metadata columns, what a sink writes ([`TableDef::sink_schema`]).
    /// Metadata columns are marked in their field's metadata map
    /// ([`sluice_api::columns`]).
    pub physical: SchemaRef,
    /// Every column, physical and computed, in declaration order.
    pub schema: DFSchemaRef,
    /// For each column of `schema`, its value over `physical`: a column reference
    /// or the computed expression.
    pub columns: Vec<Expr>,
    /// The physical schema as a DataFusion schema, which `columns` refer to.
    pub physical_df: DFSchemaRef,
    pub watermark: Option<WatermarkSpec>,
    /// `PRIMARY KEY (...) NOT ENFORCED`: its columns, in order; empty without one.
    /// Also in `physical`'s metadata ([`sluice_api::columns::PRIMARY_KEY`]).
    pub primary_key: Vec<String>,
    pub position: Position,
    /// What the job's data policy did to the table as its queries read it:
    /// `schema` and `columns` are already masked, and the row filter runs first.
    pub policy: crate::policy::TablePolicy,
    /// The rows of a `VALUES` clause (see `planner::values`), which the engine
    /// emits instead of reading a connector; `None` for a declared table.
    pub rows: Option<arrow::record_batch::RecordBatch>,
}

/// `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct WatermarkSpec {
    /// Index of the time-attribute column in the table's full schema.
    pub column: usize,
    /// The watermark expression over the full schema.
    pub expr: Expr,
    /// The declared delay when the expression is `column - INTERVAL ...`, for display.
    pub text: String,
}

impl TableDef {
    pub fn connector(&self) -> &str {
        self.options.get("connector").map(String::as_str).unwrap_or("")
    }

    /// The changelog format a table's rows are read in (`debezium-json`,
    /// `canal-json` or `maxwell-json`), whose rows are inserts, updates and
    /// deletes: the table is an updating relation.
    pub fn changelog_format(&self) -> Option<&str> {
        let f = self.options.get("format").or_else(|| self.options.get("value.format")).map(|f| f.trim())?;
        CHANGELOG_FORMATS.contains(&f).then_some(f)
    }

    /// Whether a sink of this table takes an updating stream: the connectors
    /// in [`crate::UPDATING_SINKS`], and a `kafka` or `filesystem` table in a
    /// changelog format, which writes each row's kind into its record (as
    /// Flink's formats declare a changelog mode that the sink adopts).
    pub fn takes_updates(&self) -> bool {
        crate::UPDATING_SINKS.contains(&self.connector())
            || (matches!(self.connector(), "kafka" | "filesystem") && self.changelog_format().is_some())
    }

    /// The columns a sink writes and an `INSERT` provides: the physical ones
    /// without `VIRTUAL` metadata columns, as in Flink.
    pub fn sink_schema(&self) -> SchemaRef {
        if !self.physical.fields().iter().any(|f| columns::is_virtual(f.metadata())) {
            return self.physical.clone();
        }
        let fields: Vec<_> =
            self.physical.fields().iter().filter(|f| !columns::is_virtual(f.metadata())).cloned().collect();
        Arc::new(Schema::new(fields).with_metadata(self.physical.metadata().clone()))
    }

    /// The full schema's rowtime column, when a watermark is declared.
    pub fn rowtime(&self) -> Option<usize> {
        self.watermark.as_ref().map(|w| w.column)
    }
}

pub(crate) fn define_table(ct: &CreateTable, exprs: &ExprPlanner, tz: &str) -> Result<TableDef, SqlError> {
    let mut physical_fields = Vec::new();
    for c in &ct.columns {
        let (data_type, not_null, metadata) = match &c.kind {
            ColumnKind::Physical { data_type, not_null } => (data_type, not_null, None),
            ColumnKind::Metadata { data_type, not_null, key, is_virtual } => {
                (data_type, not_null, Some((key, *is_virtual)))
            }
            ColumnKind::Computed(_) => continue,
        };
        let t = types::to_arrow(data_type, tz)
            .map_err(|m| SqlError::new(c.position, format!("column `{}` of table `{}`: {m}", c.name, ct.name)))?;
        if physical_fields.iter().any(|f: &Field| f.name() == &c.name) {
            return Err(SqlError::new(c.position, format!("table `{}` declares column `{}` twice", ct.name, c.name)));
        }
        let mut field = Field::new(&c.name, t, !not_null);
        if let Some((key, is_virtual)) = metadata {
            let mut m = HashMap::from([(columns::METADATA_KEY.to_string(), key.clone())]);
            if is_virtual {
                m.insert(columns::METADATA_VIRTUAL.to_string(), "true".to_string());
            }
            field = field.with_metadata(m);
        }
        physical_fields.push(field);
    }
    let mut physical = Schema::new(physical_fields);
    let mut primary_key = Vec::new();
    if let Some((cols, at)) = &ct.primary_key {
        for c in cols {
            let ok = physical.field_with_name(c).is_ok_and(|f| columns::metadata_key(f.metadata()).is_none());
            if !ok {
                return Err(SqlError::new(
                    *at,
                    format!("PRIMARY KEY of table `{}`: column `{c}` is not a physical column of the table", ct.name),
                ));
            }
            if primary_key.contains(c) {
                return Err(SqlError::new(*at, format!("PRIMARY KEY of table `{}` names `{c}` twice", ct.name)));
            }
            primary_key.push(c.clone());
        }
        physical = physical.with_metadata(HashMap::from([(columns::PRIMARY_KEY.to_string(), primary_key.join(","))]));
    }
    let physical = Arc::new(physical);
    let physical_df = Arc::new(
        DFSchema::try_from_qualified_schema(ct.name.as_str(), &physical)
            .map_err(|e| SqlError::new(ct.position, e.to_string()))?,
    );
    let mut columns = Vec::new();
    let mut fields = Vec::new();
    for c in &ct.columns {
        let (e, field) = match &c.kind {
            ColumnKind::Physical { .. } | ColumnKind::Metadata { .. } => {
                let idx = physical.index_of(&c.name).map_err(|e| SqlError::new(c.position, e.to_string()))?;
                let (q, f) = physical_df.qualified_field(idx);
                // The metadata marker is for connectors; queries see a plain column.
                let field = f.as_ref().clone().with_metadata(HashMap::new());
                (Expr::Column(datafusion_common::Column::new(q.cloned(), f.name())), field)
            }
            ColumnKind::Computed(ast) => {
                let e = exprs.plan(ast, &physical_df, c.position).map_err(|err| {
                    SqlError::new(
                        err.position,
                        format!("computed column `{}` of table `{}`: {}", c.name, ct.name, err.message),
                    )
                })?;
                let t = e.get_type(&physical_df).map_err(|err| SqlError::new(c.position, err.to_string()))?;
                (e, Field::new(&c.name, t, true))
            }
        };
        if fields.iter().any(|f: &Field| f.name() == &c.name) {
            return Err(SqlError::new(c.position, format!("table `{}` declares column `{}` twice", ct.name, c.name)));
        }
        columns.push(e);
        fields.push(field);
    }
    let full = Schema::new(fields);
    let schema = Arc::new(
        DFSchema::try_from_qualified_schema(ct.name.as_str(), &full)
            .map_err(|e| SqlError::new(ct.position, e.to_string()))?,
    );
    let watermark = match &ct.watermark {
        None => None,
        Some(w) => {
            let column = full.index_of(&w.column).map_err(|_| {
                SqlError::new(
                    w.position,
                    format!("WATERMARK FOR `{}`: table `{}` has no such column", w.column, ct.name),
                )
            })?;
            let col_type = full.field(column).data_type();
            if !matches!(col_type, DataType::Timestamp(_, _)) {
                return Err(SqlError::new(
                    w.position,
                    format!(
                        "WATERMARK FOR `{}`: the column is {}, but a time attribute must be TIMESTAMP(3) or TIMESTAMP_LTZ(3)",
                        w.column,
                        types::flink_name(col_type)
                    ),
                ));
            }
            let expr = exprs.plan(&w.expr, &schema, w.position)?;
            let t = expr.get_type(&schema).map_err(|e| SqlError::new(w.position, e.to_string()))?;
            if !matches!(t, DataType::Timestamp(_, _)) {
                return Err(SqlError::new(
                    w.position,
                    format!(
                        "the WATERMARK expression must be a timestamp, such as `{} - INTERVAL '5' SECOND`, not {}",
                        w.column,
                        types::flink_name(&t)
                    ),
                ));
            }
            Some(WatermarkSpec { column, expr, text: w.expr.to_string() })
        }
    };
    Ok(TableDef {
        primary_key,
        name: ct.name.clone(),
        options: ct.options.iter().cloned().collect(),
        physical,
        schema,
        columns,
        physical_df,
        watermark,
        position: ct.position,
        policy: Default::default(),
        rows: None,
    })
}
