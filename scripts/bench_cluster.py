#!/usr/bin/env python3
"""Distributed-engine benchmarks for `make bench`; writes .bench/cluster.md.

1. Shuffle throughput between two workers' data exchanges over loopback
   (engine/examples/shuffle_bench.rs): records of about 100 bytes in batches of
   8192, through Arrow IPC frames, TCP and credit-based flow control; 1 and 2
   channels.
2. End-to-end throughput of the keyed TUMBLE job (bench/q_tumble.sql): one
   coordinator with 1 worker of 1 slot at parallelism 1, against 2 workers of
   1 slot each at parallelism 2. All processes share this machine's cores.
3. Recovery after `kill -9` of a worker holding part of about 100 MB of keyed
   state (--state-mb): a replacement worker is started at once (as a
   StatefulSet would), and the time from the kill to RUNNING again is split
   into detection, restart delay and redeployment with state restore.

Progress goes to stderr; every child process is stopped at exit.
"""

import argparse
import atexit
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILDREN = []


def log(msg):
    print(f"bench_cluster: {msg}", file=sys.stderr, flush=True)


def stop_children():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(stop_children)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, logfile):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(logfile, "w"))
    CHILDREN.append(p)
    return p


def get(addr, path):
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
            return json.load(r)
    except Exception:
        return None


def wait_for(what, timeout, f, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = f()
        if v:
            return v
        time.sleep(step)
    raise SystemExit(f"bench_cluster: timed out waiting for {what}")


def shuffle(example, seconds):
    rows = []
    for channels in (1, 2):
        out = subprocess.run([example, str(seconds), str(channels)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        log(f"shuffle, {channels} channel(s): {r['gbPerSecond']:.2f} GB/s, {r['recordsPerSecond']:.0f} records/s")
        rows.append(r)
    return rows


def tumble(bin_, workers, work):
    rpc, rest = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    clog = os.path.join(work, f"tumble-{workers}-coordinator.log")
    t0 = time.time()
    coord = spawn([bin_, "coordinator", "--job", os.path.join(ROOT, "bench/q_tumble.sql"), "-p", str(workers),
                   "--rpc-addr", rpc, "--rest-addr", rest], clog)
    for i in range(workers):
        spawn([bin_, "worker", "--coordinator", rpc, "--slots", "1", "--data-addr", "127.0.0.1:0"],
              os.path.join(work, f"tumble-{workers}-worker{i}.log"))
    rc = coord.wait(timeout=600)
    wall = time.time() - t0
    text = open(clog).read()
    if rc != 0:
        raise SystemExit(f"bench_cluster: the tumble job failed:\n{text}")
    m = re.search(r"Finished in ([0-9.]+)s: ([0-9]+) records read", text)
    secs, records = float(m.group(1)), int(m.group(2))
    log(f"q_tumble on {workers} worker(s): {records / secs:.0f} records/s ({secs:.2f} s job, {wall:.2f} s with process start)")
    return {"workers": workers, "records": records, "seconds": secs, "eps": records / secs}


STATE_JOB = """
CREATE TABLE src (k INT, v INT, ts AS TO_TIMESTAMP_LTZ(1700000000000, 3), WATERMARK FOR ts AS ts)
 WITH ('connector' = 'datagen', 'rows-per-second' = '400000',
   'fields.k.min' = '0', 'fields.k.max' = '{keys}', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE sink (k INT, c BIGINT, s INT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT k, COUNT(*), SUM(v)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' DAY)) GROUP BY k, window_start, window_end;
"""


def recovery(bin_, state_mb, work):
    # About 57 bytes of snapshot per key (measured); the window never fires.
    keys = state_mb * 18_000
    job = os.path.join(work, "state.sql")
    with open(job, "w") as f:
        f.write(STATE_JOB.format(keys=keys))
    rpc, rest = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    ck = os.path.join(work, "ck")
    clog = os.path.join(work, "recovery-coordinator.log")
    spawn([bin_, "coordinator", "--job", job, "-p", "2", "--rpc-addr", rpc, "--rest-addr", rest,
           "--checkpoint-dir", ck, "--checkpoint-interval", "5s",
           "--set", "restart-strategy.type=fixed-delay", "--set", "restart-strategy.fixed-delay.delay=100ms",
           "--set", "restart-strategy.fixed-delay.attempts=5", "--set", "heartbeat.timeout=10s"], clog)
    worker_args = [bin_, "worker", "--coordinator", rpc, "--slots", "1", "--data-addr", "127.0.0.1:0"]
    w0 = spawn(worker_args, os.path.join(work, "recovery-w0.log"))
    w1 = spawn(worker_args, os.path.join(work, "recovery-w1.log"))
    target = state_mb * 1_000_000

    def big_checkpoint():
        c = get(rest, "/v1/job/checkpoints")
        if not c:
            return None
        done = [h for h in c["history"] if h["status"] == "COMPLETED"]
        return done[0] if done and done[0]["sizeBytes"] >= target else None

    log(f"recovery: building {state_mb} MB of keyed state ({keys} keys)")
    chk = wait_for(f"a checkpoint of {state_mb} MB", 600, big_checkpoint, step=0.5)
    log(f"recovery: checkpoint {chk['id']} of {chk['sizeBytes'] / 1e6:.0f} MB in {chk['durationMs']} ms; kill -9 a worker")
    t_kill = time.time()
    w1.kill()
    w1.wait()
    spawn(worker_args, os.path.join(work, "recovery-w2.log"))

    def state():
        j = get(rest, "/v1/job")
        return j["state"] if j else None

    wait_for("the failure to be noticed", 60, lambda: state() != "RUNNING", step=0.005)
    t_detect = time.time()
    wait_for("RUNNING again", 600, lambda: state() == "RUNNING" and get(rest, "/v1/job")["restarts"] >= 1, step=0.01)
    t_running = time.time()
    text = open(clog).read()
    m = re.search(r"read and verified in ([0-9]+) ms", text)
    restore_ms = int(m.group(1)) if m else None
    # The job is RUNNING once every worker has deployed its subtasks, which
    # includes loading their state; the next checkpoint confirms it.
    log(f"recovery: detected in {(t_detect - t_kill) * 1000:.0f} ms, RUNNING after {(t_running - t_kill):.2f} s")
    return {
        "state_mb": chk["sizeBytes"] / 1e6,
        "detect_ms": (t_detect - t_kill) * 1000,
        "running_s": t_running - t_kill,
        "coordinator_restore_ms": restore_ms,
        "checkpoint_ms": chk["durationMs"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--example", required=True, help="the shuffle_bench example binary")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--state-mb", type=int, default=100)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-bench-cluster-")
    sh = shuffle(a.example, a.seconds)
    t1 = tumble(a.bin, 1, work)
    t2 = tumble(a.bin, 2, work)
    rec = recovery(a.bin, a.state_mb, work)
    cores = os.cpu_count()
    with open(a.out, "w") as f:
        f.write("## Distributed engine\n\n")
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} on {cores} cores; `scripts/bench_cluster.py`\n\n")
        f.write("Shuffle between two workers over loopback (records of about 100 bytes, batches of 8192):\n\n")
        f.write("| channels | GB/s | records/s |\n| ---: | ---: | ---: |\n")
        for r in sh:
            f.write(f"| {r['channels']} | {r['gbPerSecond']:.2f} | {r['recordsPerSecond']:.0f} |\n")
        f.write("\nKeyed TUMBLE job (bench/q_tumble.sql, 10M rows), coordinator and workers as processes:\n\n")
        f.write("| workers x slots | parallelism | records/s | job s |\n| --- | ---: | ---: | ---: |\n")
        for t in (t1, t2):
            f.write(f"| {t['workers']} x 1 | {t['workers']} | {t['eps']:.0f} | {t['seconds']:.2f} |\n")
        f.write(f"\nRecovery after `kill -9` of one of 2 workers, {rec['state_mb']:.0f} MB of keyed state "
                f"(checkpoint took {rec['checkpoint_ms']} ms), replacement started at once, restart delay 100 ms:\n\n")
        f.write(f"- failure noticed after {rec['detect_ms']:.0f} ms\n")
        f.write(f"- RUNNING again after {rec['running_s']:.2f} s (includes every worker loading its state)\n")
        if rec["coordinator_restore_ms"] is not None:
            f.write(f"- the coordinator read and verified the checkpoint in {rec['coordinator_restore_ms']} ms\n")
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
