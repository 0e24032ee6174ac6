#!/usr/bin/env python3
"""Kafka benchmarks for `make bench`: a real Kafka 4.4 broker (scripts/kafka.sh) on loopback,
and Sluice jobs at parallelism 1 with exactly-once output and 1 s checkpoints:

- Kafka -> filter/project -> Kafka, and Kafka -> TUMBLE -> Kafka,
- on topics of 1 and 4 partitions.

Throughput: the input is written first by a Sluice job (datagen -> kafka, at-least-once); each
measured job then reads it from the earliest offset to the end (`scan.bounded.mode =
latest-offset`), --runs times (the median by events/s is reported, with the range). Reported:
events per second of wall time, events per CPU second of the engine process (user + system, from
/usr/bin/time), the broker's CPU seconds meanwhile (from /proc), and peak RSS. The broker runs on
the same two cores. Where the time goes: the filter/project job once more to a blackhole and to an
at-least-once sink, and with bigger librdkafka fetches, with the engine's busy share of wall time.

Latency: the same jobs, unbounded, on fresh topics, while bench/kafka/LatencyProbe.java (Kafka's
Java client) produces JSON records at a fixed rate (--rate) with the wall-clock ms of the send in
each, and consumes the output with isolation.level=read_committed. filter/project: consume time
minus the producer time of the input record (carried through as `pt`). TUMBLE (1 s windows on the
producer time, watermark 1 s behind): consume time minus the window's end, i.e. from the moment
the window's last record could have been produced; it includes the 1 s watermark delay that the SQL
asks for. Exactly-once output is visible only once the checkpoint after it commits the
transaction, so latency is about the checkpoint interval or more.

Flink: with --flink PYTHON (the venv of tools/flink/setup.sh; `BENCH_FLINK=1 make bench`), Apache
Flink runs the same SQL on the same broker and input topics through bench/flink/run_kafka.py, and
its figures are written to --flink-results (bench/flink/kafka_results.tsv, checked in); without
--flink they are read from that file. The ratio Sluice / Flink is per core: events per CPU second
of the engine process against events per CPU second of the Flink JVM.

Writes a markdown section to --out.
"""
import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLINK_TSV = os.path.join(ROOT, "bench/flink/kafka_results.tsv")
FLINK_COLUMNS = ["job", "partitions", "events", "net_s", "events_per_s", "jvm_cpu_s", "events_per_cpu_s",
                 "broker_cpu_s", "jvm_peak_rss_mib", "lat_measured", "lat_p50_ms", "lat_p99_ms", "lat_max_ms", "live_cpu_pct",
                 "source"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
JOBS = ("filter/project", "TUMBLE")
LOADS = []  # the 1-minute load average after each measured run: the machine is shared


def note_load():
    LOADS.append(os.getloadavg()[0])


@contextlib.contextmanager
def work_dir(keep):
    work = tempfile.mkdtemp(prefix="sluice-bench-kafka-")
    try:
        yield work
    finally:
        if keep:
            print(f"bench_kafka: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    """User + system CPU seconds of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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


def sink_opts(topic, bootstrap, prefix):
    # transaction.timeout.ms: Sluice's default; Flink's own default (1 h) is over the broker's
    # transaction.max.timeout.ms (15 min), so both get it said.
    return kafka_opts(topic, bootstrap, ", 'sink.delivery-guarantee' = 'exactly-once', "
                      f"'sink.transactional-id-prefix' = '{prefix}', 'properties.transaction.timeout.ms' = '900000'")


def throughput_sql(bootstrap, i, out_topic, prefix):
    src = (f"CREATE TABLE src (id BIGINT, k INT, v INT, ts AS TO_TIMESTAMP_LTZ(id, 3), "
           f"WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({kafka_opts('input', bootstrap)}, "
           f"'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');\n")
    o = sink_opts(out_topic, bootstrap, prefix)
    if i == 0:
        return src + (f"CREATE TABLE dst (id BIGINT, k INT, v INT) WITH ({o});\n"
                      "INSERT INTO dst SELECT id, k, v FROM src WHERE MOD(v, 2) = 0;\n")
    return src + tumble_sql(o)


# librdkafka's fetch sizing over its defaults (1 MiB per partition and fetch, 100,000 queued
# messages), to show how much of the source's time is waiting for fetches.
BIG_FETCH = ", 'properties.fetch.message.max.bytes' = '16777216', 'properties.queued.min.messages' = '1000000'"
BREAKDOWN = {  # name -> (sink, source options)
    "blackhole": ("blackhole", ""),
    "at-least-once": ("at-least-once", ""),
    "blackhole, big fetches": ("blackhole", BIG_FETCH),
    "exactly-once, big fetches": ("exactly-once", BIG_FETCH),
}


def breakdown_sql(bootstrap, variant, topic, prefix):
    """filter/project with another sink or source options: where the time of the exactly-once job goes."""
    sink, extra = BREAKDOWN[variant]
    src = (f"CREATE TABLE src (id BIGINT, k INT, v INT) WITH ({kafka_opts('input', bootstrap)}, "
           f"'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'{extra});\n")
    if sink == "blackhole":
        o = "'connector' = 'blackhole'"
    elif sink == "at-least-once":
        o = kafka_opts(topic, bootstrap, ", 'sink.delivery-guarantee' = 'at-least-once'")
    else:
        o = sink_opts(topic, bootstrap, prefix)
    return src + (f"CREATE TABLE dst (id BIGINT, k INT, v INT) WITH ({o});\n"
                  "INSERT INTO dst SELECT id, k, v FROM src WHERE MOD(v, 2) = 0;\n")


def tumble_sql(o):
    return (f"CREATE TABLE dst (k INT, window_start TIMESTAMP(3), c BIGINT, s BIGINT) WITH ({o});\n"
            "INSERT INTO dst SELECT k, window_start, COUNT(*), SUM(CAST(v AS BIGINT)) FROM "
            "TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;\n")


def live_sql(bootstrap, i, in_topic, out_topic, prefix):
    """The same jobs, unbounded, with event time = the producer's timestamp `pt`."""
    src = (f"CREATE TABLE src (id BIGINT, k INT, v INT, pt BIGINT, ts AS TO_TIMESTAMP_LTZ(pt, 3), "
           f"WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({kafka_opts(in_topic, bootstrap)}, "
           f"'scan.startup.mode' = 'earliest-offset');\n")
    o = sink_opts(out_topic, bootstrap, prefix)
    if i == 0:
        return src + (f"CREATE TABLE dst (id BIGINT, k INT, v INT, pt BIGINT) WITH ({o});\n"
                      "INSERT INTO dst SELECT id, k, v, pt FROM src WHERE MOD(v, 2) = 0;\n")
    return src + tumble_sql(o)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


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


class Probe:
    """bench/kafka/LatencyProbe.java, compiled once into the work directory."""

    def __init__(self, work):
        libs = os.path.join(subprocess.check_output(
            ["bash", os.path.join(ROOT, "scripts/kafka.sh"), "path"], text=True).strip(), "libs")
        jars = [os.path.join(libs, j) for j in os.listdir(libs) if re.match(r"(kafka-clients|slf4j-api)-.*\.jar$", j)]
        self.classes = os.path.join(work, "probe")
        subprocess.check_call(["javac", "-nowarn", "-cp", ":".join(jars), "-d", self.classes,
                               os.path.join(ROOT, "bench/kafka/LatencyProbe.java")])
        self.cp = ":".join([self.classes, *jars])

    def cmd(self, bootstrap, partitions, *args):
        return ["java", "-Xmx256m", "-XX:+UseSerialGC", "-cp", self.cp, "LatencyProbe", "--bootstrap", bootstrap,
                "--partitions", str(partitions), *args]

    def create(self, bootstrap, partitions, *topics):
        subprocess.check_call(self.cmd(bootstrap, partitions, "--create", ",".join(topics)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def measure(self, bootstrap, partitions, in_topic, out_topic, mode, a, log):
        args = ["--in", in_topic, "--out", out_topic, "--rate", str(a.rate), "--warmup", str(a.warmup),
                "--seconds", str(a.live_seconds), "--tail", "5", "--mode", mode, "--window-ms", "1000"]
        with open(log, "w") as err:
            out = subprocess.check_output(self.cmd(bootstrap, partitions, *args), text=True, stderr=err)
        res = json.loads(out.strip().splitlines()[-1])
        if "error" in res or not res.get("measured"):
            sys.exit(f"bench_kafka: the latency probe measured nothing: {res}; see {log}")
        return res


def sluice_live(a, probe, work, bootstrap, partitions, i, mode):
    in_t, out_t = f"live-in-s{i}", f"live-out-s{i}"
    probe.create(bootstrap, partitions, in_t, out_t)
    sql = write(os.path.join(work, f"live{i}.sql"), live_sql(bootstrap, i, in_t, out_t, f"live-s{i}"))
    log = open(os.path.join(work, f"live{i}.log"), "w")
    job = subprocess.Popen([a.bin, "run", sql, "--parallelism", "1", "--rest-addr", "127.0.0.1:0",
                            "--checkpoint-dir", os.path.join(work, f"live-ck{i}"), "--checkpoint-interval", "1s"],
                           stdout=subprocess.DEVNULL, stderr=log)
    try:
        time.sleep(1)
        if job.poll() is not None:
            sys.exit(f"bench_kafka: the live job {i} exited ({job.returncode}); see {log.name}")
        cpu0, t0 = cpu_s(job.pid), time.monotonic()
        res = probe.measure(bootstrap, partitions, in_t, out_t, mode, a, os.path.join(work, f"probe-s{i}.log"))
        res["cpu_pct"] = 100 * (cpu_s(job.pid) - cpu0) / (time.monotonic() - t0)
        if job.poll() is not None:
            sys.exit(f"bench_kafka: the live job {i} exited ({job.returncode}); see {log.name}")
    finally:
        job.send_signal(signal.SIGTERM)
        try:
            job.wait(30)
        except subprocess.TimeoutExpired:
            job.kill()
            job.wait()
    return res


def flink_bounded(a, jar, work, sql, name):
    out = subprocess.check_output([a.flink, os.path.join(ROOT, "bench/flink/run_kafka.py"), sql, "--jar", jar,
                                   "--checkpoint-dir", os.path.join(work, f"{name}-ck")],
                                  text=True, stderr=open(os.path.join(work, f"{name}.log"), "w"))
    return json.loads(out.strip().splitlines()[-1])


def flink_live(a, jar, probe, work, bootstrap, partitions, i, mode):
    in_t, out_t = f"live-in-f{i}", f"live-out-f{i}"
    probe.create(bootstrap, partitions, in_t, out_t)
    sql = write(os.path.join(work, f"flive{i}.sql"), live_sql(bootstrap, i, in_t, out_t, f"live-f{i}"))
    log = os.path.join(work, f"flive{i}.log")
    job = subprocess.Popen([a.flink, os.path.join(ROOT, "bench/flink/run_kafka.py"), sql, "--jar", jar, "--live",
                            "--checkpoint-dir", os.path.join(work, f"flive{i}-ck")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    try:
        line = job.stdout.readline()
        if line.strip() != "RUNNING":
            sys.exit(f"bench_kafka: Flink's live job {i} did not start; see {log}")
        res = probe.measure(bootstrap, partitions, in_t, out_t, mode, a, os.path.join(work, f"probe-f{i}.log"))
        job.stdin.write("stop\n")
        job.stdin.flush()
        stats = json.loads(job.stdout.read().strip().splitlines()[-1])
        res["cpu_pct"] = 100 * stats["jvm_cpu_s"] / stats["wall_s"]
        job.wait(60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return res


def fmt_ms(v):
    return "-" if v in (None, "", "-") else f"{int(float(v)):,}"


def num(v):
    return None if v in (None, "", "-") else float(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3, help="runs of each exactly-once throughput job (median)")
    ap.add_argument("--rate", type=int, default=20_000, help="events/s the latency probe produces")
    ap.add_argument("--warmup", type=int, default=10, help="seconds of the latency run left out at its start")
    ap.add_argument("--live-seconds", type=int, default=30, help="seconds of the latency run measured")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--flink", metavar="PYTHON", help="run Flink too, with this Python (tools/flink/setup.sh's venv)")
    ap.add_argument("--flink-results", default=FLINK_TSV)
    ap.add_argument("--partitions", default="1,4", help="partition counts to run, e.g. 1,4")
    ap.add_argument("--keep", action="store_true", help="keep the work directories (logs, SQL) for debugging")
    a = ap.parse_args()
    subprocess.check_call(["bash", os.path.join(ROOT, "scripts/kafka.sh"), "install"], stdout=subprocess.DEVNULL)
    jar = None
    if a.flink:
        jar = subprocess.check_output(["bash", os.path.join(ROOT, "tools/flink/kafka_jar.sh")], text=True).strip()
    sluice, flink = {}, {}  # (job, partitions) -> figures
    breakdown = {}  # (sink, partitions) -> figures of filter/project with another sink
    for partitions in map(int, a.partitions.split(",")):
        with work_dir(a.keep) as work:
            probe = None if a.no_latency else Probe(work)
            broker, bootstrap = start_broker(work, partitions)
            try:
                gen = write(os.path.join(work, "gen.sql"), (
                    f"CREATE TABLE g (id BIGINT, k INT, v INT) WITH ('connector' = 'datagen', "
                    f"'number-of-rows' = '{a.rows}', 'rows-per-second' = '100000000', 'fields.id.kind' = 'sequence', "
                    f"'fields.id.start' = '0', 'fields.id.end' = '{a.rows - 1}', 'fields.k.min' = '0', "
                    f"'fields.k.max' = '999', 'seed' = '7');\n"
                    f"CREATE TABLE input (id BIGINT, k INT, v INT) WITH ({kafka_opts('input', bootstrap)});\n"
                    f"INSERT INTO input SELECT * FROM g;\n"))
                run(a.bin, gen, work, "generate")
                for i, name in enumerate(JOBS):
                    runs = []
                    for n in range(a.runs):
                        path = write(os.path.join(work, f"job{i}-{n}.sql"),
                                     throughput_sql(bootstrap, i, f"out{i}", f"bench-{i}-{n}"))
                        b0 = cpu_s(broker.pid)
                        events, wall, cpu, rss = run(
                            a.bin, path, work, f"job{i}-{n}",
                            ["--checkpoint-dir", os.path.join(work, f"ck{i}-{n}"), "--checkpoint-interval", "1s"])
                        note_load()
                        runs.append({"events": events, "wall": wall, "cpu": cpu, "rss": rss,
                                     "broker": cpu_s(broker.pid) - b0})
                    # The median run by events/s, with the range of all runs.
                    runs.sort(key=lambda r: r["events"] / r["wall"])
                    r = sluice[name, partitions] = runs[len(runs) // 2]
                    r["range"] = (runs[0]["events"] / runs[0]["wall"], runs[-1]["events"] / runs[-1]["wall"])
                    print(f"bench_kafka: Sluice {name}, {partitions} partitions: {r['events'] / r['wall']:,.0f} "
                          f"events/s (median of {a.runs}), {r['events'] / r['cpu']:,.0f} per CPU s, broker "
                          f"{r['broker']:.1f} CPU s", flush=True)
                    if a.flink:
                        path = write(os.path.join(work, f"fjob{i}.sql"),
                                     throughput_sql(bootstrap, i, f"fout{i}", f"fbench-{i}"))
                        b0 = cpu_s(broker.pid)
                        res = flink_bounded(a, jar, work, path, f"fjob{i}")
                        note_load()
                        f = flink[name, partitions] = {
                            "events": a.rows, "net_s": res["net_s"], "jvm_cpu_s": res["jvm_cpu_s"],
                            "broker_cpu_s": round(cpu_s(broker.pid) - b0, 1),
                            "jvm_peak_rss_mib": res["jvm_peak_rss_mib"],
                            "source": f"Flink {res['flink']}, {res['connector'].removesuffix('.jar')}, "
                                      f"{datetime.date.today()}, bench_kafka.py --flink"}
                        print(f"bench_kafka: Flink {name}, {partitions} partitions: {a.rows / res['net_s']:,.0f} "
                              f"events/s, {a.rows / res['jvm_cpu_s']:,.0f} per JVM CPU s, broker "
                              f"{f['broker_cpu_s']:.1f} CPU s", flush=True)
                for v, variant in enumerate(BREAKDOWN):
                    path = write(os.path.join(work, f"bd{v}.sql"),
                                 breakdown_sql(bootstrap, variant, f"bd{v}", f"bd-{v}"))
                    b0 = cpu_s(broker.pid)
                    events, wall, cpu, rss = run(a.bin, path, work, f"bd{v}",
                                                 ["--checkpoint-dir", os.path.join(work, f"ck-bd{v}"),
                                                  "--checkpoint-interval", "1s"])
                    note_load()
                    breakdown[variant, partitions] = {"events": events, "wall": wall, "cpu": cpu,
                                                      "broker": cpu_s(broker.pid) - b0}
                    print(f"bench_kafka: Sluice filter/project to {variant}, {partitions} partitions: "
                          f"{events / wall:,.0f} events/s, {events / cpu:,.0f} per CPU s", flush=True)
                if probe:
                    for i, name in enumerate(JOBS):
                        mode = "record" if i == 0 else "window"
                        res = sluice[name, partitions]["live"] = sluice_live(a, probe, work, bootstrap, partitions,
                                                                             i, mode)
                        note_load()
                        print(f"bench_kafka: Sluice {name}, {partitions} partitions, latency p50 {res['p50_ms']} ms, "
                              f"p99 {res['p99_ms']} ms at {res['produce_rate']} events/s", flush=True)
                        if a.flink:
                            res = flink_live(a, jar, probe, work, bootstrap, partitions, i, mode)
                            note_load()
                            flink[name, partitions].update({"lat_measured": res["measured"], "lat_p50_ms": res["p50_ms"], "lat_p99_ms": res["p99_ms"],
                                                            "lat_max_ms": res["max_ms"],
                                                            "live_cpu_pct": round(res["cpu_pct"])})
                            print(f"bench_kafka: Flink {name}, {partitions} partitions, latency p50 {res['p50_ms']} "
                                  f"ms, p99 {res['p99_ms']} ms", flush=True)
            finally:
                broker.send_signal(signal.SIGTERM)
                try:
                    broker.wait(30)
                except subprocess.TimeoutExpired:
                    broker.kill()
    if a.flink:
        for r in flink.values():
            r["source"] += f", load average {min(LOADS):.1f}-{max(LOADS):.1f} on {os.cpu_count()} cores"
        with open(a.flink_results, "w") as f:
            f.write("# " + "\t".join(FLINK_COLUMNS) + "\n")
            for (name, partitions), r in flink.items():
                r.update(job=name, partitions=partitions, events_per_s=round(r["events"] / r["net_s"]),
                         events_per_cpu_s=round(r["events"] / r["jvm_cpu_s"]))
                f.write("\t".join(str(r.get(c, "-")) for c in FLINK_COLUMNS) + "\n")
    elif os.path.exists(a.flink_results):
        for line in open(a.flink_results):
            if line.startswith("#") or not line.strip():
                continue
            r = dict(zip(FLINK_COLUMNS, line.rstrip("\n").split("\t")))
            flink[r["job"], int(r["partitions"])] = r
    with open(a.out, "w") as f:
        f.write("\n".join(report(a, sluice, flink, breakdown)) + "\n")


def report(a, sluice, flink, breakdown):
    lines = [
        "## Kafka",
        "",
        f"{a.rows:,} JSON records (id, k, v) per topic; the engine at parallelism 1, exactly-once Kafka "
        f"sink, checkpoints every 1 s; the median of {a.runs} runs (by events/s); the broker (Kafka 4.4, KRaft, one node) on the same 2 cores. "
        "Events/s is over the engine's run time; per CPU s counts the engine process only; broker CPU s "
        "is the broker's CPU time during the run. `make bench` (scripts/bench_kafka.py). "
        f"1-minute load average after the runs: {min(LOADS):.1f}-{max(LOADS):.1f} on {os.cpu_count()} cores "
        "(the machine is shared).",
        "",
        "| job | partitions | events | wall s | events/s | events/s, all runs | engine CPU s | events per CPU s | "
        "broker CPU s | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (name, partitions), r in sluice.items():
        lines.append(f"| {name} | {partitions} | {r['events']:,} | {r['wall']:.1f} | {r['events'] / r['wall']:,.0f} | "
                     f"{r['range'][0]:,.0f}-{r['range'][1]:,.0f} | {r['cpu']:.1f} | {r['events'] / r['cpu']:,.0f} | {r['broker']:.1f} | {r['rss']:.0f} |")
    if breakdown:
        lines += [
            "",
            "Where the time goes (one run each): filter/project from the same input to a blackhole sink (the Kafka source and "
            "JSON decoding only), to Kafka at-least-once, and exactly-once (above); then the blackhole and "
            "exactly-once again with bigger fetches (`'properties.fetch.message.max.bytes' = '16777216'` and "
            "`'properties.queued.min.messages' = '1000000'` instead of librdkafka's 1 MiB and 100,000). "
            "Busy % is engine CPU over wall time; the rest is waiting (for fetches, for checkpoint commits, or "
            "for a core).",
            "",
            "| sink | partitions | wall s | events/s | engine CPU s | engine busy % | broker CPU s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        order = ["blackhole", "at-least-once", "exactly-once", "blackhole, big fetches", "exactly-once, big fetches"]
        rows = sorted([(k[1], k[0], r) for k, r in breakdown.items()] +
                      [(k[1], "exactly-once", r) for k, r in sluice.items() if k[0] == "filter/project"],
                      key=lambda t: (t[0], order.index(t[1])))
        for partitions, sink, r in rows:
            lines.append(f"| {sink} | {partitions} | {r['wall']:.1f} | {r['events'] / r['wall']:,.0f} | "
                         f"{r['cpu']:.1f} | {100 * r['cpu'] / r['wall']:.0f} | {r['broker']:.1f} |")
    if flink:
        source = next(iter(flink.values())).get("source", "")
        lines += [
            "",
            f"Apache Flink on the same broker, topics and SQL, parallelism 1, exactly-once Kafka sink, checkpoints "
            f"every 1 s ({source}; bench/flink/kafka_results.tsv, refreshed by `BENCH_FLINK=1 make bench`). "
            "Events/s over Flink's net job run time; per CPU s over the Flink JVM's CPU time from job submission "
            "to its end (JVM start-up and planning left out). Sluice / Flink per core is the ratio of events per "
            "CPU second; the issue's target is at least 5x.",
            "",
            "| job | partitions | Flink events/s | Flink JVM CPU s | Flink events per CPU s | broker CPU s | "
            "Sluice events/s | Sluice / Flink events/s | Sluice / Flink per core |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, r in sluice.items():
            f = flink.get(key)
            if not f:
                continue
            f_eps = int(f["events"]) / float(f["net_s"])
            f_cpu = int(f["events"]) / float(f["jvm_cpu_s"])
            s_eps, s_cpu = r["events"] / r["wall"], r["events"] / r["cpu"]
            lines.append(f"| {key[0]} | {key[1]} | {f_eps:,.0f} | {float(f['jvm_cpu_s']):.1f} | {f_cpu:,.0f} | "
                         f"{float(f['broker_cpu_s']):.1f} | {s_eps:,.0f} | {s_eps / f_eps:.1f}x | "
                         f"{s_cpu / f_cpu:.1f}x |")
    if any("live" in r for r in sluice.values()):
        lines += [
            "",
            f"End-to-end latency, from the producer's timestamp to a `read_committed` consumer "
            f"(bench/kafka/LatencyProbe.java): {a.rate:,} events/s produced, {a.live_seconds} s measured after "
            f"{a.warmup} s of warm-up, the jobs unbounded with exactly-once sinks and 1 s checkpoints. "
            "filter/project: consume time minus the input record's producer time. TUMBLE (1 s windows on the "
            "producer time, watermark 1 s behind it): consume time minus the window's end, so it includes the "
            "1 s watermark delay the SQL asks for. Output becomes visible when the checkpoint after it commits "
            "its transaction: a record waits for the next checkpoint (up to 1 s, 0.5 s on average) and for that "
            "checkpoint to complete. CPU % is the engine's (or the Flink JVM's) while the producer runs.",
            "",
            "| engine | job | partitions | output records measured | p50 ms | p99 ms | max ms | CPU % |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for (name, partitions), r in sluice.items():
            if "live" in r:
                lv = r["live"]
                lines.append(f"| Sluice | {name} | {partitions} | {lv['measured']:,} | {fmt_ms(lv['p50_ms'])} | "
                             f"{fmt_ms(lv['p99_ms'])} | {fmt_ms(lv['max_ms'])} | {lv['cpu_pct']:.0f} |")
        for (name, partitions), f in flink.items():
            if num(f.get("lat_p50_ms")) is not None:
                lines.append(f"| Flink | {name} | {partitions} | {fmt_ms(f.get('lat_measured'))} | "
                             f"{fmt_ms(f['lat_p50_ms'])} | "
                             f"{fmt_ms(f['lat_p99_ms'])} | {fmt_ms(f['lat_max_ms'])} | {fmt_ms(f['live_cpu_pct'])} |")
    return lines


if __name__ == "__main__":
    main()
