#!/usr/bin/env python3
"""Run a benchmark SQL file (bench/q_*.sql) on local Apache Flink and report timings.

  bash tools/flink/setup.sh
  ~/.cache/sluice/flink-venv/bin/python bench/flink/run.py bench/q_filter.sql [--runs 3]

Runs the job at parallelism 1 in STREAMING mode (PyFlink MiniCluster inside one JVM, with
Flink's default configuration otherwise), with checkpointing off (blackhole sinks need
none) and Flink's default 200 ms auto-watermark interval (--watermark-interval to change).

Reports per run:
  total_s     process start (Python) to job end, incl. JVM start-up and planning
  startup_s   JVM + TableEnvironment start-up
  job_s       statement-set submit -> job finished (wall time seen by the client)
  net_s       Flink's JobExecutionResult net runtime (job start -> finish on the cluster)
  events/s    number-of-rows (or --events, for sources other than datagen) / net_s
  peak_rss    peak resident memory of the process tree (Python client + Flink JVM),
              sampled every 50 ms with psutil; jvm_peak_rss for the JVM alone
  jvm_cpu_s   user+system CPU seconds used by the JVM
"""

import argparse
import json
import os
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "flink"))

import psutil  # noqa: E402  (installed in the Flink venv by tools/flink/setup.sh)
import run_flink  # noqa: E402


class RssSampler(threading.Thread):
    def __init__(self, interval=0.05):
        super().__init__(daemon=True)
        self.interval = interval
        self.me = psutil.Process()
        self.peak_tree = 0
        self.peak_jvm = 0
        self.jvm = None
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                procs = [self.me] + self.me.children(recursive=True)
                total = 0
                for p in procs:
                    try:
                        rss = p.memory_info().rss
                    except psutil.Error:
                        continue
                    total += rss
                    if p.pid != self.me.pid and "java" in (p.name() or ""):
                        self.jvm = p
                        self.peak_jvm = max(self.peak_jvm, rss)
                self.peak_tree = max(self.peak_tree, total)
            except psutil.Error:
                pass
            self.stop_flag.wait(self.interval)

    def jvm_cpu(self):
        if self.jvm is None:
            return None
        try:
            t = self.jvm.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job", help="bench/q_*.sql")
    ap.add_argument("--parallelism", "-p", type=int, default=1)
    ap.add_argument("--watermark-interval", default="200 ms",
                    help="pipeline.auto-watermark-interval (Flink default 200 ms)")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", metavar="FILE", help="append the result as one JSON line")
    ap.add_argument("--events", type=int,
                    help="events the job reads (default: the 'number-of-rows' of its datagen source)")
    args = ap.parse_args()

    t_start = time.monotonic()
    with open(args.job, encoding="utf-8") as fh:
        text = fh.read()
    m = re.search(r"'number-of-rows'\s*=\s*'(\d+)'", text)
    rows = int(m.group(1)) if m else None
    if args.events is not None:
        rows = args.events
    extra = {"pipeline.auto-watermark-interval": args.watermark_interval}
    for kv in args.conf:
        k, v = kv.split("=", 1)
        extra[k.strip()] = v.strip()

    sampler = RssSampler()
    sampler.start()
    java = run_flink.select_java()
    stats = run_flink.run_job(text, args.parallelism, "", extra, log=lambda m: None)
    t_end = time.monotonic()
    jvm_cpu = sampler.jvm_cpu()
    sampler.stop_flag.set()
    sampler.join()
    stats.pop("t_env", None)

    net_s = stats["net_runtime_ms"] / 1000.0 if stats["net_runtime_ms"] else None
    res = {
        "job": os.path.basename(args.job),
        "flink": __import__("importlib.metadata").metadata.version("apache-flink"),
        "java": java,
        "parallelism": args.parallelism,
        "watermark_interval": args.watermark_interval,
        "rows": rows,
        "total_s": round(t_end - t_start, 3),
        "startup_s": round(stats["env_startup_s"], 3),
        "plan_s": round(stats["plan_s"], 3),
        "job_s": round(stats["job_s"], 3),
        "net_s": net_s,
        "events_per_s_net": round(rows / net_s) if rows and net_s else None,
        "events_per_s_job": round(rows / stats["job_s"]) if rows else None,
        "peak_rss_mib": round(sampler.peak_tree / 2**20, 1),
        "jvm_peak_rss_mib": round(sampler.peak_jvm / 2**20, 1),
        "jvm_cpu_s": round(jvm_cpu, 1) if jvm_cpu is not None else None,
        "status": stats["status"],
    }
    print(json.dumps(res))
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
