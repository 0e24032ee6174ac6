//! Errors of the SQL front end. Every error carries the position in the job text
//! where it was found, so that tools can print `job.sql:LINE:COL: message`.

use std::fmt;

/// A 1-based line and column in the job text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<sqlparser::tokenizer::Location> for Position {
    fn from(l: sqlparser::tokenizer::Location) -> Self {
        Position { line: l.line, column: l.column }
    }
}

/// An error in a job's SQL: syntax, an unknown name, a type error, or SQL that
/// Sluice does not support (yet). The message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub position: Position,
    pub message: String,
}

impl SqlError {
    pub fn new(position: impl Into<Position>, message: impl Into<String>) -> Self {
        SqlError { position: position.into(), message: message.into() }
    }

    /// Formats the error the way compilers do: `FILE:LINE:COL: message`.
    pub fn render(&self, file: &str) -> String {
        if self.position.line == 0 {
            // Not in the job text: the data policy's errors.
            return format!("{file}: {}", self.message);
        }
        format!("{file}:{}:{}: {}", self.position.line, self.position.column, self.message)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position.line == 0 {
            return f.write_str(&self.message);
        }
        write!(f, "line {}, column {}: {}", self.position.line, self.position.column, self.message)
    }
}

impl std::error::Error for SqlError {}

/// A SQL type that has no Arrow representation in Sluice. Callers add where it
/// was found: the column and its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("TIMESTAMP({precision}) is not supported: Sluice keeps timestamps in milliseconds; use TIMESTAMP(3)")]
    TimestampPrecision { precision: u64 },
    #[error("DECIMAL({precision}, {scale}) is out of range: precision is 1..38 and scale at most the precision")]
    DecimalRange { precision: u64, scale: u64 },
    #[error("TIMESTAMP_LTZ takes a precision, as in TIMESTAMP_LTZ(3)")]
    LtzPrecision(#[source] std::num::ParseIntError),
    #[error("type {name} is not supported; supported types are {}", crate::types::SUPPORTED_TYPES)]
    Unsupported { name: String },
}

/// A planned expression that DataFusion could not lower to a physical one: an
/// internal error, since the planner typed the expression already.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LowerError(#[from] datafusion_common::DataFusionError);

/// Turns a sqlparser error, whose text ends with `at Line: L, Column: C`, into a
/// positioned error; `fallback` is used when the text carries no position.
pub(crate) fn from_parser_error(e: sqlparser::parser::ParserError, fallback: Position) -> SqlError {
    let text = match e {
        sqlparser::parser::ParserError::ParserError(s) | sqlparser::parser::ParserError::TokenizerError(s) => s,
        sqlparser::parser::ParserError::RecursionLimitExceeded => {
            return SqlError::new(fallback, "the statement is nested too deeply");
        }
    };
    match text.rfind(" at Line: ") {
        Some(idx) => {
            let (msg, loc) = text.split_at(idx);
            let mut nums = loc
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse::<u64>().ok());
            let line = nums.next().unwrap_or(fallback.line);
            let column = nums.next().unwrap_or(fallback.column);
            SqlError::new(Position { line, column }, format!("syntax error: {}", msg.trim()))
        }
        None => SqlError::new(fallback, format!("syntax error: {text}")),
    }
}
