//! The filesystem sink's json and csv text and the print sink's rows, byte for
//! byte against what Apache Flink 2.3 wrote for the same rows (`tests/flink/`,
//! made by the scripts there with PyFlink), and read back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Array, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use common::all_types::{all_types_batch, all_types_schema};
use sluice_connectors::{SinkContext, SourceContext, SourceEvent, create_sink, create_source};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("tests/flink")
        .join(name),
    )
    .unwrap()
}

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Writes `batch` through a filesystem sink and returns the one part file's text.
fn write_with_sink(schema: SchemaRef, batch: &RecordBatch, extra: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let mut opts = options(&[("connector", "filesystem"), ("path", &path)]);
    opts.extend(options(extra));
    let ctx = SinkContext {
        table: "out".into(),
        options: opts,
        schema,
        subtask: 0,
        parallelism: 1,
        job_id: "job".into(),
        local_time_zone: "UTC".into(),
        restored_states: None,
        s3: sluice_connectors::S3Options::default(),
        checkpoint_interval: None,
        committer: Default::default(),
    };
    let mut sink = create_sink(&ctx).unwrap();
    sink.write(batch).unwrap();
    sink.finish().unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec![std::ffi::OsString::from("part-job-0-0")]);
    std::fs::read_to_string(dir.path().join("part-job-0-0")).unwrap()
}

fn read_all(schema: SchemaRef, path: &Path, extra: &[(&str, &str)]) -> Vec<RecordBatch> {
    let mut opts = options(&[("connector", "filesystem"), ("path", path.to_str().unwrap())]);
    opts.extend(options(extra));
    let ctx = SourceContext {
        table: "in".into(),
        options: opts,
        schema,
        subtask: 0,
        parallelism: 1,
        batch_size: 4,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: sluice_connectors::S3Options::default(),
    };
    let mut src = create_source(&ctx).unwrap();
    let mut out = Vec::new();
    loop {
        match src.poll().unwrap() {
            SourceEvent::Batch(b) => out.push(b),
            SourceEvent::Idle => continue,
            SourceEvent::End => return out,
        }
    }
}

const JSON_ORDER: [usize; 15] = [1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 2, 3];
const CSV_ORDER: [usize; 15] = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 1, 14, 15];

#[test]
fn json_text_equals_flink() {
    let text = write_with_sink(all_types_schema(), &all_types_batch(&JSON_ORDER), &[("format", "json")]);
    assert_eq!(text, fixture("all_types.json"));
}

#[test]
fn csv_text_equals_flink() {
    let text = write_with_sink(all_types_schema(), &all_types_batch(&CSV_ORDER), &[("format", "csv")]);
    assert_eq!(text, fixture("all_types.csv"));
}

/// The print sink writes to stdout, so its encoder is checked directly.
fn print_rows(prefix: &str) -> String {
    use sluice_format::row::RowStringEncoder;
    use sluice_format::types::column_types;
    let batch = all_types_batch(&(1..=15).collect::<Vec<_>>());
    let types = column_types(batch.schema().fields(), "print").unwrap();
    let mut enc = RowStringEncoder::new(types, prefix.to_string());
    let mut out = Vec::new();
    enc.encode(&batch, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn print_rows_equal_flink() {
    assert_eq!(print_rows(""), fixture("all_types.print"));
    assert_eq!(print_rows("tag> "), fixture("all_types.print_tagged"));
}

fn extra_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("d1", DataType::Decimal128(10, 2), true),
        Field::new("d2", DataType::Decimal128(10, 2), true),
        Field::new("d3", DataType::Decimal128(10, 2), true),
        Field::new("s1", DataType::Utf8, true),
        Field::new("s2", DataType::Utf8, true),
        Field::new("x", DataType::Float64, true),
        Field::new("s3", DataType::Utf8, true),
    ]))
}

fn extra_batch() -> RecordBatch {
    let dec =
        |v: i128| -> ArrayRef { Arc::new(Decimal128Array::from(vec![v]).with_precision_and_scale(10, 2).unwrap()) };
    RecordBatch::try_new(
        extra_schema(),
        vec![
            dec(10_000),
            dec(-10_000),
            dec(10),
            Arc::new(StringArray::from(vec!["abcdefghijklmnopqrstuvwxy"])),
            Arc::new(StringArray::from(vec!["abcdefghijklmnopqrstuvwx"])),
            Arc::new(Float64Array::from(vec![0.0001])),
            Arc::new(StringArray::from(vec![None::<&str>])),
        ],
    )
    .unwrap()
}

#[test]
fn decimals_and_long_strings_equal_flink() {
    assert_eq!(write_with_sink(extra_schema(), &extra_batch(), &[("format", "json")]), fixture("extra.json"));
    assert_eq!(write_with_sink(extra_schema(), &extra_batch(), &[("format", "csv")]), fixture("extra.csv"));
}

#[test]
fn custom_csv_options_equal_flink() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("d1", DataType::Decimal128(10, 2), true),
        Field::new("s1", DataType::Utf8, true),
        Field::new("s3", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Decimal128Array::from(vec![150]).with_precision_and_scale(10, 2).unwrap()),
            Arc::new(StringArray::from(vec!["it's a;b"])),
            Arc::new(StringArray::from(vec![None::<&str>])),
        ],
    )
    .unwrap();
    let opts =
        [("format", "csv"), ("csv.field-delimiter", ";"), ("csv.null-literal", "NULL"), ("csv.quote-character", "'")];
    let text = write_with_sink(schema.clone(), &batch, &opts);
    assert_eq!(text, fixture("custom.csv"));
    // And it reads back, NULL literal included.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.csv"), &text).unwrap();
    let got = read_all(schema, dir.path(), &opts);
    assert_eq!(arrow::compute::concat_batches(&got[0].schema(), &got).unwrap(), batch);
}

/// Flink's own files read back into exactly the rows that produced them
/// (decimals come back at the declared scale, so equality is exact).
fn read_back(format: &str, order: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flink.txt"), fixture(&format!("all_types.{format}"))).unwrap();
    let batches = read_all(all_types_schema(), dir.path(), &[("format", format)]);
    let got = arrow::compute::concat_batches(&all_types_schema(), &batches).unwrap();
    let want = all_types_batch(order);
    assert_eq!(got.num_rows(), 15);
    for c in 0..want.num_columns() {
        if c == 3 {
            // NaN != NaN: compare doubles by their bits.
            let g = got.column(c).as_any().downcast_ref::<Float64Array>().unwrap();
            let w = want.column(c).as_any().downcast_ref::<Float64Array>().unwrap();
            let gb: Vec<u64> = g.values().iter().map(|v| v.to_bits()).collect();
            let wb: Vec<u64> = w.values().iter().map(|v| v.to_bits()).collect();
            assert_eq!(gb, wb);
            continue;
        }
        if format == "csv" && c == 6 {
            // Flink's csv writes NULL and '' alike: both read back as ''.
            let g = got.column(c).as_any().downcast_ref::<StringArray>().unwrap();
            let w = want.column(c).as_any().downcast_ref::<StringArray>().unwrap();
            let gv: Vec<&str> = g.iter().map(|v| v.unwrap()).collect();
            let wv: Vec<&str> = w.iter().map(|v| v.unwrap_or("")).collect();
            assert_eq!(gv, wv);
            continue;
        }
        assert_eq!(got.column(c).as_ref(), want.column(c).as_ref(), "column {}", want.schema().field(c).name());
    }
}

#[test]
fn flink_json_reads_back() {
    read_back("json", &JSON_ORDER);
}

#[test]
fn flink_csv_reads_back() {
    read_back("csv", &CSV_ORDER);
}
