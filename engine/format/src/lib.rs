//! Flink's text forms of SQL values: numbers as Java writes and reads them,
//! timestamps as Flink's formats and `Row.toString()` show them, and whole rows
//! as the print sink shows them.
//!
//! Both the SQL front end (`CAST(x AS STRING)`) and the connectors (json, csv,
//! print) must write values exactly as Flink does, so the code lives here, with
//! no dependency beyond Arrow: the SQL crate, which the operator links to
//! validate jobs, gets no I/O from it.
//!
//! - [`number`]: FLOAT and DOUBLE as `Float.toString` and `Double.toString`, DECIMAL as `BigDecimal`, and
//!   Java's parsing of booleans, doubles and decimals;
//! - [`time`]: TIMESTAMP and TIMESTAMP_LTZ text, and its parser;
//! - [`types`]: the column types these forms cover, from Arrow types;
//! - [`columns`]: a batch's columns, downcast by those types;
//! - [`nested`]: ARRAY and MAP values as `Row.toString()` shows them;
//! - [`row`]: Flink's `Row.toString()` of a row (`+I[1, abc, null]`).
//! - [`changelog`]: row kinds (`+I`, `-U`, `+U`, `-D`) and how a batch carries them.

pub mod changelog;
pub mod columns;
pub mod nested;
pub mod number;
pub mod row;
pub mod time;
pub mod types;

pub use number::{java_double, java_float};
