#!/usr/bin/env python3
"""Run one Kafka benchmark job (written by scripts/bench_kafka.py) on local Apache Flink.

  bash tools/flink/setup.sh
  ~/.cache/sluice/flink-venv/bin/python bench/flink/run_kafka.py JOB.sql --jar "$(bash tools/flink/kafka_jar.sh)" \
      --checkpoint-dir /tmp/ck
  ... --live      # an unbounded job: runs until a line "stop" on stdin, then is cancelled

The PyFlink MiniCluster inside one JVM at parallelism 1, STREAMING mode, checkpoints every
1 s (exactly-once, Flink's default mode) to a local directory (filesystem checkpoint storage,
as Sluice's --checkpoint-dir), Flink's default 200 ms auto-watermark interval,
table.local-time-zone UTC, and the Kafka SQL connector jar on pipeline.jars.

Bounded (the default): the job reads its input to the end (scan.bounded.mode) and ends after
its final checkpoint has committed the sink's last transaction. Prints one JSON line:
  net_s        Flink's JobExecutionResult net runtime (job start -> finish on the cluster)
  job_s        submit -> job finished, as the client sees it
  jvm_cpu_s    user + system CPU seconds of the Flink JVM from submit to finish (excludes JVM
               start-up and planning, includes deployment and JIT compilation during the job)
  jvm_cpu_total_s  the same over the JVM's whole life
  jvm_peak_rss_mib  peak RSS of the JVM, sampled every 50 ms

Live (--live): prints "RUNNING" once the job's status is RUNNING, then waits for "stop" on
stdin, cancels the job and prints one JSON line with jvm_cpu_s and wall_s between the two.
"""

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "flink"))

import psutil  # noqa: E402  (installed in the Flink venv by tools/flink/setup.sh)
import run_flink  # noqa: E402


class Jvm(threading.Thread):
    """Finds the Flink JVM (the gateway child of this Python process) and samples its RSS."""

    def __init__(self):
        super().__init__(daemon=True)
        self.proc = None
        self.peak = 0
        self.stop_flag = threading.Event()

    def run(self):
        me = psutil.Process()
        while not self.stop_flag.is_set():
            try:
                if self.proc is None:
                    for p in me.children(recursive=True):
                        if "java" in (p.name() or ""):
                            self.proc = p
                if self.proc is not None:
                    self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                pass
            self.stop_flag.wait(0.05)

    def cpu(self):
        if self.proc is None:
            return None
        t = self.proc.cpu_times()
        return t.user + t.system


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job")
    ap.add_argument("--jar", required=True, help="flink-sql-connector-kafka jar (tools/flink/kafka_jar.sh)")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--checkpoint-interval", default="1 s")
    ap.add_argument("--checkpoint-dir", required=True,
                    help="a local directory for checkpoints (filesystem storage, as Sluice's --checkpoint-dir)")
    args = ap.parse_args()

    java = run_flink.select_java()
    with open(args.job, encoding="utf-8") as fh:
        items = run_flink.group_statements(run_flink.split_statements(fh.read()))
    jvm = Jvm()
    jvm.start()
    t_env = run_flink.make_table_env(1, args.checkpoint_interval, {
        "pipeline.jars": "file://" + os.path.abspath(args.jar),
        "pipeline.auto-watermark-interval": "200 ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        # The default (JobManager heap) refuses a state over 5 MiB, which TUMBLE's exceeds.
        "execution.checkpointing.storage": "filesystem",
        "execution.checkpointing.dir": "file://" + os.path.abspath(args.checkpoint_dir),
    })
    stmt_set = t_env.create_statement_set()
    for it in items:
        if it[0] == "set":
            t_env.get_config().set(it[1], it[2])
        elif it[0] == "ddl":
            t_env.execute_sql(it[1])
        else:
            stmt_set.add_insert_sql(it[1])
    while jvm.proc is None:
        time.sleep(0.05)
    cpu0, t0 = jvm.cpu(), time.monotonic()
    result = stmt_set.execute()
    client = result.get_job_client()
    res = {"flink": __import__("importlib.metadata").metadata.version("apache-flink"), "java": java,
           "connector": os.path.basename(args.jar)}
    if args.live:
        while (status := client.get_job_status().result().name) != "RUNNING":
            if status in ("FAILED", "CANCELED", "FINISHED"):
                sys.exit(f"run_kafka.py: the job is {status} before it ran")
            time.sleep(0.1)
        print("RUNNING", flush=True)
        cpu0, t0 = jvm.cpu(), time.monotonic()
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        res["jvm_cpu_s"] = round(jvm.cpu() - cpu0, 2)
        res["wall_s"] = round(time.monotonic() - t0, 2)
        res["status"] = client.get_job_status().result().name
        client.cancel().result()
    else:
        result.wait()
        res["job_s"] = round(time.monotonic() - t0, 3)
        res["jvm_cpu_s"] = round(jvm.cpu() - cpu0, 2)
        res["net_s"] = client.get_job_execution_result().result().get_net_runtime() / 1000.0
    res["jvm_cpu_total_s"] = round(jvm.cpu(), 2)
    jvm.stop_flag.set()
    res["jvm_peak_rss_mib"] = round(jvm.peak / 2**20)
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
