//! Flink's JSON constructors, and `JSON_VALUE ... RETURNING type`.
//!
//! - `JSON_OBJECT(k VALUE v, ... [NULL | ABSENT ON NULL])`: STRING, an object
//!   with its keys sorted (as Flink writes them); NULL values are kept unless
//!   ABSENT ON NULL.
//! - `JSON_ARRAY(v, ... [NULL | ABSENT ON NULL])`: STRING; NULL elements are
//!   dropped unless NULL ON NULL.
//! - `JSON_STRING(v)`: STRING, `v` as JSON; NULL for NULL.
//! - `JSON_VALUE(json, path RETURNING INT|DOUBLE|BOOLEAN|STRING)`: the value cast
//!   to the type, NULL when it does not convert.
//!
//! A JSON_OBJECT or JSON_ARRAY inside another is inserted as JSON, not as a
//! string. Values are written as Flink writes them: a DOUBLE as Java's
//! `BigDecimal.valueOf(d)` prints it (`1.0E+10`, `0.000010`), a TIMESTAMP as
//! ISO text, a MAP as an object.
//!
//! The front end rewrites the SQL forms into calls of the internal functions
//! here, whose first argument says how to treat NULLs and which values are JSON.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion_common::Result;
use sqlparser::ast::{
    CastKind, Expr as SqlExpr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments,
    Ident, JsonNullClause, Value,
};

use super::udf::{Ctx, Def, exec_err, strings};

const JSON_OBJECT: &str = "__flink_json_object";
const JSON_ARRAY: &str = "__flink_json_array";

pub const DEFS: &[Def] = &[
    Def {
        name: JSON_OBJECT,
        usage: "(key VALUE value, ...)",
        min_args: 1,
        max_args: usize::MAX,
        volatile: false,
        ret: |_, _, _, _| Ok(DataType::Utf8),
        eval: json_object,
    },
    Def {
        name: JSON_ARRAY,
        usage: "(value, ...)",
        min_args: 1,
        max_args: usize::MAX,
        volatile: false,
        ret: |_, _, _, _| Ok(DataType::Utf8),
        eval: json_array,
    },
    Def {
        name: "json_string",
        usage: "(value)",
        min_args: 1,
        max_args: 1,
        volatile: false,
        ret: |_, _, _, _| Ok(DataType::Utf8),
        eval: json_string,
    },
];

fn call(name: &str, args: Vec<SqlExpr>) -> SqlExpr {
    crate::dialect::call(Ident::new(name), args)
}

/// Whether `e` is a JSON constructor already rewritten, whose text is JSON.
fn is_json(e: &SqlExpr) -> bool {
    matches!(e, SqlExpr::Function(f) if [JSON_OBJECT, JSON_ARRAY].contains(&f.name.to_string().as_str()))
}

/// The call a JSON function of Flink's syntax is planned as, or None for
/// other calls. Errors are messages about the SQL as written.
pub fn rewrite(f: &Function) -> Option<std::result::Result<SqlExpr, String>> {
    let name = f.name.to_string().to_ascii_uppercase();
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let absent = list.clauses.iter().find_map(|c| match c {
        FunctionArgumentClause::JsonNullClause(JsonNullClause::AbsentOnNull) => Some(true),
        FunctionArgumentClause::JsonNullClause(JsonNullClause::NullOnNull) => Some(false),
        _ => None,
    });
    let returning = list.clauses.iter().find_map(|c| match c {
        FunctionArgumentClause::JsonReturningClause(r) => Some(r.data_type.clone()),
        _ => None,
    });
    match name.as_str() {
        "JSON_OBJECT" => {
            let mut pairs = Vec::new();
            for a in &list.args {
                match a {
                    FunctionArg::ExprNamed { name, arg: FunctionArgExpr::Expr(v), .. } => {
                        pairs.push(((*name).clone(), v.clone()))
                    }
                    FunctionArg::Named { name, arg: FunctionArgExpr::Expr(v), .. } => {
                        pairs.push((SqlExpr::Value(Value::SingleQuotedString(name.value.clone()).into()), v.clone()))
                    }
                    _ => return Some(Err("JSON_OBJECT takes key VALUE value pairs".to_string())),
                }
            }
            let flags: String = pairs.iter().map(|(_, v)| if is_json(v) { 'j' } else { 'v' }).collect();
            let mode = format!("{}{flags}", if absent.unwrap_or(false) { 'A' } else { 'N' });
            let mut args = vec![SqlExpr::Value(Value::SingleQuotedString(mode).into())];
            args.extend(pairs.into_iter().flat_map(|(k, v)| [k, v]));
            Some(Ok(call(JSON_OBJECT, args)))
        }
        "JSON_ARRAY" => {
            let values: Vec<SqlExpr> = list
                .args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            let flags: String = values.iter().map(|v| if is_json(v) { 'j' } else { 'v' }).collect();
            let mode = format!("{}{flags}", if absent.unwrap_or(true) { 'A' } else { 'N' });
            let mut args = vec![SqlExpr::Value(Value::SingleQuotedString(mode).into())];
            args.extend(values);
            Some(Ok(call(JSON_ARRAY, args)))
        }
        "JSON_VALUE" => {
            let t = returning?;
            let mut plain = f.clone();
            if let FunctionArguments::List(l) = &mut plain.args {
                l.clauses.retain(|c| !matches!(c, FunctionArgumentClause::JsonReturningClause(_)));
            }
            Some(Ok(SqlExpr::Cast {
                kind: CastKind::TryCast,
                expr: Box::new(SqlExpr::Function(plain)),
                data_type: t,
                array: false,
                format: None,
            }))
        }
        _ => None,
    }
}

/// The JSON text of row `i` of `a`, or None for NULL.
fn json_text(a: &ArrayRef, i: usize) -> Result<Option<String>> {
    if a.is_null(i) {
        return Ok(None);
    }
    let mut out = String::new();
    match a.data_type() {
        DataType::Null => return Ok(None),
        DataType::Boolean => out.push_str(if a.as_boolean().value(i) { "true" } else { "false" }),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = strings(a)?;
            super::json::write_str(&mut out, s.value(i));
        }
        DataType::Float64 | DataType::Float32 => {
            let f = arrow::compute::cast(a, &DataType::Float64)?;
            out.push_str(&java_big_decimal(&sluice_format::java_double(
                f.as_primitive::<arrow::datatypes::Float64Type>().value(i),
            )));
        }
        DataType::Timestamp(_, _) => {
            let t = arrow::compute::cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            let ms = t.as_primitive::<arrow::datatypes::TimestampMillisecondType>().value(i);
            let Some(dt) = chrono::DateTime::from_timestamp_millis(ms) else { return Ok(None) };
            let millis = format!("{:03}", ms.rem_euclid(1000));
            let frac = millis.trim_end_matches('0');
            let sep = if frac.is_empty() { "" } else { "." };
            let _ = write!(out, "\"{}{sep}{frac}\"", dt.naive_utc().format("%Y-%m-%dT%H:%M:%S"));
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let items = a.as_list::<i32>().value(i);
            out.push('[');
            for j in 0..items.len() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(json_text(&items, j)?.as_deref().unwrap_or("null"));
            }
            out.push(']');
        }
        DataType::Map(_, _) => {
            let m = a.as_map();
            let entries = m.value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            let keys = super::to_flink_string(keys, "UTC")?;
            let keys = keys.as_string::<i32>();
            let mut fields = Vec::new();
            for j in 0..entries.len() {
                fields.push((keys.value(j).to_string(), json_text(values, j)?.unwrap_or_else(|| "null".into())));
            }
            fields.sort_by(|x, y| x.0.cmp(&y.0));
            out.push('{');
            for (k, (key, v)) in fields.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                super::json::write_str(&mut out, key);
                out.push(':');
                out.push_str(v);
            }
            out.push('}');
        }
        _ => {
            let s = arrow::compute::cast(a, &DataType::Utf8)?;
            out.push_str(s.as_string::<i32>().value(i));
        }
    }
    Ok(Some(out))
}

/// Java's `new BigDecimal(text).toString()` of a Java double's text:
/// scientific notation only for a negative scale or a small exponent.
fn java_big_decimal(text: &str) -> String {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (mantissa, exp) = match body.split_once('E') {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let trimmed = digits.trim_start_matches('0');
    let unscaled = if trimmed.is_empty() { "0" } else { trimmed };
    let scale = frac.len() as i64 - exp;
    let adjusted = -scale + (unscaled.len() as i64 - 1);
    let sign = if neg && unscaled != "0" { "-" } else { "" };
    if scale >= 0 && adjusted >= -6 {
        let scale = scale as usize;
        let padded = format!("{unscaled:0>width$}", width = scale + 1);
        let (i, f) = padded.split_at(padded.len() - scale);
        if f.is_empty() { format!("{sign}{i}") } else { format!("{sign}{i}.{f}") }
    } else {
        let (first, rest) = unscaled.split_at(1);
        let point = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        format!("{sign}{first}{point}E{}{adjusted}", if adjusted >= 0 { "+" } else { "" })
    }
}

/// The NULL mode and per-value JSON flags the rewrite passed first.
fn mode(args: &[ArrayRef]) -> Result<(bool, Vec<bool>)> {
    let m = strings(&args[0])?;
    let m = if m.is_empty() || m.is_null(0) { "N" } else { m.value(0) };
    Ok((m.starts_with('A'), m.chars().skip(1).map(|c| c == 'j').collect()))
}

fn value_text(a: &ArrayRef, i: usize, raw: bool) -> Result<Option<String>> {
    if raw {
        return Ok((!a.is_null(i)).then(|| a.as_string::<i32>().value(i).to_string()));
    }
    json_text(a, i)
}

fn json_object(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (absent, raw) = mode(args)?;
    let n = args[0].len();
    let keys: Vec<StringArray> = args[1..].iter().step_by(2).map(strings).collect::<Result<_>>()?;
    let values: Vec<&ArrayRef> = args[2..].iter().step_by(2).collect();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut fields = Vec::new();
        for (k, (key, v)) in keys.iter().zip(&values).enumerate() {
            if key.is_null(i) {
                return Err(exec_err("json_object", "takes keys that are not NULL"));
            }
            match value_text(v, i, raw.get(k).copied().unwrap_or(false))? {
                Some(t) => fields.push((key.value(i).to_string(), t)),
                None if !absent => fields.push((key.value(i).to_string(), "null".to_string())),
                None => {}
            }
        }
        fields.sort_by(|x, y| x.0.cmp(&y.0));
        let mut s = String::from("{");
        for (k, (key, v)) in fields.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            super::json::write_str(&mut s, key);
            s.push(':');
            s.push_str(v);
        }
        s.push('}');
        out.push(Some(s));
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn json_array(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (absent, raw) = mode(args)?;
    let n = args[0].len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut items = Vec::new();
        for (k, v) in args[1..].iter().enumerate() {
            match value_text(v, i, raw.get(k).copied().unwrap_or(false))? {
                Some(t) => items.push(t),
                None if !absent => items.push("null".to_string()),
                None => {}
            }
        }
        out.push(Some(format!("[{}]", items.join(","))));
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn json_string(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let out: StringArray = (0..args[0].len()).map(|i| json_text(&args[0], i)).collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::java_big_decimal;

    #[test]
    fn doubles_print_as_big_decimals() {
        for (java, want) in [
            ("1.5", "1.5"),
            ("1.0E10", "1.0E+10"),
            ("1.0E-5", "0.000010"),
            ("-0.0", "0.0"),
            ("1.0E-7", "1.0E-7"),
            ("123.0", "123.0"),
        ] {
            assert_eq!(java_big_decimal(java), want, "{java}");
        }
    }
}
