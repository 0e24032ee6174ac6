//! Flink's string functions that DataFusion lacks or names differently.
//!
//! Positions are 1-based and count characters. A regular expression that does
//! not compile gives NULL, as in Flink.
//!
//! - `LOCATE(needle, s [, from])`: INT, Java's `indexOf` from `from`, plus one.
//! - `REGEXP(s, regex)`: whether some part of `s` matches.
//! - `REGEXP_SUBSTR(s, regex)`: the first match, or NULL.
//! - `REGEXP_EXTRACT_ALL(s, regex [, group])`: `ARRAY<STRING>` of group `group`
//!   (default 1; 0 is the whole match) of every match.
//! - `SPLIT(s, delimiter)`: `ARRAY<STRING>`; an empty delimiter splits into
//!   characters, an empty `s` gives an empty array.
//! - `STR_TO_MAP(s [, pair_regex, key_value_regex])`: `MAP<STRING, STRING>`
//!   (defaults `,` and `=`); a pair without a delimiter maps to NULL; a later
//!   duplicate key wins.
//! - `IS_DIGIT`, `IS_ALPHA`, `IS_DECIMAL`: FALSE (not NULL) for NULL and ''.
//! - `ELT(index, s1, s2, ...)`: the `index`-th string, NULL when out of range.
//! - `STARTSWITH(s, prefix)`, `ENDSWITH(s, suffix)`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, ListBuilder, MapBuilder, MapFieldNames, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use datafusion_common::{Result, ScalarValue};
use regex::Regex;

use super::udf::{Ctx, Def, def, is_integer, is_string, long_at, longs, str_at, strings};

pub const DEFS: &[Def] = &[
    def("locate", "(substring, string [, start position])", (2, 3), ret_locate, locate),
    def("regexp", "(string, regex)", (2, 2), ret_predicate, regexp),
    def("regexp_substr", "(string, regex)", (2, 2), ret_string, regexp_substr),
    def("regexp_extract_all", "(string, regex [, group index])", (2, 3), ret_extract_all, regexp_extract_all),
    def("split", "(string, delimiter)", (2, 2), ret_string_array, split),
    def("str_to_map", "(string [, pair delimiter, key-value delimiter])", (1, 3), ret_str_to_map, str_to_map),
    def("is_digit", "(string)", (1, 1), ret_predicate, |_, a, _| {
        char_test(a, |s| s.chars().all(|c| c.is_ascii_digit()))
    }),
    def("is_alpha", "(string)", (1, 1), ret_predicate, |_, a, _| char_test(a, |s| s.chars().all(char::is_alphabetic))),
    def("is_decimal", "(string)", (1, 1), ret_predicate, |_, a, _| char_test(a, is_decimal)),
    def("elt", "(index, string, ...)", (2, usize::MAX), ret_elt, elt),
    def("startswith", "(string, prefix)", (2, 2), ret_predicate, |_, a, _| pair_test(a, |s, p| s.starts_with(p))),
    def("endswith", "(string, suffix)", (2, 2), ret_predicate, |_, a, _| pair_test(a, |s, p| s.ends_with(p))),
];

fn all_strings(d: &Def, args: &[DataType]) -> Result<()> {
    (0..args.len()).try_for_each(|i| d.expect(args, i, "a STRING", is_string))
}

fn ret_string(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    all_strings(d, args)?;
    Ok(DataType::Utf8)
}

fn ret_predicate(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    all_strings(d, args)?;
    Ok(DataType::Boolean)
}

fn ret_string_array(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    all_strings(d, args)?;
    Ok(crate::types::array_of(DataType::Utf8))
}

fn ret_locate(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a STRING", is_string)?;
    d.expect(args, 1, "a STRING", is_string)?;
    d.expect(args, 2, "an integer position", is_integer)?;
    Ok(DataType::Int32)
}

fn ret_extract_all(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a STRING", is_string)?;
    d.expect(args, 1, "a STRING regex", is_string)?;
    d.expect(args, 2, "an integer group index", is_integer)?;
    Ok(crate::types::array_of(DataType::Utf8))
}

fn ret_str_to_map(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    all_strings(d, args)?;
    Ok(crate::types::map_of(DataType::Utf8, DataType::Utf8))
}

fn ret_elt(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "an integer index", is_integer)?;
    (1..args.len()).try_for_each(|i| d.expect(args, i, "a STRING", is_string))?;
    Ok(DataType::Utf8)
}

/// Compiles each row's pattern, reusing the last one while it repeats.
#[derive(Default)]
struct Patterns {
    last: Option<(String, Option<Regex>)>,
}

impl Patterns {
    fn get(&mut self, p: &str) -> Option<&Regex> {
        if self.last.as_ref().is_none_or(|(q, _)| q != p) {
            self.last = Some((p.to_string(), Regex::new(p).ok()));
        }
        self.last.as_ref().and_then(|(_, re)| re.as_ref())
    }
}

fn locate(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (needle, s) = (strings(&args[0])?, strings(&args[1])?);
    let from = args.get(2).map(longs).transpose()?;
    let out: Int32Array = (0..s.len())
        .map(|i| {
            let (needle, s) = (str_at(&needle, i)?, str_at(&s, i)?);
            let from = match &from {
                Some(f) => long_at(f, i)?,
                None => 1,
            };
            // Java's indexOf clamps the start into [0, length].
            let chars: Vec<(usize, char)> = s.char_indices().collect();
            let start = usize::try_from(from - 1).unwrap_or(0).min(chars.len());
            let byte_start = chars.get(start).map_or(s.len(), |(b, _)| *b);
            let found = s[byte_start..].find(needle).map(|b| s[..byte_start + b].chars().count() + 1);
            Some(found.unwrap_or(0) as i32)
        })
        .collect();
    Ok(Arc::new(out))
}

fn regexp(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (s, pat) = (strings(&args[0])?, strings(&args[1])?);
    let mut patterns = Patterns::default();
    let out: BooleanArray =
        (0..s.len()).map(|i| Some(patterns.get(str_at(&pat, i)?)?.is_match(str_at(&s, i)?))).collect();
    Ok(Arc::new(out))
}

fn regexp_substr(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (s, pat) = (strings(&args[0])?, strings(&args[1])?);
    let mut patterns = Patterns::default();
    let out: StringArray = (0..s.len())
        .map(|i| patterns.get(str_at(&pat, i)?)?.find(str_at(&s, i)?).map(|m| m.as_str().to_string()))
        .collect();
    Ok(Arc::new(out))
}

fn string_list() -> ListBuilder<StringBuilder> {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("element", DataType::Utf8, true)))
}

fn regexp_extract_all(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (s, pat) = (strings(&args[0])?, strings(&args[1])?);
    let group = args.get(2).map(longs).transpose()?;
    let mut patterns = Patterns::default();
    let mut b = string_list();
    for i in 0..s.len() {
        let matches = (|| {
            let group = match &group {
                Some(g) => usize::try_from(long_at(g, i)?).ok()?,
                None => 1,
            };
            let re = patterns.get(str_at(&pat, i)?)?;
            if group >= re.captures_len() {
                return None;
            }
            let text = str_at(&s, i)?;
            Some(re.captures_iter(text).map(|c| c.get(group).map(|m| m.as_str().to_string())).collect::<Vec<_>>())
        })();
        match matches {
            Some(m) => b.append_value(m),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn split(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (s, delim) = (strings(&args[0])?, strings(&args[1])?);
    let mut b = string_list();
    for i in 0..s.len() {
        match (str_at(&s, i), str_at(&delim, i)) {
            (Some(""), Some(_)) => b.append_value(Vec::<Option<String>>::new()),
            (Some(s), Some("")) => b.append_value(s.chars().map(|c| Some(c.to_string()))),
            (Some(s), Some(d)) => b.append_value(s.split(d).map(Some)),
            _ => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// Java's `String.split(regex)`: trailing empty fields are dropped.
fn java_split<'a>(s: &'a str, re: &Regex) -> Vec<&'a str> {
    let mut parts: Vec<&str> = re.split(s).collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

fn str_to_map(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let s = strings(&args[0])?;
    let pair_delim = args.get(1).map(strings).transpose()?;
    let kv_delim = args.get(2).map(strings).transpose()?;
    let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
    let mut b = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    let (mut pairs_re, mut kv_re) = (Patterns::default(), Patterns::default());
    for i in 0..s.len() {
        let entries = (|| {
            let text = str_at(&s, i)?;
            let pair = pair_delim.as_ref().map_or(Some(","), |d| str_at(d, i))?;
            let kv = kv_delim.as_ref().map_or(Some("="), |d| str_at(d, i))?;
            let mut entries: Vec<(&str, Option<&str>)> = Vec::new();
            if text.is_empty() {
                return Some(entries);
            }
            let kv_re = kv_re.get(kv)?.clone();
            for p in java_split(text, pairs_re.get(pair)?) {
                let mut it = kv_re.splitn(p, 2);
                let (k, v) = match (it.next(), it.next()) {
                    (Some(k), Some(v)) => (k, Some(v)),
                    _ => (p, None),
                };
                match entries.iter_mut().find(|(key, _)| *key == k) {
                    Some(e) => e.1 = v,
                    None => entries.push((k, v)),
                }
            }
            Some(entries)
        })();
        match entries {
            Some(entries) => {
                for (k, v) in entries {
                    b.keys().append_value(k);
                    b.values().append_option(v);
                }
                b.append(true)?;
            }
            None => b.append(false)?,
        }
    }
    Ok(Arc::new(b.finish()))
}

fn char_test(args: &[ArrayRef], test: fn(&str) -> bool) -> Result<ArrayRef> {
    let s = strings(&args[0])?;
    let out: BooleanArray = s.iter().map(|v| Some(v.is_some_and(|v| !v.is_empty() && test(v)))).collect();
    Ok(Arc::new(out))
}

/// A decimal number: an optional sign, digits with at most one point, an
/// optional exponent.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    !(int.is_empty() && frac.is_empty())
        && digits(int)
        && digits(frac)
        && exp.is_none_or(|e| !e.is_empty() && digits(e))
}

fn pair_test(args: &[ArrayRef], test: fn(&str, &str) -> bool) -> Result<ArrayRef> {
    let (s, p) = (strings(&args[0])?, strings(&args[1])?);
    let out: BooleanArray = (0..s.len()).map(|i| Some(test(str_at(&s, i)?, str_at(&p, i)?))).collect();
    Ok(Arc::new(out))
}

fn elt(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let index = longs(&args[0])?;
    let choices: Vec<StringArray> = args[1..].iter().map(strings).collect::<Result<_>>()?;
    let out: StringArray = (0..index.len())
        .map(|i| {
            let k = usize::try_from(long_at(&index, i)?).ok()?.checked_sub(1)?;
            str_at(choices.get(k)?, i).map(str::to_string)
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::is_decimal;

    #[test]
    fn decimals() {
        for (s, want) in [
            ("3", true),
            ("1.5", true),
            ("-2.", true),
            ("1e3", true),
            ("", false),
            ("o", false),
            ("1.5.1", false),
            ("Ab c1.5", false),
            (".", false),
            ("1e", false),
        ] {
            assert_eq!(is_decimal(s), want, "{s}");
        }
    }
}
