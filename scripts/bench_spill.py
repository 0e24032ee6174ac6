#!/usr/bin/env python3
"""The disk state backend's benchmark for `make bench` (issue 18: keyed state 4x
the memory budget runs; throughput against the in-memory backend).

For each job, bench/state/spill.sql (a GROUP BY over --keys uniformly random
keys) and bench/state/spill_window.sql (the same keys in a one-day TUMBLE window,
whose pane spills to runs), runs it to the end, first on the heap backend
(`state.backend.type: hashmap`), then on the disk backend with
`taskmanager.memory.managed.size` set to a quarter of the heap run's state, and
writes a markdown table: seconds, rows per second and peak RSS.

The heap run's state is its peak RSS less that of the same job over 1,000 keys
(the process's own footprint), so the budget is a quarter of what the state
took on the heap.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"bench_spill: {msg}", file=sys.stderr, flush=True)


JOBS = [
    ("bench/state/spill.sql", "GROUP BY"),
    ("bench/state/spill_window.sql", "one-day TUMBLE window, GROUP BY window and key"),
]


def run(binary, query, keys, rows, settings):
    """Runs the job to its end; returns (seconds, peak RSS in bytes, stderr)."""
    sql = open(os.path.join(ROOT, query)).read()
    for k, v in [("${ROWS_LAST}", rows - 1), ("${ROWS}", rows), ("${KEYS_MAX}", keys - 1), ("${KEYS}", keys)]:
        sql = sql.replace(k, str(v))
    with tempfile.TemporaryDirectory() as d:
        job = os.path.join(d, "spill.sql")
        open(job, "w").write(sql)
        argv = [binary, "run", job, "-p", "1", "--rest-addr", "127.0.0.1:0"]
        for k, v in settings.items():
            argv += ["--set", f"{k}={v}"]
        start = time.monotonic()
        with open(os.path.join(d, "stderr"), "w+") as errf:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf)
            _, status, usage = os.wait4(p.pid, 0)
            seconds = time.monotonic() - start
            errf.seek(0)
            err = errf.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"bench_spill: {' '.join(argv)} failed:\n{err[-3000:]}")
        return seconds, usage.ru_maxrss * 1024, err


def mib(n):
    return f"{n / (1 << 20):,.0f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the sluice-engine binary")
    ap.add_argument("--keys", type=int, default=2_000_000)
    ap.add_argument("--rows", type=int, default=6_000_000)
    ap.add_argument("--out", help="write the markdown report here (default: stdout)")
    a = ap.parse_args()

    out = [
        "## Keyed state 4x the memory budget (disk state backend)",
        "",
        f"`python3 scripts/bench_spill.py --bin {a.bin} --keys {a.keys} --rows {a.rows}`: "
        f"{a.keys:,} uniformly random keys, {a.rows:,} rows, parallelism 1.",
    ]
    for query, what in JOBS:
        out += [""] + bench(a, query, what)
    text = "\n".join(out) + "\n"
    if a.out:
        open(a.out, "w").write(text)
    print(text)


def bench(a, query, what):
    """The table of one job: the heap run, then the disk run at a quarter of its state."""
    log(f"{query}: baseline, the same job over 1,000 keys")
    _, base_rss, _ = run(a.bin, query, 1000, a.rows, {})
    log(f"{query}: heap backend, {a.keys:,} keys, {a.rows:,} rows")
    heap_s, heap_rss, _ = run(a.bin, query, a.keys, a.rows, {})
    state = max(heap_rss - base_rss, 1 << 20)
    budget = state // 4
    log(f"{query}: disk backend, budget {mib(budget)} (a quarter of {mib(state)} of state)")
    disk_s, disk_rss, err = run(
        a.bin, query, a.keys, a.rows, {"state.backend.type": "disk", "taskmanager.memory.managed.size": str(budget)}
    )
    if "state backend 'disk'" not in err:  # the console line of the disk backend
        raise SystemExit("bench_spill: the disk run did not log that it used the disk backend")
    out = [
        f"`{query}` ({what}). State on the heap: {mib(state)} (peak RSS {mib(heap_rss)} less {mib(base_rss)} "
        "for 1,000 keys).",
        "",
        "| backend | seconds | rows/s | peak RSS | |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, s, rss, note in [
        ("heap (`hashmap`)", heap_s, heap_rss, "-"),
        (f"disk, budget {mib(budget)}", disk_s, disk_rss, f"{disk_s / heap_s:.2f}x the heap run's time"),
    ]:
        out.append(f"| {name} | {s:.1f} | {a.rows / s:,.0f} | {mib(rss)} | {note} |")
    return out


if __name__ == "__main__":
    main()
