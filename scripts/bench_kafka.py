#!/usr/bin/env python3
"""Kafka benchmarks for `make bench`: a real Kafka 4.4 broker (scripts/kafka.sh) on loopback,
and Sluice jobs at parallelism 1 with exactly-once output and 1 s checkpoints:

- Kafka -> filter/project -> Kafka, and Kafka -> TUMBLE -> Kafka,
- on topics of 1 and 4 partitions.

The input is written first by a Sluice job (datagen -> kafka, at-least-once); each measured job
then reads it from the earliest offset to the end (`scan.bounded.mode = latest-offset`). Reported:
events per second of wall time, events per CPU second of the engine process (user + system, from
/usr/bin/time), and peak RSS. The broker runs on the same two cores, so its CPU is not the engine's.

Writes a markdown section to --out.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(work, partitions):
    port, cport = free_port(), free_port()
    log = open(os.path.join(work, "broker.out"), "w")
    proc = subprocess.Popen(
        ["bash", os.path.join(ROOT, "scripts/kafka.sh"), "run", "--port", str(port), "--controller-port", str(cport),
         "--dir", os.path.join(work, "broker"), "--parent-pid", str(os.getpid()), "--auto-create", str(partitions)],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(2)  # the broker registers itself after its listener opens
                return proc, f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"bench_kafka: the broker did not start; see {work}/broker/server.log")


def kafka_opts(topic, bootstrap, extra=""):
    return (f"'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', "
            f"'format' = 'json'{extra}")


def run(bin_, sql_path, work, name, args=()):
    log = os.path.join(work, f"{name}.log")
    cmd = ["/usr/bin/time", "-v", bin_, "run", sql_path, "--parallelism", "1", "--rest-addr", "127.0.0.1:0", *args]
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=f)
    text = open(log).read()
    if rc != 0:
        sys.exit(f"bench_kafka: {name} failed ({rc}); see {log}:\n{text[-2000:]}")
    user = float(re.search(r"User time \(seconds\): ([0-9.]+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): ([0-9.]+)", text).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    events = int(re.findall(r": (\d+) records read", text)[-1])
    wall = float(re.findall(r"Finished in ([0-9.]+)s", text)[-1])
    return events, wall, user + system, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=2_000_000)
    a = ap.parse_args()
    subprocess.check_call(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "install"], stdout=subprocess.DEVNULL)
    lines = [
        "## Kafka",
        "",
        f"{a.rows:,} JSON records (id, k, v, ts) per topic; the engine at parallelism 1, exactly-once Kafka "
        "sink, checkpoints every 1 s; the broker (Kafka 4.4, KRaft, one node) on the same 2 cores. "
        "Events/s is over the engine's run time; per CPU second counts the engine process only. "
        "`make bench` (scripts/bench_kafka.py).",
        "",
        "| job | partitions | events | wall s | events/s | events per CPU s | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for partitions in (1, 4):
        with tempfile.TemporaryDirectory(prefix="sluice-bench-kafka-") as work:
            broker, bootstrap = start_broker(work, partitions)
            try:
                src = (f"CREATE TABLE src (id BIGINT, k INT, v INT, ts AS TO_TIMESTAMP_LTZ(id, 3), "
                       f"WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({kafka_opts('input', bootstrap)}, "
                       f"'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');\n")
                gen = os.path.join(work, "gen.sql")
                with open(gen, "w") as f:
                    f.write(
                        f"CREATE TABLE g (id BIGINT, k INT, v INT) WITH ('connector' = 'datagen', "
                        f"'number-of-rows' = '{a.rows}', 'rows-per-second' = '100000000', 'fields.id.kind' = 'sequence', "
                        f"'fields.id.start' = '0', 'fields.id.end' = '{a.rows - 1}', 'fields.k.min' = '0', "
                        f"'fields.k.max' = '999', 'seed' = '7');\n"
                        f"CREATE TABLE input (id BIGINT, k INT, v INT) WITH ({kafka_opts('input', bootstrap)});\n"
                        f"INSERT INTO input SELECT * FROM g;\n")
                run(a.bin, gen, work, "generate")
                jobs = {
                    "filter/project": "CREATE TABLE out (id BIGINT, k INT, v INT) WITH ({o});\n"
                                      "INSERT INTO out SELECT id, k, v FROM src WHERE MOD(v, 2) = 0;\n",
                    "TUMBLE": "CREATE TABLE out (k INT, window_start TIMESTAMP(3), c BIGINT, s BIGINT) WITH ({o});\n"
                              "INSERT INTO out SELECT k, window_start, COUNT(*), SUM(CAST(v AS BIGINT)) FROM "
                              "TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;\n",
                }
                for i, (name, body) in enumerate(jobs.items()):
                    sink = kafka_opts(f"out{i}", bootstrap,
                                      ", 'sink.delivery-guarantee' = 'exactly-once', "
                                      f"'sink.transactional-id-prefix' = 'bench-{i}'")
                    path = os.path.join(work, f"job{i}.sql")
                    with open(path, "w") as f:
                        f.write(src + body.format(o=sink))
                    events, wall, cpu, rss = run(
                        a.bin, path, work, f"job{i}",
                        ["--checkpoint-dir", os.path.join(work, "ck"), "--checkpoint-interval", "1s"])
                    lines.append(f"| {name} | {partitions} | {events:,} | {wall:.1f} | {events / wall:,.0f} | "
                                 f"{events / cpu:,.0f} | {rss:.0f} |")
                    print(f"bench_kafka: {name}, {partitions} partitions: {events / wall:,.0f} events/s, "
                          f"{events / cpu:,.0f} per CPU s", flush=True)
            finally:
                broker.send_signal(signal.SIGTERM)
                try:
                    broker.wait(30)
                except subprocess.TimeoutExpired:
                    broker.kill()
    lines += ["", "Not measured yet: end-to-end latency to a read_committed consumer, and Flink 2.3 on the "
              "same broker."]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
