//! Generator throughput, single-threaded: `cargo run --release -p
//! sluice-connectors --example throughput [rows]`. Prints rows per second for
//! datagen (numeric and string columns) and each nexmark table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice_connectors::{ConnectorError, SourceContext, SourceEvent, create_source};

fn run(name: &str, fields: Vec<Field>, opts: &[(&str, &str)]) -> Result<(), ConnectorError> {
    let options: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let ctx = SourceContext {
        table: name.into(),
        options,
        schema: Arc::new(Schema::new(fields)),
        subtask: 0,
        parallelism: 1,
        batch_size: 8192,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: sluice_connectors::S3Options::default(),
    };
    let mut src = create_source(&ctx)?;
    let start = Instant::now();
    let mut rows = 0u64;
    loop {
        match src.poll()? {
            SourceEvent::Batch(b) => rows += b.num_rows() as u64,
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{name:<40} {rows:>11} rows {secs:>7.3} s {:>8.2} M rows/s", rows as f64 / secs / 1e6);
    Ok(())
}

fn main() -> Result<(), ConnectorError> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000_000);
    let rows = n.to_string();
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, None);
    run(
        "datagen: 3 BIGINT + 1 INT (random)",
        vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
            Field::new("c", DataType::Int64, false),
            Field::new("d", DataType::Int32, false),
        ],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "1000000000000"),
            ("number-of-rows", &rows),
            ("fields.d.min", "0"),
            ("fields.d.max", "9999"),
        ],
    )?;
    run(
        "datagen: sequence + key + DOUBLE + ts",
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("k", DataType::Int32, false),
            Field::new("v", DataType::Float64, false),
            Field::new("t", ts(), false),
        ],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "1000000000000"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "1"),
            ("fields.id.end", &rows),
            ("fields.k.min", "0"),
            ("fields.k.max", "9999"),
        ],
    )?;
    run(
        "datagen: BIGINT + STRING(16)",
        vec![Field::new("a", DataType::Int64, false), Field::new("s", DataType::Utf8, false)],
        &[
            ("connector", "datagen"),
            ("rows-per-second", "1000000000000"),
            ("number-of-rows", &rows),
            ("fields.s.length", "16"),
        ],
    )?;
    let events = (n / 2).to_string();
    let nexmark = |table: &str, cols: &[(&str, DataType)]| {
        run(
            &format!("nexmark {table} ({events} events)"),
            cols.iter().map(|(n, t)| Field::new(*n, t.clone(), false)).collect(),
            &[("connector", "nexmark"), ("nexmark.table", table), ("number-of-events", &events)],
        )
    };
    let (i, s) = (DataType::Int64, DataType::Utf8);
    nexmark(
        "bid",
        &[
            ("auction", i.clone()),
            ("bidder", i.clone()),
            ("price", i.clone()),
            ("channel", s.clone()),
            ("url", s.clone()),
            ("dateTime", ts()),
            ("extra", s.clone()),
        ],
    )?;
    nexmark("bid", &[("auction", i.clone()), ("price", i.clone()), ("dateTime", ts())])?;
    nexmark("bid", &[("channel", s.clone()), ("url", s.clone())])?;
    nexmark("bid", &[("extra", s.clone())])?;
    nexmark(
        "auction",
        &[
            ("id", i.clone()),
            ("itemName", s.clone()),
            ("description", s.clone()),
            ("initialBid", i.clone()),
            ("reserve", i.clone()),
            ("dateTime", ts()),
            ("expires", ts()),
            ("seller", i.clone()),
            ("category", i.clone()),
            ("extra", s.clone()),
        ],
    )?;
    nexmark(
        "person",
        &[
            ("id", i.clone()),
            ("name", s.clone()),
            ("emailAddress", s.clone()),
            ("creditCard", s.clone()),
            ("city", s.clone()),
            ("state", s.clone()),
            ("dateTime", ts()),
            ("extra", s),
        ],
    )?;
    Ok(())
}
