//! Shuffle throughput between two workers' data exchanges over loopback:
//! `cargo run --release -p sluice-engine --example shuffle_bench -- [SECONDS] [CHANNELS]`.
//!
//! One process holds two data servers (worker 0 and worker 1), as two worker
//! processes would; `CHANNELS` producers on worker 0 each send batches of
//! 8192 records of about 100 bytes (BIGINT, INT and an 88-character STRING)
//! to their own consumer on worker 1, through the real code path: Arrow IPC
//! frames over TCP, credit-based flow control, decoding on the far side. The
//! consumers return each credit as soon as they have the batch. Prints one
//! JSON line: records per second and payload GB per second (the record
//! batches' buffer bytes, not counting framing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use sluice_engine::cluster::exchange::{AttemptExchange, AttemptKey, DataServer, FailHook};
use sluice_engine::metrics::SubtaskMetrics;
use sluice_engine::runtime::Exchange;
use sluice_engine::runtime::channel::{Msg, Target};

fn batch(rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int32, false),
        Field::new("payload", DataType::Utf8, false),
    ]));
    let text = "x".repeat(88);
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from((0..rows as i64).collect::<Vec<_>>())),
            Arc::new(Int32Array::from((0..rows as i32).collect::<Vec<_>>())),
            Arc::new(StringArray::from(vec![text.as_str(); rows])),
        ],
    )
    .unwrap()
}

fn payload_bytes(b: &RecordBatch) -> u64 {
    b.columns().iter().map(|c| c.to_data().buffers().iter().map(|x| x.len() as u64).sum::<u64>()).sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let channels: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let a = DataServer::start("127.0.0.1:0").unwrap();
    let b = DataServer::start("127.0.0.1:0").unwrap();
    let key = AttemptKey { generation: 1, attempt: 1 };
    let workers = vec![a.addr.to_string(), b.addr.to_string()];
    // Vertex 0 (producers) on worker 0, vertex 1 (consumers) on worker 1.
    let placement = vec![vec![0; channels], vec![1; channels]];
    let fail: FailHook = Arc::new(|e| panic!("{e}"));
    let s3 = sluice_storage::S3Options::default();
    let consumer = AttemptExchange::new(&b, key, 1, workers.clone(), placement.clone(), s3.clone(), fail.clone());
    let mut queues = Vec::new();
    for c in 0..channels {
        let (tx, rx) = std::sync::mpsc::channel();
        consumer.register(1, c, tx);
        queues.push((rx, consumer.inbound(1, c, 0, (0, c))));
    }
    consumer.open();
    let producer = AttemptExchange::new(&a, key, 0, workers, placement, s3, fail);
    let data = batch(8192);
    let per_batch = payload_bytes(&data);
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for c in 0..channels {
        let buffers = sluice_engine::runtime::channel::Buffers { credits: 8, debloat_target: None };
        let (outbox, credit) = producer.outbox(1, c, 0, buffers).unwrap();
        let target = Target { tx: outbox, channel: 0, credit };
        let (data, stop) = (data.clone(), stop.clone());
        producers.push(std::thread::spawn(move || {
            let metrics = SubtaskMetrics::new(0, c);
            while !stop.load(Ordering::Relaxed) {
                target.send_batch(data.clone(), &metrics).unwrap();
            }
            target.send_control(Msg::End).unwrap();
        }));
    }
    let start = Instant::now();
    let timer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(seconds));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let consumers: Vec<_> = queues
        .into_iter()
        .map(|(rx, credit)| {
            std::thread::spawn(move || {
                let (mut rows, mut bytes) = (0u64, 0u64);
                loop {
                    let env: sluice_engine::runtime::channel::Envelope = rx.recv().unwrap();
                    match env.msg {
                        Msg::Batch(b) => {
                            rows += b.num_rows() as u64;
                            bytes += payload_bytes(&b);
                            credit.release();
                        }
                        Msg::End => return (rows, bytes),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    let (mut rows, mut bytes) = (0u64, 0u64);
    for c in consumers {
        let (r, b) = c.join().unwrap();
        rows += r;
        bytes += b;
    }
    let secs = start.elapsed().as_secs_f64();
    timer.join().unwrap();
    for p in producers {
        p.join().unwrap();
    }
    println!(
        "{{\"channels\": {channels}, \"seconds\": {secs:.2}, \"records\": {rows}, \"recordsPerSecond\": {:.0}, \"bytesPerRecord\": {:.1}, \"gbPerSecond\": {:.3}, \"batchBytes\": {per_batch}}}",
        rows as f64 / secs,
        bytes as f64 / rows.max(1) as f64,
        bytes as f64 / secs / 1e9
    );
    producer.close();
    consumer.close();
}
