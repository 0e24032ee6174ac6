#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Kafka end to end, against a real Apache Kafka broker (scripts/kafka.sh):
//! Kafka → keyed TUMBLE window → Kafka with `exactly-once` delivery, on the
//! distributed engine, while the coordinator and the workers are killed with
//! `kill -9` mid-run. A `read_committed` consumer must see exactly the output
//! of a run that was never killed: no row lost, none written twice. Also two
//! windowed golden cases with their input in Kafka, against Flink's output.

use std::time::{Duration, Instant};

mod common;
use common::cluster::*;
use common::*;
use sluice_connectors::testing::{Record, shared, unique_topic};

const PARTITIONS: i64 = 4;

/// The job: two source subtasks for four partitions (so each subtask keeps a
/// watermark per partition), bounded at the offsets the input will end at.
fn sql(input: &str, output: &str, rows: i64) -> String {
    let per_partition = rows / PARTITIONS;
    let ends: Vec<String> = (0..PARTITIONS).map(|p| format!("partition:{p},offset:{per_partition}")).collect();
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'kafka', 'topic' = '{input}', 'properties.bootstrap.servers' = '{b}', 'format' = 'json',
   'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'specific-offsets',
   'scan.bounded.specific-offsets' = '{ends}', 'scan.parallelism' = '2');
CREATE TABLE per_window (k INT, window_start TIMESTAMP(3), c BIGINT, s INT)
 WITH ('connector' = 'kafka', 'topic' = '{output}', 'properties.bootstrap.servers' = '{b}', 'format' = 'json',
   'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = '{output}');
INSERT INTO per_window SELECT k, window_start, COUNT(*), SUM(v)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
",
        b = shared().bootstrap,
        ends = ends.join(";"),
    )
}

fn record(id: i64) -> Record {
    let k = (id * 7919) % 13;
    let v = (id * 104_729) % 1000;
    Record::new(format!("{{\"id\":{id},\"k\":{k},\"v\":{v}}}")).partition((id % PARTITIONS) as i32)
}

/// Every value a read_committed consumer sees on `topic`, sorted.
fn committed_values(topic: &str) -> Vec<String> {
    let mut v: Vec<String> = shared()
        .read_committed(topic)
        .into_iter()
        .filter_map(|m| m.value)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn kafka_to_kafka_exactly_once_survives_kill_9_of_workers_and_coordinators() {
    let rows: i64 = 12_000;
    let input = unique_topic("eos-in");
    let output = unique_topic("eos-out");
    let reference_out = unique_topic("eos-ref");
    shared().create_topic(&input, PARTITIONS as i32);
    shared().create_topic(&output, 3);
    shared().create_topic(&reference_out, 3);

    // The input arrives over about 12 s while the job runs and is killed.
    let feed_topic = input.clone();
    let feeder = std::thread::spawn(move || {
        for chunk in 0..rows / 200 {
            let records: Vec<Record> = (chunk * 200..chunk * 200 + 200).map(record).collect();
            shared().produce_all(&feed_topic, &records);
            std::thread::sleep(Duration::from_millis(200));
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&sql(&input, &output, rows));
    let mut coord = c.coordinator("coordinator-0", 4, &[]);
    let mut workers: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}-0"), 4)).collect();
    wait_for("a first checkpoint", Duration::from_secs(90), || complete_checkpoints(&c.job_dir()) >= 1);
    // Kills: a worker, the coordinator, then both, each once a checkpoint has completed since the last.
    for (round, target) in ["worker", "coordinator", "both"].iter().enumerate() {
        let newest = newest_checkpoint(&c.job_dir());
        wait_for("a checkpoint after the last kill", Duration::from_secs(120), || {
            newest_checkpoint(&c.job_dir()) > newest || c.job_finished()
        });
        std::thread::sleep(Duration::from_millis(150 * (round as u64 + 1)));
        if c.job_finished() {
            break;
        }
        if *target != "coordinator" {
            workers.remove(0).kill_9();
            workers.push(c.worker(&format!("w{round}-1"), 4));
        }
        if *target != "worker" {
            coord.kill_9();
            coord = c.coordinator(&format!("coordinator-{}", round + 1), 4, &[]);
        }
    }
    feeder.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = coord.wait(deadline.saturating_duration_since(Instant::now()));
    assert!(status.success(), "the job did not finish:\n{}", coord.log());
    let killed = committed_values(&output);

    // The same job, never killed, in this process.
    let (_, h) =
        start(&sql(&input, &reference_out, rows), "kafka-reference", &config(&[("parallelism.default", "4".into())]));
    h.join().unwrap().unwrap();
    let expected = committed_values(&reference_out);
    assert!(expected.len() > 100, "the reference produced too little: {}", expected.len());
    let (lost, duplicated) = common::chaos::sequence_check(&expected, &killed);
    assert_eq!((lost, duplicated), (0, 0), "rows lost and duplicated after kill -9");
    assert_eq!(killed, expected);
}

/// Golden cases of windowed SQL (`tests/golden/`) with their input read from Kafka: each
/// input file becomes a topic of three partitions, keyed by the grouping column as a
/// producer of such a topic would key it, so that every source subtask combines
/// per-partition watermarks. The output must still equal Apache Flink's for the file-based
/// case: the cases' out-of-order data stays within the watermark's bound in every partition,
/// so no record becomes late. Fractional numbers are compared to 12 significant digits: a
/// DOUBLE sum adds bundles that end at watermarks, and per-partition watermarks move
/// otherwise than a file's (in Flink too), so the last digits may differ.
#[test]
fn kafka_sourced_golden_cases_match_flink() {
    use common::golden::{mismatches_with, root, round_fractions, run_case};
    let mut failures = Vec::new();
    for (name, key) in [("tumble_agg", "shop"), ("out_of_order", "device")] {
        let case = root().join(name);
        let mut topics = Vec::new();
        for entry in std::fs::read_dir(case.join("input")).unwrap().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let topic = unique_topic(&format!("golden-{name}"));
            shared().create_topic(&topic, 3);
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let records: Vec<Record> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let row: serde_json::Value = serde_json::from_str(l).unwrap();
                    let group = row[key].to_string();
                    let partition = group.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 3;
                    Record::new(l.as_bytes()).key(group.into_bytes()).partition(partition as i32)
                })
                .collect();
            shared().produce_all(&topic, &records);
            topics.push((file, topic));
        }
        let rewrite = |mut sql: String| {
            for (file, topic) in &topics {
                let path =
                    format!("'connector' = 'filesystem',\n  'path' = '{}',", case.join("input").join(file).display());
                assert!(sql.contains(&path), "{name}/job.sql reads {file} otherwise than expected");
                let kafka = format!(
                    "'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{}',
  'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',",
                    shared().bootstrap
                );
                sql = sql.replace(&path, &kafka);
            }
            sql
        };
        for p in [1, 2] {
            match run_case(&case, p, 8192, &[], &rewrite) {
                Err(e) => failures.push(format!("{name} from Kafka (p={p}): {e}")),
                Ok(outputs) => {
                    let label = format!("{name} from Kafka (p={p})");
                    failures.extend(mismatches_with(&case, &label, outputs, &round_fractions));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Per-partition watermarks with an idle partition, through SQL: records arrive in one of
/// two partitions only. With `table.exec.source.idle-timeout` the empty partition stops
/// holding the watermark back and windows fire while the job runs (without it, the
/// watermark would wait for that partition forever). The rows also carry the records'
/// metadata (`METADATA FROM 'partition'` and `'offset'`) into the query.
#[test]
fn windows_fire_past_an_idle_partition_and_metadata_columns_reach_the_query() {
    let (input, output) = (unique_topic("idle-in"), unique_topic("idle-out"));
    shared().create_topic(&input, 2);
    shared().create_topic(&output, 1);
    // Ten records per second of event time for two seconds, then one at 5 s.
    let records: Vec<Record> =
        (0..20).chain([50]).map(|id| Record::new(format!("{{\"id\":{id}}}")).partition(0)).collect();
    shared().produce_all(&input, &records);
    let sql = format!(
        "CREATE TABLE src (id BIGINT, part INT METADATA FROM 'partition' VIRTUAL, `offset` BIGINT METADATA VIRTUAL,
   ts AS TO_TIMESTAMP_LTZ(id * 100, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'kafka', 'topic' = '{input}', 'properties.bootstrap.servers' = '{b}', 'format' = 'json',
   'scan.startup.mode' = 'earliest-offset');
CREATE TABLE per_second (part INT, window_start TIMESTAMP_LTZ(3), c BIGINT, last_offset BIGINT)
 WITH ('connector' = 'kafka', 'topic' = '{output}', 'properties.bootstrap.servers' = '{b}', 'format' = 'json');
INSERT INTO per_second SELECT part, window_start, COUNT(*), MAX(`offset`)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY part, window_start, window_end;
",
        b = shared().bootstrap
    );
    let cfg = config(&[("table.exec.source.idle-timeout", "300 ms".into()), ("parallelism.default", "1".into())]);
    let (state, runner) = start(&sql, "idle-partition", &cfg);
    let mut seen = Vec::new();
    wait_for("two windows past the idle partition", Duration::from_secs(30), || {
        assert!(!runner.is_finished(), "the job ended before its windows fired");
        seen = committed_values(&output);
        seen.len() >= 2
    });
    state.request_cancel();
    runner.join().unwrap().unwrap();
    assert_eq!(
        seen,
        [
            "{\"part\":0,\"window_start\":\"1970-01-01 00:00:00Z\",\"c\":10,\"last_offset\":9}",
            "{\"part\":0,\"window_start\":\"1970-01-01 00:00:01Z\",\"c\":10,\"last_offset\":19}",
        ]
    );
}
