//! Flink's scalar functions that DataFusion lacks or defines differently.
//!
//! Families, each a table of `udf::Def`s: `datetime`, `string`, `encode`,
//! `hash`, `math`, `array`, `map`, `json` (queries), `json_build`
//! (constructors and `RETURNING`), `printf`. The functions below, older, are
//! defined in this file.
//!
//! - `REGEXP_EXTRACT(str, regex [, index])`: group `index` (default 0, the whole
//!   match) of the first match, NULL when there is none.
//! - `DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm')`: Java `SimpleDateFormat` patterns.
//! - `TO_TIMESTAMP(str [, format])`: parses into TIMESTAMP(3); NULL on bad input.
//! - `TO_TIMESTAMP_LTZ(n, precision)`: epoch seconds (0) or milliseconds (3).
//! - `SPLIT_INDEX(str, sep, index)`: the 0-based field, NULL when absent.
//! - `CONCAT(a, b, ...)`: NULL if any argument is NULL (DataFusion skips NULLs).
//! - casts to STRING: Flink's text for timestamps (`2024-01-01 00:00:00.000`),
//!   doubles (Java's `Double.toString`) and booleans (`TRUE`).
//! - `__single_value(n, v)`: `v`, or an error when the count `n` is above 1;
//!   the planner's check that a scalar subquery returns one row (Flink's
//!   `SINGLE_VALUE` aggregate).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDateTime, TimeZone};
use datafusion_common::{DataFusionError, Result, ScalarValue};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

mod array;
mod datetime;
mod encode;
mod hash;
mod json;
mod json_build;
mod map;
mod math;
mod printf;
mod string;
mod udf;

pub use datetime::LOCALTIMESTAMP;
pub use json_build::rewrite as rewrite_json_call;

/// All Flink functions, for the given session time zone.
pub fn flink_functions(tz: &str) -> Vec<Arc<ScalarUDF>> {
    let mut all = vec![
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::RegexpExtract, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::DateFormat, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::ToTimestamp, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::ToTimestampLtz, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::Concat, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::ToString, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::SplitIndex, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::Proctime, tz))),
        Arc::new(ScalarUDF::new_from_impl(FlinkFn::new(Kind::SingleValue, tz))),
    ];
    let families = [
        datetime::DEFS,
        array::DEFS,
        string::DEFS,
        encode::DEFS,
        hash::DEFS,
        json::DEFS,
        json_build::DEFS,
        map::DEFS,
        math::DEFS,
        printf::DEFS,
    ];
    all.extend(families.iter().flat_map(|defs| defs.iter()).map(|d| udf::udf(*d, tz)));
    all
}

/// The name of the cast-to-string function the planner substitutes for casts.
pub const TO_STRING: &str = "__flink_to_string";

/// The name of the function that checks a scalar subquery's row count.
pub const SINGLE_VALUE: &str = "__single_value";

/// The error of a scalar subquery that returned more than one row.
pub const SINGLE_VALUE_ERROR: &str =
    "a scalar subquery returned more than one row (Flink: SingleValueAggFunction received more than one element)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    RegexpExtract,
    DateFormat,
    ToTimestamp,
    ToTimestampLtz,
    Concat,
    ToString,
    SplitIndex,
    Proctime,
    SingleValue,
}

/// The name of `PROCTIME()`, which a table's computed column calls to declare
/// a processing-time attribute.
pub const PROCTIME: &str = "proctime";

#[derive(Debug, PartialEq, Eq, Hash)]
struct FlinkFn {
    kind: Kind,
    tz: String,
    signature: Signature,
}

impl FlinkFn {
    fn new(kind: Kind, tz: &str) -> Self {
        let signature = match kind {
            // The time now: never folded into a constant.
            Kind::Proctime => Signature::exact(vec![], Volatility::Volatile),
            _ => Signature::variadic_any(Volatility::Immutable),
        };
        FlinkFn { kind, tz: tz.to_string(), signature }
    }
}

fn plan_err(msg: String) -> DataFusionError {
    DataFusionError::Plan(msg)
}

impl ScalarUDFImpl for FlinkFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::RegexpExtract => "regexp_extract",
            Kind::DateFormat => "date_format",
            Kind::ToTimestamp => "to_timestamp",
            Kind::ToTimestampLtz => "to_timestamp_ltz",
            Kind::Concat => "concat",
            Kind::ToString => TO_STRING,
            Kind::SplitIndex => "split_index",
            Kind::Proctime => PROCTIME,
            Kind::SingleValue => SINGLE_VALUE,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let n = args.len();
        let arity = |lo: usize, hi: usize, usage: &str| {
            if n < lo || n > hi {
                Err(plan_err(format!("{} takes {usage}", self.name().to_uppercase())))
            } else {
                Ok(())
            }
        };
        match self.kind {
            Kind::RegexpExtract => {
                arity(2, 3, "(string, regex [, group index])")?;
                Ok(DataType::Utf8)
            }
            Kind::DateFormat => {
                arity(2, 2, "(timestamp, format)")?;
                Ok(DataType::Utf8)
            }
            Kind::ToTimestamp => {
                arity(1, 2, "(string [, format])")?;
                Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
            }
            Kind::ToTimestampLtz => {
                arity(1, 2, "(epoch number, precision 0 or 3)")?;
                if !args[0].is_numeric() && !args[0].is_null() {
                    return Err(plan_err(format!(
                        "TO_TIMESTAMP_LTZ takes a numeric epoch value, not {}",
                        crate::types::flink_name(&args[0])
                    )));
                }
                Ok(DataType::Timestamp(TimeUnit::Millisecond, Some(self.tz.as_str().into())))
            }
            Kind::Concat => {
                arity(1, usize::MAX, "one or more strings")?;
                Ok(DataType::Utf8)
            }
            Kind::ToString => {
                arity(1, 1, "one argument")?;
                Ok(DataType::Utf8)
            }
            Kind::SplitIndex => {
                arity(3, 3, "(string, separator, index)")?;
                Ok(DataType::Utf8)
            }
            Kind::Proctime => {
                arity(0, 0, "no arguments")?;
                Ok(DataType::Timestamp(TimeUnit::Millisecond, Some(self.tz.as_str().into())))
            }
            Kind::SingleValue => {
                arity(2, 2, "(row count, value)")?;
                Ok(args[1].clone())
            }
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(n)).collect::<Result<Vec<_>>>()?;
        let out: ArrayRef = match self.kind {
            Kind::RegexpExtract => regexp_extract(&arrays)?,
            Kind::DateFormat => date_format(&arrays, &self.tz)?,
            Kind::ToTimestamp => to_timestamp(&arrays)?,
            Kind::ToTimestampLtz => to_timestamp_ltz(&arrays, &self.tz)?,
            Kind::Concat => concat(&arrays)?,
            Kind::ToString => to_flink_string(&arrays[0], &self.tz)?,
            Kind::SplitIndex => split_index(&arrays)?,
            Kind::SingleValue => single_value(&arrays)?,
            Kind::Proctime => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                let tz: Arc<str> = self.tz.as_str().into();
                return Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(Some(now), Some(tz))));
            }
        };
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// `__single_value(n, v)`: `v`, unless a count is above 1.
fn single_value(args: &[ArrayRef]) -> Result<ArrayRef> {
    let counts = cast(&args[0], &DataType::Int64)?;
    if counts.as_primitive::<arrow::datatypes::Int64Type>().iter().any(|n| n.is_some_and(|n| n > 1)) {
        return Err(DataFusionError::Execution(SINGLE_VALUE_ERROR.to_string()));
    }
    Ok(args[1].clone())
}

fn utf8(a: &ArrayRef) -> Result<StringArray> {
    Ok(cast(a, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn regexp_extract(args: &[ArrayRef]) -> Result<ArrayRef> {
    let s = utf8(&args[0])?;
    let pat = utf8(&args[1])?;
    let idx = match args.get(2) {
        Some(a) => Some(cast(a, &DataType::Int64)?.as_primitive::<arrow::datatypes::Int64Type>().clone()),
        None => None,
    };
    let mut cache: Option<(String, regex::Regex)> = None;
    let mut b = StringBuilder::with_capacity(s.len(), 0);
    for i in 0..s.len() {
        if s.is_null(i) || pat.is_null(i) || idx.as_ref().is_some_and(|a| a.is_null(i)) {
            b.append_null();
            continue;
        }
        let p = pat.value(i);
        if cache.as_ref().is_none_or(|(cp, _)| cp != p) {
            let re = regex::Regex::new(p)
                .map_err(|e| plan_err(format!("REGEXP_EXTRACT: invalid regular expression '{p}': {e}")))?;
            cache = Some((p.to_string(), re));
        }
        let group = idx.as_ref().map(|a| a.value(i)).unwrap_or(0);
        let m = cache
            .as_ref()
            .and_then(|(_, re)| re.captures(s.value(i)))
            .and_then(|c| usize::try_from(group).ok().and_then(|g| if g < c.len() { c.get(g) } else { None }));
        match m {
            Some(m) => b.append_value(m.as_str()),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// Translates a Java `SimpleDateFormat` pattern into a chrono format string.
pub fn java_to_chrono(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            if i < chars.len() && chars[i] == '\'' {
                out.push('\'');
                i += 1;
                continue;
            }
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '%' {
                    out.push_str("%%");
                } else {
                    out.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let spec = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 1) => "%1f",
            ('S', 2) => "%2f",
            ('S', _) => "%3f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('D', _) => "%j",
            ('u', _) => "%u",
            ('Z', _) => "%z",
            ('X', _) => "%:z",
            ('z', _) => "%Z",
            _ => "",
        };
        out.push_str(spec);
        i += n;
    }
    out
}

fn local_naive(ms: i64, tz: Option<&str>) -> Option<NaiveDateTime> {
    let utc = DateTime::from_timestamp_millis(ms)?;
    match tz {
        None => Some(utc.naive_utc()),
        Some(tz) => {
            let tz: arrow::array::timezone::Tz = tz.parse().ok()?;
            Some(tz.from_utc_datetime(&utc.naive_utc()).naive_local())
        }
    }
}

fn timestamps(a: &ArrayRef) -> Result<(TimestampMillisecondArray, Option<String>)> {
    match a.data_type() {
        DataType::Timestamp(_, tz) => {
            let tz = tz.as_ref().map(|t| t.to_string());
            let c = cast(a, &DataType::Timestamp(TimeUnit::Millisecond, tz.as_deref().map(Into::into)))?;
            Ok((c.as_primitive::<arrow::datatypes::TimestampMillisecondType>().clone(), tz))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let t = to_timestamp(std::slice::from_ref(a))?;
            Ok((t.as_primitive::<arrow::datatypes::TimestampMillisecondType>().clone(), None))
        }
        other => {
            Err(plan_err(format!("DATE_FORMAT takes a TIMESTAMP or a STRING, not {}", crate::types::flink_name(other))))
        }
    }
}

fn date_format(args: &[ArrayRef], _tz: &str) -> Result<ArrayRef> {
    let (ts, tz) = timestamps(&args[0])?;
    let fmt = utf8(&args[1])?;
    let mut b = StringBuilder::with_capacity(ts.len(), ts.len() * 16);
    let mut cache: Option<(String, String)> = None;
    for i in 0..ts.len() {
        if ts.is_null(i) || fmt.is_null(i) {
            b.append_null();
            continue;
        }
        let f = fmt.value(i);
        if cache.as_ref().is_none_or(|(j, _)| j != f) {
            cache = Some((f.to_string(), java_to_chrono(f)));
        }
        let chrono_fmt = cache.as_ref().map(|(_, c)| c.as_str()).unwrap_or_default();
        match local_naive(ts.value(i), tz.as_deref()) {
            Some(dt) => {
                use std::fmt::Write;
                let mut s = String::new();
                if write!(s, "{}", dt.format(chrono_fmt)).is_err() {
                    return Err(plan_err(format!("DATE_FORMAT: invalid format '{f}'")));
                }
                b.append_value(s);
            }
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// Parses Flink's default timestamp text: `yyyy-MM-dd HH:mm:ss[.SSS]`, also with
/// a `T`, or a bare date.
pub fn parse_default_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
}

fn to_timestamp(args: &[ArrayRef]) -> Result<ArrayRef> {
    let s = utf8(&args[0])?;
    let fmt = match args.get(1) {
        Some(f) => Some(utf8(f)?),
        None => None,
    };
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || fmt.as_ref().is_some_and(|f| f.is_null(i)) {
            out.push(None);
            continue;
        }
        let parsed = match &fmt {
            None => parse_default_timestamp(s.value(i)),
            Some(f) => {
                let cf = java_to_chrono(f.value(i));
                NaiveDateTime::parse_from_str(s.value(i), &cf).ok().or_else(|| {
                    chrono::NaiveDate::parse_from_str(s.value(i), &cf).ok().and_then(|d| d.and_hms_opt(0, 0, 0))
                })
            }
        };
        out.push(parsed.map(|t| t.and_utc().timestamp_millis()));
    }
    Ok(Arc::new(TimestampMillisecondArray::from(out)))
}

fn to_timestamp_ltz(args: &[ArrayRef], tz: &str) -> Result<ArrayRef> {
    let precision = match args.get(1) {
        Some(p) => {
            let p = cast(p, &DataType::Int64)?;
            let p = p.as_primitive::<arrow::datatypes::Int64Type>();
            if p.is_empty() || p.is_null(0) { 3 } else { p.value(0) }
        }
        None => 3,
    };
    let factor = match precision {
        0 => 1000.0,
        3 => 1.0,
        other => return Err(plan_err(format!("TO_TIMESTAMP_LTZ precision must be 0 or 3, not {other}"))),
    };
    let v = cast(&args[0], &DataType::Float64)?;
    let v: &Float64Array = v.as_primitive();
    let out: TimestampMillisecondArray = v.iter().map(|x| x.map(|x| (x * factor).floor() as i64)).collect();
    Ok(Arc::new(out.with_timezone(tz)))
}

fn concat(args: &[ArrayRef]) -> Result<ArrayRef> {
    let strs: Vec<StringArray> = args.iter().map(utf8_flink).collect::<Result<_>>()?;
    let n = strs.first().map(|a| a.len()).unwrap_or(0);
    let mut b = StringBuilder::with_capacity(n, n * 8);
    let mut buf = String::new();
    'rows: for i in 0..n {
        buf.clear();
        for s in &strs {
            if s.is_null(i) {
                b.append_null();
                continue 'rows;
            }
            buf.push_str(s.value(i));
        }
        b.append_value(&buf);
    }
    Ok(Arc::new(b.finish()))
}

/// Flink's SPLIT_INDEX: the 0-based `index`-th field of `s` split by `sep`, or NULL.
fn split_index(args: &[ArrayRef]) -> Result<ArrayRef> {
    let s = utf8(&args[0])?;
    let sep = utf8(&args[1])?;
    let idx = cast(&args[2], &DataType::Int64)?;
    let idx = idx.as_primitive::<arrow::datatypes::Int64Type>();
    let mut b = StringBuilder::with_capacity(s.len(), s.len() * 8);
    for i in 0..s.len() {
        if s.is_null(i) || sep.is_null(i) || idx.is_null(i) || idx.value(i) < 0 {
            b.append_null();
            continue;
        }
        let (text, sep) = (s.value(i), sep.value(i));
        let field = if sep.is_empty() {
            Some(text).filter(|_| idx.value(i) == 0)
        } else {
            text.split(sep).nth(idx.value(i) as usize)
        };
        match field {
            Some(f) => b.append_value(f),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn utf8_flink(a: &ArrayRef) -> Result<StringArray> {
    Ok(to_flink_string(a, "UTC")?.as_string::<i32>().clone())
}

/// Casts any array to STRING with Flink's text for each type.
pub fn to_flink_string(a: &ArrayRef, _tz: &str) -> Result<ArrayRef> {
    match a.data_type() {
        DataType::Timestamp(_, tz) => {
            let (ts, tz) = timestamps(a).map(|(t, _)| (t, tz.as_ref().map(|t| t.to_string())))?;
            let mut b = StringBuilder::with_capacity(ts.len(), ts.len() * 23);
            for i in 0..ts.len() {
                match (!ts.is_null(i)).then(|| local_naive(ts.value(i), tz.as_deref())).flatten() {
                    Some(dt) => b.append_value(dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
                    None => b.append_null(),
                }
            }
            Ok(Arc::new(b.finish()))
        }
        DataType::Float32 => {
            let f: &arrow::array::Float32Array = a.as_primitive();
            let out: StringArray = f.iter().map(|v| v.map(sluice_format::java_float)).collect();
            Ok(Arc::new(out))
        }
        DataType::Float64 => {
            let f = cast(a, &DataType::Float64)?;
            let f: &Float64Array = f.as_primitive();
            let out: StringArray = f.iter().map(|v| v.map(sluice_format::java_double)).collect();
            Ok(Arc::new(out))
        }
        DataType::Boolean => {
            let b: &BooleanArray = a.as_boolean();
            let out: StringArray = b.iter().map(|v| v.map(|v| if v { "TRUE" } else { "FALSE" })).collect();
            Ok(Arc::new(out))
        }
        DataType::Int64 => {
            let i: &Int64Array = a.as_primitive();
            let out: StringArray = i.iter().map(|v| v.map(|v| v.to_string())).collect();
            Ok(Arc::new(out))
        }
        _ => Ok(cast(a, &DataType::Utf8)?),
    }
}
