#!/usr/bin/env python3
"""Checkpoints under full backpressure, for `make bench` (issue 18: a checkpoint
completes within 5 s when a sink is throttled and every channel is full, with a
checkpoint every second).

Runs bench/state/backpressure.sql (sources offered 5x what a throttled sink
takes) at parallelism 2 with a 1 s checkpoint interval for --seconds, then reads
`GET /v1/job/checkpoints` and `GET /v1/job/metrics` and writes a markdown table:
the checkpoints completed and failed, their durations (median, slowest), and
how backpressured the source was. Buffer debloating is on, as by default; pass
--no-debloat to see the same job without it.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"bench_backpressure: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the sluice-engine binary")
    ap.add_argument("--seconds", type=int, default=45, help="how long the job runs backpressured (default 45)")
    ap.add_argument("--sink-rate", type=int, default=1500, help="rows/s per throttled sink subtask (default 1500)")
    ap.add_argument("--no-debloat", action="store_true", help="turn buffer debloating off")
    ap.add_argument("--out", help="write the markdown report here (default: stdout)")
    a = ap.parse_args()

    rate = 5 * 2 * a.sink_rate
    rows = rate * (a.seconds + 60)  # more than the run reads: it stays backpressured
    with tempfile.TemporaryDirectory() as d:
        sql = open(os.path.join(ROOT, "bench/state/backpressure.sql")).read()
        for k, v in [("${ROWS_LAST}", rows - 1), ("${RATE}", rate), ("${SINK_RATE}", a.sink_rate),
                     ("${OUT}", os.path.join(d, "out"))]:
            sql = sql.replace(k, str(v))
        job = os.path.join(d, "backpressure.sql")
        open(job, "w").write(sql)
        port = free_port()
        argv = [a.bin, "run", job, "-p", "2", "--rest-addr", f"127.0.0.1:{port}",
                "--checkpoint-dir", os.path.join(d, "ck"), "--checkpoint-interval", "1s"]
        if a.no_debloat:
            argv += ["--set", "taskmanager.network.memory.buffer-debloat.enabled=false"]
        log(f"{rate:,} rows/s offered to sinks that take {2 * a.sink_rate:,}; running {a.seconds} s")
        with open(os.path.join(d, "stderr"), "w") as err:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
            try:
                time.sleep(a.seconds)
                if p.poll() is not None:
                    raise SystemExit(f"bench_backpressure: the job exited early:\n{open(err.name).read()[-3000:]}")
                metrics = get(port, "/v1/job/metrics")
                checkpoints = get(port, "/v1/job/checkpoints")
            finally:
                p.kill()
                p.wait()
    durations = sorted(h["durationMs"] for h in checkpoints.get("history", []) if h.get("durationMs") is not None)
    counts = checkpoints.get("counts", {})
    backpressured = metrics["vertices"][0].get("backPressuredTimeMsPerSecond") or 0.0
    median = durations[len(durations) // 2] if durations else None
    out = [
        "## Checkpoints under full backpressure",
        "",
        f"`python3 scripts/bench_backpressure.py --bin {a.bin} --seconds {a.seconds} --sink-rate {a.sink_rate}"
        f"{' --no-debloat' if a.no_debloat else ''}`: bench/state/backpressure.sql at parallelism 2, sources "
        f"offered {rate:,} rows/s against sinks that take {2 * a.sink_rate:,}, a checkpoint every second, buffer "
        f"debloating {'off' if a.no_debloat else 'on'}; figures after {a.seconds} s.",
        "",
        "| source backpressured | checkpoints completed | failed | median duration | slowest |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {backpressured:.0f} ms/s | {counts.get('completed', 0)} | {counts.get('failed', 0)} "
        f"| {median if median is not None else '-'} ms | {durations[-1] if durations else '-'} ms |",
    ]
    text = "\n".join(out) + "\n"
    if a.out:
        open(a.out, "w").write(text)
    print(text)
    if not durations:
        raise SystemExit("bench_backpressure: no checkpoint completed under backpressure")


if __name__ == "__main__":
    main()
