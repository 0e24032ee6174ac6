#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The fault-injection suite's storage faults (see `chaos.rs` for the suite):
//! a job on a coordinator and two workers checkpoints to a real S3 server
//! (MinIO) through a proxy that makes it slow, answer 500s, or report a full
//! disk; and the server itself is stopped mid-checkpoint. Through each fault
//! the job keeps running, without a restart; a checkpoint after the fault
//! succeeds; and the committed output has no row lost or duplicated.

use std::time::{Duration, Instant};

use sluice_storage::testing::S3Server;

mod common;
use common::chaos::*;
use common::cluster::*;
use common::*;

const RATE: u64 = 3_000;

fn last_checkpoint(rest: &str) -> u64 {
    json(rest, "/v1/job")["lastCompletedCheckpoint"]["id"].as_u64().unwrap_or(0)
}

fn in_flight(rest: &str) -> bool {
    json(rest, "/v1/job/checkpoints")["counts"]["inProgress"].as_u64().unwrap_or(0) > 0
}

#[test]
fn slow_failing_full_and_stopped_s3_loses_nothing_and_the_job_keeps_running() {
    let hold = scale(Duration::from_secs(3), Duration::from_secs(30));
    // Long enough to outlast the four faults and their recoveries.
    let rows = RATE * (4 * hold.as_secs() + 24);
    let expected = reference(rows);
    let mut server = S3Server::start();
    server.create_bucket("state");
    let proxy = FaultProxy::start(&server.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(dir.path());
    c.checkpoints = "s3://state/checkpoints".into();
    c.write_job(&job(dir.path(), rows, RATE));
    let o = server.options();
    let s3 = [
        format!("s3.endpoint={}", proxy.endpoint),
        format!("s3.access-key={}", o.access_key.unwrap()),
        format!("s3.secret-key={}", o.secret_key.unwrap()),
    ];
    let mut extra = vec!["--on-finish", "stay"];
    for s in &s3 {
        extra.extend(["--set", s]);
    }
    let _coord = c.coordinator("coordinator", 2, &extra);
    let _w: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    wait_for("a first checkpoint", Duration::from_secs(60), || {
        http(&c.rest, "GET", "/v1/job", "").is_some_and(|(_, b)| b.contains("\"lastCompletedCheckpoint\":{"))
    });

    let mut report = Scenario::new("S3 faults: slow (+200 ms per request), 500s, full, server stopped mid-checkpoint");
    for fault in ["slow", "500s", "full", "stopped"] {
        wait_for("a checkpoint in flight", Duration::from_secs(10), || in_flight(&c.rest));
        match fault {
            "slow" => proxy.set(Fault::Slow(Duration::from_millis(200))),
            "500s" => proxy.set(Fault::Errors),
            "full" => proxy.set(Fault::Full),
            _ => server.stop(),
        }
        std::thread::sleep(hold);
        let job = json(&c.rest, "/v1/job");
        assert_eq!(job["state"], "RUNNING", "the job stopped running during `{fault}`: {job}");
        assert_eq!(job["restarts"], 0, "the job restarted during `{fault}`: {job}");
        if fault == "stopped" {
            server.restart();
        } else {
            proxy.set(Fault::None);
        }
        report.faults += 1;
        let (healed, newest) = (Instant::now(), last_checkpoint(&c.rest));
        wait_for("a checkpoint after the fault", Duration::from_secs(120), || last_checkpoint(&c.rest) >= newest + 2);
        report.recovered(healed);
        let failed = json(&c.rest, "/v1/job/checkpoints")["counts"]["failed"].as_u64().unwrap();
        report.notes.push(format!("after `{fault}` ({}s): {failed} checkpoints failed so far", hold.as_secs()));
    }
    report.notes.push(format!(
        "the proxy failed or delayed {} requests",
        proxy.injected.load(std::sync::atomic::Ordering::SeqCst)
    ));
    wait_for("the job to finish", Duration::from_secs(600), || c.job_finished());
    assert_eq!(json(&c.rest, "/v1/job")["restarts"], 0);
    let (windows, rows) = outputs(dir.path());
    report.check(&[(&expected.0, &windows), (&expected.1, &rows)]);
    report.notes.push("recovery: from the end of the fault to a checkpoint triggered after it".into());
    report.finish();
}
