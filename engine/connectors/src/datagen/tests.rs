//! The datagen source: sequences and row counts split as Flink splits them,
//! seeded output independent of batch size and parallelism, value ranges,
//! throttling, and its errors.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Int64Type, Schema};

use super::*;
use crate::{Role, validate_table};

fn ctx(fields: Vec<Field>, opts: &[(&str, &str)], subtask: usize, parallelism: usize, batch: usize) -> SourceContext {
    let mut options: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    options.insert("connector".into(), "datagen".into());
    options.entry("rows-per-second".into()).or_insert_with(|| "1000000000".into());
    SourceContext {
        table: "gen".into(),
        options,
        schema: Arc::new(Schema::new(fields)),
        subtask,
        parallelism,
        batch_size: batch,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: crate::S3Options::default(),
    }
}

fn drain(c: &SourceContext) -> Vec<RecordBatch> {
    let mut r = crate::create_source(c).unwrap();
    let mut out = Vec::new();
    loop {
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => out.push(b),
            SourceEvent::Idle => {}
            SourceEvent::End => return out,
        }
    }
}

fn longs(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches.iter().flat_map(|b| b.column(col).as_primitive::<Int64Type>().values().to_vec()).collect()
}

#[test]
fn sequence_is_split_like_flinks_sequence_generator() {
    let f = || vec![Field::new("id", DataType::Int64, false)];
    let opts = [("fields.id.kind", "sequence"), ("fields.id.start", "1"), ("fields.id.end", "10")];
    let per: Vec<Vec<i64>> = (0..3).map(|i| longs(&drain(&ctx(f(), &opts, i, 3, 2)), 0)).collect();
    assert_eq!(per, vec![vec![1, 4, 7, 10], vec![2, 5, 8], vec![3, 6, 9]]);
}

#[test]
fn number_of_rows_is_split_with_the_remainder_first() {
    let f = || vec![Field::new("x", DataType::Int64, false)];
    let counts: Vec<usize> = (0..3)
        .map(|i| drain(&ctx(f(), &[("number-of-rows", "10")], i, 3, 3)).iter().map(|b| b.num_rows()).sum())
        .collect();
    assert_eq!(counts, vec![4, 3, 3]);
}

#[test]
fn seeded_output_is_independent_of_batch_size_and_parallelism() {
    let f = || {
        vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("d", DataType::Float64, true),
        ]
    };
    let opts = [("number-of-rows", "1000"), ("seed", "42"), ("fields.s.length", "5"), ("fields.a.null-rate", "0.2")];
    let rows = |batches: &[RecordBatch]| -> Vec<String> {
        let mut v = Vec::new();
        for b in batches {
            for r in 0..b.num_rows() {
                let a = b.column(0).as_primitive::<Int64Type>();
                let a = if a.is_null(r) { "null".to_string() } else { a.value(r).to_string() };
                let s = b.column(1).as_string::<i32>().value(r);
                let d = b.column(2).as_primitive::<arrow::datatypes::Float64Type>().value(r);
                v.push(format!("{a}|{s}|{d}"));
            }
        }
        v
    };
    let one = rows(&drain(&ctx(f(), &opts, 0, 1, 1000)));
    assert_eq!(one.len(), 1000);
    assert_eq!(rows(&drain(&ctx(f(), &opts, 0, 1, 7))), one, "batch size changed the rows");
    let mut three: Vec<String> = (0..3).flat_map(|i| rows(&drain(&ctx(f(), &opts, i, 3, 64)))).collect();
    let mut sorted = one.clone();
    three.sort();
    sorted.sort();
    assert_eq!(three, sorted, "parallelism changed the rows");
    let other = rows(&drain(&ctx(f(), &[("number-of-rows", "1000"), ("seed", "43")], 0, 1, 1000)));
    assert_ne!(other, one);
    let nulls = one.iter().filter(|r| r.starts_with("null|")).count();
    assert!((120..280).contains(&nulls), "null-rate 0.2 gave {nulls} nulls in 1000");
}

#[test]
fn random_values_respect_min_max_and_length() {
    let fields = vec![
        Field::new("i", DataType::Int32, false),
        Field::new("s", DataType::Utf8, false),
        Field::new("d", DataType::Float64, false),
        Field::new("m", DataType::Decimal128(5, 2), false),
        Field::new("b", DataType::Boolean, false),
    ];
    let opts = [
        ("number-of-rows", "5000"),
        ("fields.i.min", "-3"),
        ("fields.i.max", "3"),
        ("fields.s.length", "12"),
        ("fields.d.min", "0.5"),
        ("fields.d.max", "0.75"),
    ];
    let batches = drain(&ctx(fields, &opts, 0, 1, 1024));
    let mut seen = std::collections::BTreeSet::new();
    let mut trues = 0;
    for b in &batches {
        seen.extend(b.column(0).as_primitive::<arrow::datatypes::Int32Type>().values().iter().copied());
        for s in b.column(1).as_string::<i32>().iter().flatten() {
            assert_eq!(s.len(), 12);
            assert!(s.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{s}");
        }
        for d in b.column(2).as_primitive::<arrow::datatypes::Float64Type>().values() {
            assert!((0.5..0.75).contains(d), "{d}");
        }
        for m in b.column(3).as_primitive::<arrow::datatypes::Decimal128Type>().values() {
            assert!(m.abs() <= 99_999, "{m}");
        }
        trues += b.column(4).as_boolean().true_count();
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![-3, -2, -1, 0, 1, 2, 3]);
    assert!((2200..2800).contains(&trues), "{trues} trues of 5000");
}

#[test]
fn default_double_range_is_flinks_positive_range() {
    let batches = drain(&ctx(vec![Field::new("d", DataType::Float64, false)], &[("number-of-rows", "100")], 0, 1, 100));
    let d = batches[0].column(0).as_primitive::<arrow::datatypes::Float64Type>();
    assert!(d.values().iter().all(|v| *v > 0.0 && v.is_finite()));
}

#[test]
fn a_slow_rate_returns_idle_instead_of_sleeping_long() {
    let c = ctx(vec![Field::new("x", DataType::Int64, false)], &[("rows-per-second", "1")], 0, 1, 100);
    let mut r = crate::create_source(&c).unwrap();
    match r.poll().unwrap() {
        SourceEvent::Batch(b) => assert_eq!(b.num_rows(), 1),
        other => panic!("expected one row, got {other:?}"),
    }
    // The next row is due in a second: the reader waits at most 100 ms.
    assert!(matches!(r.poll().unwrap(), SourceEvent::Idle));
    // On schedule: a known lag of 0, not an unknown one.
    assert_eq!(r.pending_records(), Some(0));
}

/// Polls until a batch comes back; returns its rows.
fn next_batch(r: &mut dyn SourceReader) -> usize {
    loop {
        if let SourceEvent::Batch(b) = r.poll().unwrap() {
            return b.num_rows();
        }
    }
}

#[test]
fn a_reader_held_back_lags_by_the_rows_behind_its_schedule() {
    // 1000 rows a second, 10 a batch: a reader that is not polled (a
    // backpressured source) falls behind by the rows that came due meanwhile.
    let f = || vec![Field::new("x", DataType::Int64, false)];
    let mut r = crate::create_source(&ctx(f(), &[("rows-per-second", "1000")], 0, 1, 10)).unwrap();
    assert_eq!(r.pending_records(), Some(0), "before the first poll");
    assert_eq!(next_batch(r.as_mut()), 1, "row 0 is due at once");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let lag = r.pending_records().unwrap();
    assert!((250..=1000).contains(&lag), "300 ms at 1000 rows/s: {lag} behind");
    // It catches up a batch per poll, and the lag shrinks.
    assert_eq!(next_batch(r.as_mut()), 10);
    assert!(r.pending_records().unwrap() < lag, "{:?} after {lag}", r.pending_records());

    // Bounded: never more than the rows left (here 49, after the first).
    let mut r =
        crate::create_source(&ctx(f(), &[("rows-per-second", "1000"), ("number-of-rows", "50")], 0, 1, 10)).unwrap();
    assert_eq!(next_batch(r.as_mut()), 1);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(r.pending_records(), Some(49));
}

fn err(fields: Vec<Field>, opts: &[(&str, &str)]) -> String {
    let mut options: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    options.insert("connector".into(), "datagen".into());
    validate_table("gen", &options, &Arc::new(Schema::new(fields)), Role::Source).unwrap_err().to_string()
}

#[test]
fn bad_options_are_clear_errors() {
    let id = || vec![Field::new("id", DataType::Int64, false)];
    assert_eq!(
        err(id(), &[("fields.id.kind", "sequence"), ("fields.id.start", "1")]),
        "table `gen`: field `id` is a sequence and needs both 'fields.id.start' and 'fields.id.end'"
    );
    assert_eq!(
        err(id(), &[("fields.id.kind", "cyclic")]),
        "table `gen`: option 'fields.id.kind' = 'cyclic' is invalid: expected 'random' or 'sequence'"
    );
    assert_eq!(
        err(id(), &[("rows-per-second", "fast")]),
        "table `gen`: option 'rows-per-second' = 'fast' is invalid: expected a non-negative integer"
    );
    assert!(err(id(), &[("fields.idd.min", "1")]).contains("option 'fields.idd.min' names no column of the table"));
    assert!(
        err(vec![Field::new("s", DataType::Utf8, false)], &[("fields.s.min", "1")])
            .contains("option 'fields.s.min' is not supported for field `s` of type STRING")
    );
    assert!(
        err(vec![Field::new("t", DataType::Date32, false)], &[])
            .contains("datagen cannot generate DATE field `t` yet; generate a TIMESTAMP(3) and CAST it AS DATE")
    );
    let schedule = |v: &str| err(id(), &[("rows-per-second.schedule", v)]);
    assert_eq!(
        err(id(), &[("rows-per-second", "5"), ("rows-per-second.schedule", "0s:5")]),
        "table `gen`: options 'rows-per-second' and 'rows-per-second.schedule' exclude each other: a schedule gives every rate"
    );
    assert_eq!(
        schedule("10s:5"),
        "table `gen`: option 'rows-per-second.schedule' = '10s:5' is invalid: the first step is at 10s; a schedule starts at '0s'"
    );
    assert_eq!(
        schedule("0s:5, 1min:7, 60s:9"),
        "table `gen`: option 'rows-per-second.schedule' = '0s:5, 1min:7, 60s:9' is invalid: step '60s:9' is not after \
         the step at 60s; times must increase"
    );
    assert!(
        schedule("0s:5, 1min").contains("step '1min' is not `<time>:<rows per second>`"),
        "{}",
        schedule("0s:5, 1min")
    );
    assert!(schedule("0s:fast").contains("'fast' in step '0s:fast' is not a whole number of rows per second"));
    assert!(schedule("soon:5").contains("'soon' in step 'soon:5' is not a duration"));
    assert!(schedule("0s:0").contains("step '0s:0' has rate 0; every rate must be at least 1"));
    assert!(schedule("").contains("step '' is not"));
    assert!(err(id(), &[("rows-per-sec", "5")]).contains("unsupported option 'rows-per-sec' for connector 'datagen'"));
    let mut sink = BTreeMap::new();
    sink.insert("connector".to_string(), "datagen".to_string());
    let e = validate_table("g", &sink, &Arc::new(Schema::new(id())), Role::Sink).unwrap_err().to_string();
    assert_eq!(e, "table `g`: connector 'datagen' can only be used as a source");
}

#[test]
fn boundedness_follows_rows_and_sequences() {
    let o = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    assert!(!crate::is_bounded(&o(&[("connector", "datagen")])));
    assert!(crate::is_bounded(&o(&[("connector", "datagen"), ("number-of-rows", "5")])));
    assert!(crate::is_bounded(&o(&[("connector", "datagen"), ("fields.id.kind", "sequence")])));
}

#[test]
fn a_schedule_parses_to_steps() {
    let s = |v: &str| options::parse_schedule(v).unwrap();
    let secs = std::time::Duration::from_secs;
    assert_eq!(s("0s:1750, 60s:300"), vec![(secs(0), 1750), (secs(60), 300)]);
    assert_eq!(s(" 0 s : 5 ,2 min:7,1h:1"), vec![(secs(0), 5), (secs(120), 7), (secs(3600), 1)]);
    assert_eq!(s("0ms:9"), vec![(secs(0), 9)]);
}

#[test]
fn a_scheduled_source_keeps_its_origin_across_a_rescale() {
    let f = || vec![Field::new("x", DataType::Int64, false)];
    let scheduled = |subtask, p, restored: Option<Vec<Vec<u8>>>| {
        let mut c = ctx(f(), &[("rows-per-second.schedule", "0s:1000, 1h:10")], subtask, p, 10);
        c.options.remove("rows-per-second");
        c.restored_splits = restored;
        crate::create_source(&c).unwrap()
    };
    let origin = |blobs: &[Vec<u8>]| -> Vec<Option<u64>> {
        blobs.iter().map(|b| decode_split(b).unwrap().1.origin_ms).collect()
    };
    let mut first = scheduled(0, 1, None);
    assert_eq!(origin(&first.snapshot().unwrap()), vec![None], "not started: no origin yet");
    assert_eq!(next_batch(first.as_mut()), 1);
    let blobs = first.snapshot().unwrap();
    let [Some(start)] = origin(&blobs)[..] else { panic!("no origin: {:?}", origin(&blobs)) };
    // Restored at parallelism 2, each subtask's schedule keeps the first start,
    // before and after its first poll, and so does its next snapshot.
    for i in 0..2 {
        let mut r = scheduled(i, 2, Some(blobs.clone()));
        assert!(origin(&r.snapshot().unwrap()).iter().all(|o| *o == Some(start)));
        next_batch(r.as_mut());
        assert!(origin(&r.snapshot().unwrap()).iter().all(|o| *o == Some(start)));
    }
}

#[test]
fn small_integers_and_floats_stay_in_their_ranges() {
    use arrow::datatypes::{Float32Type, Int8Type, Int16Type};
    let f = || {
        vec![
            Field::new("t", DataType::Int8, false),
            Field::new("s", DataType::Int16, false),
            Field::new("f", DataType::Float32, false),
            Field::new("q", DataType::Int16, false),
        ]
    };
    let opts = [
        ("number-of-rows", "200"),
        ("fields.s.min", "-3"),
        ("fields.s.max", "3"),
        ("fields.f.min", "0.5"),
        ("fields.f.max", "1.5"),
        ("fields.q.kind", "sequence"),
        ("fields.q.start", "32760"),
        ("fields.q.end", "32767"),
    ];
    let batches = drain(&ctx(f(), &opts, 0, 1, 64));
    let t: Vec<i8> = batches.iter().flat_map(|b| b.column(0).as_primitive::<Int8Type>().values().to_vec()).collect();
    let s: Vec<i16> = batches.iter().flat_map(|b| b.column(1).as_primitive::<Int16Type>().values().to_vec()).collect();
    let fl: Vec<f32> =
        batches.iter().flat_map(|b| b.column(2).as_primitive::<Float32Type>().values().to_vec()).collect();
    let q: Vec<i16> = batches.iter().flat_map(|b| b.column(3).as_primitive::<Int16Type>().values().to_vec()).collect();
    assert_eq!(q, (32760..=32767).collect::<Vec<i16>>());
    assert_eq!(t.len(), 8, "the sequence ends the source");
    // The default TINYINT range is all of it: some values are negative.
    assert!(t.iter().any(|v| *v < 0) && t.iter().any(|v| *v > 0), "{t:?}");
    assert!(s.iter().all(|v| (-3..=3).contains(v)), "{s:?}");
    assert!(fl.iter().all(|v| (0.5..=1.5).contains(v)), "{fl:?}");

    let err = |pairs: &[(&str, &str)]| {
        let mut o: Vec<(&str, &str)> = vec![("connector", "datagen")];
        o.extend_from_slice(pairs);
        let opts: BTreeMap<String, String> = o.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        validate_table("gen", &opts, &Arc::new(Schema::new(f())), Role::Source).unwrap_err().to_string()
    };
    assert!(err(&[("fields.t.max", "128")]).contains("min and max of TINYINT field `t` must fit in TINYINT"));
    assert!(
        err(&[("fields.s.kind", "sequence"), ("fields.s.start", "0"), ("fields.s.end", "40000")])
            .contains("sequence bounds of SMALLINT field `s` must fit in SMALLINT")
    );
}
