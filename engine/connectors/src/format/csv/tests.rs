//! Tests of the csv format: splitting, decoding on both paths, conversions.

use super::*;

fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    split_record(&CsvOptions::default(), text, &mut out).unwrap();
    out.into_iter().map(|(f, _)| f.into_owned()).collect()
}

#[test]
fn splits_quoted_fields() {
    assert_eq!(split("a,b,c"), vec!["a", "b", "c"]);
    assert_eq!(split("\"a,b\",\"say \"\"hi\"\"\","), vec!["a,b", "say \"hi\"", ""]);
    assert_eq!(split("\"line\nbreak\",x"), vec!["line\nbreak", "x"]);
    assert_eq!(split(",,"), vec!["", "", ""]);
    let mut out = Vec::new();
    assert!(split_record(&CsvOptions::default(), "\"open", &mut out).is_err());
}

/// `count` pseudo-random lines of up to `max_len` symbols from `alphabet`
/// (a linear congruential generator: the same lines on every run).
fn random_lines<T: Copy>(alphabet: &[T], count: usize, max_len: usize, seed: u32) -> Vec<Vec<T>> {
    let mut x = seed;
    (0..count)
        .map(|n| {
            (0..n % max_len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    alphabet[(x >> 16) as usize % alphabet.len()]
                })
                .collect()
        })
        .collect()
}

#[test]
fn lines_without_quotes_split_alike_on_the_fast_path() {
    for line in random_lines(&['a', ',', ';', '1', ' ', 'é', '\t'], 400, 40, 7) {
        let line: String = line.into_iter().collect();
        for opts in [CsvOptions::default(), CsvOptions { delimiter: ';', ..CsvOptions::default() }] {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            split_record(&opts, &line, &mut fast).unwrap();
            split_quoted(&opts, &line, &mut slow).unwrap();
            assert_eq!(fast, slow, "{line:?}");
        }
    }
}

#[test]
fn lines_with_quotes_split_alike_on_bytes_and_by_character() {
    for line in random_lines(&['a', ',', '"', '"', ' ', 'é', '\n', '日'], 3000, 24, 11) {
        let line: String = line.into_iter().collect();
        let opts = CsvOptions::default();
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        let (a, b) = (split_record(&opts, &line, &mut fast), split_quoted(&opts, &line, &mut slow));
        assert_eq!(a, b, "{line:?}");
        if a.is_ok() {
            assert_eq!(fast, slow, "{line:?}");
        }
    }
}

#[test]
fn records_continue_on_the_next_line_alike_with_and_without_the_byte_walk() {
    let d = CsvDecoder::new(CsvOptions::default(), &[], vec![]);
    for line in random_lines(b"a,\"\" \n", 3000, 20, 5) {
        assert_eq!(d.needs_more(&line), ends_in_quotes(&line, b'"', None, ','), "{:?}", String::from_utf8_lossy(&line));
    }
}

#[test]
fn small_integers_and_floats_parse_as_flink_reads_them() {
    let conv = |s: &'static str, t: ColType| convert_text(&Cow::Borrowed(s), false, t, None);
    assert_eq!(conv(" -128 ", ColType::Int8), Ok(Val::Int8(-128)));
    assert!(conv("128", ColType::Int8).is_err());
    assert_eq!(conv("-32768", ColType::Int16), Ok(Val::Int16(-32768)));
    assert!(conv("40000", ColType::Int16).is_err());
    assert!(conv("1.5", ColType::Int16).is_err());
    assert_eq!(conv("0.1", ColType::Float32), Ok(Val::Float32(0.1)));
    assert_eq!(conv("1.17549435E-38", ColType::Float32), Ok(Val::Float32(f32::MIN_POSITIVE)));
    assert_eq!(conv("1e10", ColType::Float32), Ok(Val::Float32(1e10)));
    assert!(conv("x", ColType::Float32).is_err());
}

/// Lines without quotes decode alike on the plain path and the general
/// one: the same batch and the same errors, with every option that acts
/// on a plain line (null literal, ignored parse errors, a column mask).
#[test]
fn plain_lines_decode_alike_on_both_paths() {
    use arrow::datatypes::{DataType, Schema};
    let fields: Vec<Arc<Field>> = vec![
        Arc::new(Field::new("a", DataType::Int64, true)),
        Arc::new(Field::new("b", DataType::Utf8, true)),
        Arc::new(Field::new("c", DataType::Int32, true)),
        Arc::new(Field::new("d", DataType::Utf8, true)),
    ];
    let schema = Arc::new(Schema::new(fields.clone()));
    let types = vec![ColType::Int64, ColType::Utf8, ColType::Int32, ColType::Utf8];
    let nulls = CsvOptions { null_literal: Some("n".into()), ..CsvOptions::default() };
    let ignore = CsvOptions { ignore_parse_errors: true, ..CsvOptions::default() };
    let tabs = CsvOptions { delimiter: '\t', ..CsvOptions::default() };
    // Lines of 3 to 5 fields (4 is the row's width), each field one of
    // these: numbers, overflow, text, the null literal, empty.
    let values = ["", "1", " -2 ", "x", "n", "é日", "99999999999999999999", "3000000000", "7"];
    let picks = random_lines(&(0..values.len() * 3).collect::<Vec<_>>(), 4000, 6, 3);
    let lines: Vec<(String, String)> = picks
        .iter()
        .map(|p| {
            let fields: Vec<&str> = p.iter().take(3 + p.len() % 3).map(|&i| values[i % values.len()]).collect();
            (fields.join(","), fields.join("\t"))
        })
        .collect();
    for opts in [CsvOptions::default(), nulls, ignore, tabs] {
        for mask in [None, Some([true, false, true, true]), Some([false, true, false, true])] {
            let mut plain = CsvDecoder::new(opts.clone(), &fields, types.clone());
            let mut split = CsvDecoder::new(opts.clone(), &fields, types.clone());
            if let Some(m) = mask {
                plain.read_only(&m);
                split.read_only(&m);
            }
            let (mut oks, mut errors) = (0, 0);
            for (commas, tabs) in &lines {
                let line = if opts.delimiter == '\t' { tabs } else { commas };
                let (a, b) = (plain.decode_plain(line), split.decode_split(line));
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{line:?}");
                if a.is_ok() { oks += 1 } else { errors += 1 }
            }
            assert!(oks > 100 && errors > 100, "the lines hit both outcomes: {oks} rows, {errors} errors");
            let (a, b) = (plain.builders.finish(&schema).unwrap(), split.builders.finish(&schema).unwrap());
            assert_eq!(a, b, "{opts:?} {mask:?}");
        }
    }
}

#[test]
fn columns_not_read_are_null_and_never_parsed() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Int64Type, Schema};
    let fields: Vec<Arc<Field>> = vec![
        Arc::new(Field::new("a", DataType::Int64, true)),
        Arc::new(Field::new("b", DataType::Int64, true)),
        Arc::new(Field::new("c", DataType::Utf8, true)),
    ];
    let schema = Arc::new(Schema::new(fields.clone()));
    let types = vec![ColType::Int64, ColType::Int64, ColType::Utf8];
    let mut d = CsvDecoder::new(CsvOptions::default(), &fields, types.clone());
    d.read_only(&[true, false, true]);
    // `b` is not a number, but nothing reads it.
    assert!(matches!(d.decode("1,not a number,x"), Ok(true)));
    assert!(matches!(d.decode("1,2"), Err(RecordError::Malformed(_))), "a short row is still malformed");
    let batch = d.builders.finish(&schema).unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 1);
    assert!(batch.column(1).is_null(0));
    assert_eq!(batch.column(2).as_string::<i32>().value(0), "x");
    // Read in full, the same row is an error; a mask of another width reads all.
    let mut all = CsvDecoder::new(CsvOptions::default(), &fields, types);
    all.read_only(&[true]);
    assert!(matches!(all.decode("1,not a number,x"), Err(RecordError::Field(_))));
}

#[test]
fn detects_records_continuing_on_the_next_line() {
    let d = CsvDecoder::new(CsvOptions::default(), &[], vec![]);
    assert!(d.needs_more(b"1,\"line\n"));
    assert!(!d.needs_more(b"1,\"line\nbreak\"\n"));
    assert!(!d.needs_more(b"1,a\"b\n"));
    assert!(!d.needs_more(b"1,\"a\"\"b\"\n"));
}
