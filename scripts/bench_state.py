#!/usr/bin/env python3
"""Checkpoint and state benchmarks for `make bench`: drives the release binary
through its CLI and REST API and writes .bench/state.md.

For each state size (--sizes, as reported by the checkpoint's sizeBytes):
  1. builds keyed window state that stays resident (bench/state/build.sql over a
     generated CSV file with one line per key; the number of keys is calibrated
     from a small run's sizeBytes),
  2. measures periodic checkpoints to a local directory and to S3 (MinIO),
     taken after the input is fully read (two in a row, with no new input
     between them: incremental checkpoints write almost nothing the second
     time), then the first checkpoint after 1% of the keys changed,
  3. times a stop-with-savepoint,
  4. times a restore from it at the same and at another parallelism
     (process start until GET /v1/job says RUNNING; the window operator's
     key groups are restored lazily after that, see runtime::lazy; the time
     to the first output record is scripts/bench_restore.py's).
Then, once, the barrier alignment of a keyed job at half its max throughput
(bench/state/align.sql, parallelism 2, a checkpoint every second).

Progress goes to stderr; child processes and MinIO are stopped at exit.
"""

import argparse
import atexit
import datetime
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S3_KEY, S3_SECRET, S3_BUCKET = "benchkey", "bench-secret-key", "bench"
EVENT_TIME_MS = 1_700_000_000_000  # the same event time on every line: the window never fires

CHILDREN = []  # Proc objects still to stop at exit


def log(msg):
    print(f"bench_state: {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def parse_size(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]?)B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size '{text}' (examples: 10M, 100M, 1G)")
    return int(float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2).upper()])


def fmt_ms(v):
    return "-" if v is None else f"{v:.1f}"


def human(n):
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


# --- processes -----------------------------------------------------------------


class Proc:
    """A child process with its log file, its wall clock start and its peak RSS."""

    def __init__(self, argv, log_path, env=None):
        self.argv = argv
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.rc = None
        self.peak_rss_kb = None
        CHILDREN.append(self)

    def poll(self):
        if self.rc is None:
            try:
                pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            except ChildProcessError:
                self.rc = self.p.returncode if self.p.returncode is not None else -1
                return self.rc
            if pid:
                self.rc = os.waitstatus_to_exitcode(status)
                self.peak_rss_kb = ru.ru_maxrss
                self.p.returncode = self.rc
                self.logf.close()
                if self in CHILDREN:
                    CHILDREN.remove(self)
        return self.rc

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                return None
            time.sleep(0.05)
        return self.rc

    def rss_hwm_kb(self):
        """VmHWM of a running process (peak RSS so far)."""
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return self.peak_rss_kb

    def stop(self, grace=5.0):
        if self.poll() is not None:
            return
        try:
            os.kill(self.p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if self.wait(grace) is None:
            try:
                os.kill(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(5)

    def tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def stop_children():
    for c in list(CHILDREN):
        c.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- HTTP ----------------------------------------------------------------------


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def s3_request(method, endpoint, path, body=b""):
    """A SigV4-signed request to MinIO (stdlib only; used to create the bucket)."""
    host = urllib.parse.urlsplit(endpoint).netloc
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day, region = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d"), "us-east-1"
    ph = hashlib.sha256(body).hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canon = "\n".join([method, path, "", f"host:{host}\nx-amz-content-sha256:{ph}\nx-amz-date:{amz}\n", signed, ph])
    scope = f"{day}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canon.encode()).hexdigest()])
    k = ("AWS4" + S3_SECRET).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={S3_KEY}/{scope}, SignedHeaders={signed}, Signature={sig}"
    req = urllib.request.Request(endpoint + path, data=body if method == "PUT" else None, method=method,
                                 headers={"x-amz-date": amz, "x-amz-content-sha256": ph, "Authorization": auth})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def start_minio(work):
    try:
        minio = subprocess.run(["bash", os.path.join(ROOT, "scripts/s3-server.sh"), "install"], check=True,
                               capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError as e:
        raise BenchError(f"cannot install MinIO (scripts/s3-server.sh install): {e.stderr.strip()[-500:]}")
    log(f"MinIO: {minio}")
    port = free_port()
    data = os.path.join(work, "minio")
    proc = Proc(["bash", os.path.join(ROOT, "scripts/s3-server.sh"), "run", "--addr", f"127.0.0.1:{port}", "--dir",
                 data, "--access-key", S3_KEY, "--secret-key", S3_SECRET], os.path.join(work, "minio.log"))
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise BenchError(f"MinIO exited with {proc.rc}:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(endpoint + "/minio/health/live", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"MinIO did not become live on {endpoint} within 30 s:\n{proc.tail()}")
        time.sleep(0.2)
    status, text = s3_request("PUT", endpoint, f"/{S3_BUCKET}")
    if status != 200 and "BucketAlreadyOwnedByYou" not in text:
        raise BenchError(f"cannot create bucket '{S3_BUCKET}' on {endpoint}: HTTP {status} {text[:300]}")
    log(f"MinIO on {endpoint}, bucket '{S3_BUCKET}'")
    return proc, endpoint


# --- the engine ----------------------------------------------------------------


class Engine:
    """One `sluice-engine run` process and its REST API."""

    def __init__(self, bench, name, job_sql, args):
        # savepoints go to the work directory or the bucket, wherever the job's checkpoints go
        allowed = f"sluice.savepoint.allowed-directories={bench.work},s3://{S3_BUCKET}"
        self.argv = [bench.bin, "run", job_sql, "--rest-addr", "127.0.0.1:0", "--set", allowed, *args]
        self.name = name
        self.proc = Proc(self.argv, os.path.join(bench.work, f"{name}.log"), env=bench.env)
        self.base = None

    def command(self, bench):
        """The command line as a user would type it (paths relative to the work dir)."""
        s = " ".join(shlex.quote(a) for a in self.argv)
        return s.replace(bench.work + "/", "$W/").replace(bench.bin, "sluice-engine")

    def wait_rest(self, timeout=60):
        deadline = time.monotonic() + timeout
        while self.base is None:
            m = re.search(r"REST API on (http://\S+)", self.proc.text())
            if m:
                self.base = m.group(1).rstrip("/")
                break
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name}: the engine exited with {self.proc.rc} before serving REST:\n"
                                 f"{self.proc.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no 'REST API on' line within {timeout} s:\n{self.proc.tail()}")
            time.sleep(0.02)
        return self.base

    def get(self, path):
        status, body = http("GET", self.base + path)
        if status != 200:
            raise BenchError(f"{self.name}: GET {path}: HTTP {status}: {body}")
        return body

    def post(self, path, body):
        status, out = http("POST", self.base + path, body)
        if status not in (200, 202):
            raise BenchError(f"{self.name}: POST {path}: HTTP {status}: {out}")
        return out

    def alive(self):
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name}: the engine exited with {self.proc.rc}:\n{self.proc.tail()}")

    def wait_state(self, want, timeout):
        """Seconds from process start until GET /v1/job reports `want`."""
        deadline = time.monotonic() + timeout
        self.wait_rest(timeout)
        while True:
            self.alive()
            try:
                job = self.get("/v1/job")
            except (OSError, BenchError):
                job = None
            if job and job["state"] == want:
                return time.monotonic() - self.proc.t0
            if job and job["state"] in ("FAILED", "CANCELED", "FINISHED"):
                raise BenchError(f"{self.name}: job is {job['state']}: {job.get('error')}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: not {want} within {timeout} s (last: {job and job['state']})")
            time.sleep(0.02)

    def records_in(self, vertex_match):
        m = self.get("/v1/job/metrics")
        vs = [v for v in m["vertices"] if vertex_match in v["name"]] or m["vertices"][-1:]
        return sum(v["recordsIn"] for v in vs)

    def checkpoints(self):
        return self.get("/v1/job/checkpoints")["history"]

    def pause_ms(self, checkpoint_id):
        """The longest task-thread pause of any subtask for a checkpoint, in ms, from the engine's log
        (the `snapshot_pause` line: the time from the aligned barrier to the barrier forwarded)."""
        found = [int(us) for cid, us in re.findall(r"checkpoint (\d+): vertex \d+ subtask \d+: task thread paused (\d+) us",
                                                      self.proc.text()) if int(cid) == checkpoint_id]
        return max(found) / 1000 if found else None

    def cancel(self, timeout=120):
        if self.proc.poll() is None:
            try:
                self.post("/v1/job/cancel", {})
            except (OSError, BenchError) as e:
                log(f"{self.name}: cancel failed ({e}); stopping the process")
            if self.proc.wait(timeout) is None:
                log(f"{self.name}: still running {timeout} s after cancel; killing it")
                self.proc.stop()
        return self.proc.rc

    def savepoint(self, target, stop, timeout):
        """Stop-with-savepoint (or not); returns (wall seconds, location, history entry or None)."""
        t0 = time.monotonic()
        trig = self.post("/v1/job/savepoints", {"targetDirectory": target, "stop": stop})["triggerId"]
        deadline = t0 + timeout
        entry = None
        while True:
            st = self.get(f"/v1/job/savepoints/{trig}")
            if st["status"] == "COMPLETED":
                wall = time.monotonic() - t0
                try:
                    entry = next((c for c in self.checkpoints() if c["kind"] == "savepoint"
                                  and c["location"] == st["location"]), None)
                except (OSError, BenchError):
                    pass  # the job may have stopped already
                return wall, st["location"], entry
            if st["status"] == "FAILED":
                raise BenchError(f"{self.name}: savepoint to {target} failed: {st['error']}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: savepoint not complete within {timeout} s")
            self.alive()
            time.sleep(0.05)


# --- the benchmarks ------------------------------------------------------------


class BenchBase:
    """What every engine benchmark has: the binary, a work directory under --work (or
    .bench), the engines' environment with `log` as SLUICE_LOG, and the command lines
    run (see `Engine`). scripts/bench_restore.py builds on it too."""

    def __init__(self, args, prefix, log):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        if not os.access(self.bin, os.X_OK):
            raise BenchError(f"{self.bin} is missing; run 'make build' (cargo build --release -p sluice-engine) first")
        base = args.work or os.path.join(ROOT, ".bench")
        os.makedirs(base, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix=prefix, dir=base)
        self.env = dict(os.environ)
        self.env["SLUICE_LOG"] = log
        self.commands = []  # (what, command line)

    def record(self, what, engine):
        self.commands.append((what, engine.command(self)))


class Bench(BenchBase):
    def __init__(self, args):
        # warnings, and the line per checkpoint and subtask that gives its task-thread pause
        super().__init__(args, "state-", "warn,snapshot_pause=info")
        self.minio = None
        self.s3_endpoint = None
        self.rows = []  # per size and storage
        self.build_ckpts = []  # (size label, storage, id, sizeBytes, durationMs) during the build
        self.align = None
        self.notes = []

    def job(self, template, **subst):
        with open(os.path.join(ROOT, "bench/state", template)) as f:
            text = f.read()
        for k, v in subst.items():
            text = text.replace(f"@{k}@", str(v))
        if "@" in re.sub(r"--.*", "", text):
            raise BenchError(f"bench/state/{template}: a placeholder is not substituted")
        name = template.replace(".sql", "-" + "-".join(str(v).split("/")[-1] for v in subst.values()) + ".sql")
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def s3_args(self):
        return ["--s3-endpoint", self.s3_endpoint, "--set", f"s3.access-key={S3_KEY}",
                "--set", f"s3.secret-key={S3_SECRET}"]

    # -- data

    def make_data(self, keys):
        d = os.path.join(self.work, f"data-{keys}")
        os.makedirs(d, exist_ok=True)
        t0 = time.monotonic()
        path = os.path.join(d, "keys.csv")
        with open(path, "w") as f:
            step = 200_000
            for lo in range(0, keys, step):
                # payload: 64 characters, distinct per key (16 hex digits, four times)
                f.write("".join(f"{k},{EVENT_TIME_MS},{k % 1000},{(h := f'{k * 2654435761 % 2**64:016x}')}{h}{h}{h}\n"
                                for k in range(lo, min(keys, lo + step))))
        log(f"generated {keys} keys ({os.path.getsize(path) / 1e6:.0f} MB of CSV) in {time.monotonic() - t0:.1f} s")
        return d

    # -- 1. build state and checkpoint it

    def build(self, label, keys, data, storage, interval):
        """Runs build.sql until every key is read and two checkpoints after that are complete."""
        job_sql = self.job("build.sql", DATA_DIR=data)
        job_id = f"state-{label}-{storage}"
        if storage == "s3":
            ckpt, extra = f"s3://{S3_BUCKET}/ckpt", self.s3_args()
        else:
            ckpt, extra = os.path.join(self.work, "ckpt"), []
        e = Engine(self, job_id, job_sql, ["-p", str(self.args.parallelism), "--job-id", job_id,
                                           "--checkpoint-dir", ckpt, "--checkpoint-interval", interval, *extra])
        self.record(f"build {label}, checkpoints to {storage}", e)
        e.wait_rest()
        deadline = time.monotonic() + self.args.timeout
        n = 0
        while n < keys:
            e.alive()
            n = e.records_in("Window")
            if time.monotonic() > deadline:
                raise BenchError(f"{job_id}: read {n} of {keys} records in {self.args.timeout} s")
            time.sleep(0.2)
        read_s = time.monotonic() - e.proc.t0
        hist = e.checkpoints()
        before = max((c["id"] for c in hist), default=0)
        for c in sorted(hist, key=lambda c: c["id"]):
            if c["status"] == "COMPLETED" and c["kind"] == "checkpoint":
                self.build_ckpts.append((label, storage, c["id"], c["sizeBytes"], c["durationMs"]))
        log(f"{job_id}: {keys} records read in {read_s:.1f} s; waiting for two checkpoints after checkpoint {before}")
        after = []
        while len(after) < 2:
            e.alive()
            hist = e.checkpoints()
            failed = [c for c in hist if c["id"] > before and c["status"] == "FAILED"]
            if failed:
                raise BenchError(f"{job_id}: checkpoint {failed[0]['id']} failed: {failed[0].get('failure')}")
            after = sorted((c for c in hist if c["id"] > before and c["status"] == "COMPLETED"
                            and c["kind"] == "checkpoint"), key=lambda c: c["id"])
            if time.monotonic() > deadline:
                raise BenchError(f"{job_id}: fewer than two checkpoints after the input within {self.args.timeout} s")
            time.sleep(0.2)
        c1, c2 = after[:2]
        for c in (c1, c2):
            c["pauseMs"] = e.pause_ms(c["id"])
        log(f"{job_id}: checkpoints {c1['id']}, {c2['id']}: {human(c1['sizeBytes'])} in {c1['durationMs']} ms, "
            f"{human(c2['sizeBytes'])} in {c2['durationMs']} ms")
        c3 = self.change_one_percent(e, job_id, data, keys, c2["id"], deadline)
        rss_build = e.proc.rss_hwm_kb()
        return e, {"label": label, "keys": keys, "storage": storage, "read_s": read_s, "c1": c1, "c2": c2,
                   "c3": c3, "rss_mib": (rss_build or 0) / 1024, "job_sql": job_sql, "job_id": job_id}

    def change_one_percent(self, e, job_id, data, keys, after_id, deadline):
        """Adds a file that updates 1% of the keys (spread over all of them) to the monitored
        directory, and returns the first checkpoint completed after every line of it was read:
        an incremental checkpoint writes about that share of the state."""
        changed = max(1, keys // 100)
        path = os.path.join(data, "changed.csv")
        with open(path + ".tmp", "w") as f:
            f.write("".join(f"{k},{EVENT_TIME_MS},1,{'f' * 64}\n" for k in range(0, keys, keys // changed)[:changed]))
        os.rename(path + ".tmp", path)
        try:
            while e.records_in("Window") < keys + changed:
                e.alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"{job_id}: the 1% change file was not read within {self.args.timeout} s")
                time.sleep(0.2)
            read_at = max((c["id"] for c in e.checkpoints()), default=after_id)
            while True:
                e.alive()
                done = [c for c in e.checkpoints() if c["id"] > read_at and c["status"] == "COMPLETED"
                        and c["kind"] == "checkpoint"]
                if done:
                    c3 = min(done, key=lambda c: c["id"])
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{job_id}: no checkpoint after the 1% change within {self.args.timeout} s")
                time.sleep(0.2)
        finally:
            os.remove(path)
        c3["pauseMs"] = e.pause_ms(c3["id"])
        log(f"{job_id}: after {changed} of {keys} keys changed, checkpoint {c3['id']} wrote "
            f"{human(c3.get('writtenBytes', c3['sizeBytes']))} of {human(c3['sizeBytes'])} in {c3['durationMs']} ms")
        return c3

    # -- 3. savepoint, 4. restore

    def restore(self, row, location, parallelism, extra):
        name = f"{row['job_id']}-restore-p{parallelism}"
        e = Engine(self, name, row["job_sql"], ["--restore", location, "-p", str(parallelism),
                                               "--job-id", row["job_id"] + f"-r{parallelism}", *extra])
        self.record(f"restore {row['label']} from {row['storage']} at -p {parallelism}", e)
        secs = e.wait_state("RUNNING", self.args.timeout)
        rss = (e.proc.rss_hwm_kb() or 0) / 1024
        check = None
        if self.args.verify_restore and parallelism != self.args.parallelism and row["storage"] == "local":
            # the state must survive rescaling: a savepoint of the restored job is as big
            wall, _, entry = e.savepoint(os.path.join(self.work, f"sp-verify-{row['label']}"), True, self.args.timeout)
            check = entry and entry["sizeBytes"]
            e.proc.wait(self.args.timeout)
        rc = e.cancel()
        log(f"{name}: RUNNING after {secs:.2f} s (peak RSS {rss:.0f} MiB); exit code {rc} after cancel")
        return secs, rss, check

    def size_run(self, label, keys, storage):
        data = self.data_dir
        interval = self.args.checkpoint_interval
        e, row = self.build(label, keys, data, storage, interval)
        if storage == "s3":
            target, extra = f"s3://{S3_BUCKET}/sp-{label}", self.s3_args()
        else:
            target, extra = os.path.join(self.work, f"sp-{label}"), []
        wall, loc, entry = e.savepoint(target, True, self.args.timeout)
        rc = e.proc.wait(self.args.timeout)
        exit_s = time.monotonic() - e.proc.t0
        if rc != 0:
            self.notes.append(f"{row['job_id']}: exit code {rc} after stop-with-savepoint")
        row.update(sp_wall=wall, sp_entry=entry, sp_loc=loc)
        log(f"{row['job_id']}: stop-with-savepoint {wall:.2f} s ({loc}); process exited {rc}")
        del exit_s
        row["restore"] = {}
        for p in sorted({self.args.parallelism, self.args.restore_parallelism}):
            row["restore"][p] = self.restore(row, loc, p, extra)
        self.rows.append(row)

    def calibrate(self):
        keys = self.args.calibration_keys
        data = self.make_data(keys)
        job_sql = self.job("build.sql", DATA_DIR=data)
        e = Engine(self, "calibrate", job_sql, ["-p", "1", "--job-id", "calibrate"])
        self.record("calibration (savepoint of a small run)", e)
        e.wait_rest()
        deadline = time.monotonic() + self.args.timeout
        while e.records_in("Window") < keys:
            e.alive()
            if time.monotonic() > deadline:
                raise BenchError("calibration: input not read in time")
            time.sleep(0.1)
        _, _, entry = e.savepoint(os.path.join(self.work, "sp-calibrate"), True, self.args.timeout)
        e.proc.wait(self.args.timeout)
        shutil.rmtree(data, ignore_errors=True)
        if not entry or not entry["sizeBytes"]:
            raise BenchError("calibration: the savepoint reported no size")
        per_key = entry["sizeBytes"] / keys
        log(f"calibration: {entry['sizeBytes']} bytes for {keys} keys = {per_key:.1f} bytes per key")
        return per_key

    # -- 5. alignment

    def alignment(self):
        a = self.args
        rows = a.align_max_rows
        job_sql = self.job("align.sql", ROWS_PER_SECOND=10**9, NUMBER_OF_ROWS=rows)
        e = Engine(self, "align-max", job_sql, ["-p", "2", "--job-id", "align-max"])
        self.record("alignment: max throughput (unthrottled, no checkpoints)", e)
        if e.proc.wait(a.timeout) != 0:
            raise BenchError(f"align-max: exit code {e.proc.rc}:\n{e.proc.tail()}")
        text = e.proc.text()
        m = re.findall(r"Finished in ([0-9.]+)s", text)
        if not m:
            raise BenchError(f"align-max: no 'Finished in' line:\n{e.proc.tail()}")
        max_eps = rows / float(m[-1])
        rate = int(max_eps / 2)
        log(f"alignment: max {max_eps:.0f} rows/s at -p 2; throttling to {rate} rows/s for {a.align_seconds} s")
        job_sql = self.job("align.sql", ROWS_PER_SECOND=rate, NUMBER_OF_ROWS=10**15)
        e = Engine(self, "align", job_sql, ["-p", "2", "--job-id", "align", "--checkpoint-dir",
                                            os.path.join(self.work, "ckpt"), "--checkpoint-interval", "1s"])
        self.record("alignment: half throughput, a checkpoint every second", e)
        e.wait_state("RUNNING", 60)
        t_run = time.monotonic()
        end = t_run + a.align_seconds
        while time.monotonic() < end:
            e.alive()
            time.sleep(0.5)
        n = e.records_in("Source")
        elapsed = time.monotonic() - t_run
        hist = e.checkpoints()
        e.cancel()
        done = [c for c in hist if c["status"] == "COMPLETED" and c["kind"] == "checkpoint"]
        failed = [c for c in hist if c["status"] == "FAILED"]
        if not done:
            raise BenchError("alignment: no completed checkpoint")
        al = sorted(c["alignmentMs"] for c in done)
        du = sorted(c["durationMs"] for c in done)
        self.align = {"max_eps": max_eps, "rate": rate, "achieved": n / elapsed, "n": len(done),
                      "failed": len(failed), "al": al, "du": du,
                      "size": statistics.median(c["sizeBytes"] for c in done)}

    # -- the report

    def report(self, path):
        out = []
        w = out.append
        a = self.args
        w("## State and checkpoint benchmarks")
        w("")
        w(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} on {os.cpu_count()} cores; "
          f"`scripts/bench_state.py --sizes {a.sizes_text}`; state: keyed TUMBLE(1 day) window state of "
          f"bench/state/build.sql (one entry per key: COUNT, SUM, MAX of a 64-character string), "
          f"{self.per_key:.0f} bytes per key in a snapshot; build at -p {a.parallelism}, "
          f"checkpoint interval {a.checkpoint_interval}; MinIO on loopback for S3.")
        w("")
        w("| state (sizeBytes) | keys | storage | input read s | checkpoint ms | again, no new input, ms | MB/s | "
          "task-thread pause ms (both) | "
          "after 1% of keys changed: written / full (ms) | "
          f"stop-with-savepoint s (own) | restore -p {a.parallelism} s | restore -p {a.restore_parallelism} s | "
          "peak RSS MiB (build / restore) |")
        w("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in self.rows:
            c1, c2, c3 = r["c1"], r["c2"], r["c3"]
            mbps = c1["sizeBytes"] / 1e6 / max(c1["durationMs"] / 1000, 1e-3)
            rs = r["restore"]
            rp = [rs.get(a.parallelism), rs.get(a.restore_parallelism)]
            rss_restore = max(x[1] for x in rs.values())
            sp_own = f"{r['sp_entry']['durationMs']} ms" if r.get("sp_entry") else "-"
            w(f"| {human(c1['sizeBytes'])} | {r['keys']:,} | {r['storage']} | {r['read_s']:.1f} | {c1['durationMs']} "
              f"| {c2['durationMs']} | {mbps:.0f} | {fmt_ms(c1.get('pauseMs'))} / {fmt_ms(c2.get('pauseMs'))} | "
              f"{human(c3.get('writtenBytes', c3['sizeBytes']))} / {human(c3['sizeBytes'])} "
              f"({100 * c3.get('writtenBytes', c3['sizeBytes']) / max(c3['sizeBytes'], 1):.1f}%, "
              f"{c3['durationMs']}) | "
              f"{r['sp_wall']:.2f} ({sp_own}) | "
              f"{rp[0][0]:.2f} | {rp[1][0]:.2f} | {r['rss_mib']:.0f} / {rss_restore:.0f} |")
        w("")
        w("Task-thread pause: per checkpoint, the longest time any subtask's thread spent between the aligned "
          "barrier and forwarding it (taking its snapshot), from the engine's `snapshot_pause` log line; "
          "processing stalls for that long.")
        w("Checkpoint ms: the first checkpoint triggered after every key was read (`durationMs` of "
          "`GET /v1/job/checkpoints`, trigger to `_metadata` written); the next column is the checkpoint after "
          "it, with no input in between: incremental checkpoints (the default) write only what changed, so "
          "it writes almost nothing. After 1% of keys changed: a file updating every 100th key is added to the "
          "monitored input, and the first checkpoint after it was read writes `writtenBytes` of a "
          "`sizeBytes` state. Stop-with-savepoint: wall time from `POST /v1/job/savepoints` "
          "`{stop: true}` until its status is COMPLETED, and in parentheses the savepoint's own `durationMs`; a "
          "savepoint aborts a periodic checkpoint in flight and subtasks stop writing it (engines before "
          "asynchronous snapshots waited for it, so with checkpoints back to back the wall time was up to two "
          "checkpoints). Restore: wall time from process start until "
          "`GET /v1/job` reports RUNNING (the snapshot is read and verified before that; the window "
          "operator's key groups are decoded lazily after it, and `scripts/bench_restore.py` times the first "
          "output record); for comparison a fresh start without "
          f"state takes {self.fresh_start_s:.2f} s. Input read s includes the checkpoints taken meanwhile.")
        checks = [(r["label"], r["c1"]["sizeBytes"], r["restore"][p][2]) for r in self.rows
                  for p in r["restore"] if r["restore"][p][2] is not None]
        for label, orig, again in checks:
            w(f"Rescale check ({label}): a savepoint of the job restored at -p {a.restore_parallelism} is "
              f"{again:,} bytes, the original checkpoint {orig:,} bytes.")
        w("")
        if self.build_ckpts:
            w("Checkpoints taken while the input was read (the state grows; duration follows total size):")
            w("")
            w("| state | storage | checkpoint | sizeBytes | durationMs | MB/s |")
            w("| --- | --- | ---: | ---: | ---: | ---: |")
            for label, st, cid, size, dur in self.build_ckpts:
                w(f"| {label} | {st} | {cid} | {size:,} | {dur} | {size / 1e6 / max(dur / 1000, 1e-3):.0f} |")
            for r in self.rows:
                for c in (r["c1"], r["c2"]):
                    w(f"| {r['label']} | {r['storage']} | {c['id']} (input read) | {c['sizeBytes']:,} | "
                      f"{c['durationMs']} | {c['sizeBytes'] / 1e6 / max(c['durationMs'] / 1000, 1e-3):.0f} |")
            w("")
        if self.align:
            x = self.align

            def pct(v, q):
                return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
            w(f"Alignment (bench/state/align.sql at -p 2, keyed HASH shuffle, 100,000 keys, 10 s windows): "
              f"max throughput {x['max_eps']:,.0f} rows/s unthrottled; throttled to {x['rate']:,} rows/s "
              f"(achieved {x['achieved']:,.0f}) with a checkpoint every second for {a.align_seconds} s: "
              f"{x['n']} completed, {x['failed']} failed, state {human(x['size'])} (median).")
            w("")
            w("| | p50 | p99 | max |")
            w("| --- | ---: | ---: | ---: |")
            w(f"| alignmentMs | {pct(x['al'], .5)} | {pct(x['al'], .99)} | {x['al'][-1]} |")
            w(f"| durationMs | {pct(x['du'], .5)} | {pct(x['du'], .99)} | {x['du'][-1]} |")
            w("")
        for n in self.notes:
            w(f"Note: {n}")
        if self.notes:
            w("")
        w("Commands (`$W` is the bench's work directory; job files are bench/state/*.sql with the placeholders "
          "filled in):")
        w("")
        w("```")
        for what, cmd in self.commands:
            w(f"# {what}")
            w(cmd)
        w("```")
        text = "\n".join(out) + "\n"
        with open(path, "w") as f:
            f.write(text)
        return text

    def run(self):
        a = self.args
        if "s3" in a.storage:
            self.minio, self.s3_endpoint = start_minio(self.work)
        # a fresh start without state, for the restore times' baseline
        d = os.path.join(self.work, "empty")
        os.makedirs(d)
        e = Engine(self, "fresh", self.job("build.sql", DATA_DIR=d), ["-p", str(a.parallelism), "--job-id", "fresh"])
        self.fresh_start_s = e.wait_state("RUNNING", 60)
        e.cancel()
        self.per_key = self.calibrate()
        for size, label in zip(a.sizes, a.size_labels):
            keys = max(1000, int(size / self.per_key))
            log(f"--- {label}: {keys} keys")
            self.data_dir = self.make_data(keys)
            for storage in a.storage:
                self.size_run(label, keys, storage)
            shutil.rmtree(self.data_dir, ignore_errors=True)
            # snapshots of this size are no longer needed
            for sub in ("ckpt", f"sp-{label}", f"sp-verify-{label}"):
                shutil.rmtree(os.path.join(self.work, sub), ignore_errors=True)
        if a.align_seconds > 0:
            self.alignment()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release/sluice-engine"))
    ap.add_argument("--sizes", default="100M,1G", help="state sizes as sizeBytes, e.g. 10M,100M,1G (default 100M,1G)")
    ap.add_argument("--storage", default="local,s3", help="local, s3 or both (default local,s3)")
    ap.add_argument("--parallelism", type=int, default=1, help="parallelism of the state build (default 1)")
    ap.add_argument("--restore-parallelism", type=int, default=2, help="the other restore parallelism (default 2)")
    ap.add_argument("--checkpoint-interval", default="5s", help="during the state build (default 5s)")
    ap.add_argument("--calibration-keys", type=int, default=100_000)
    ap.add_argument("--align-seconds", type=int, default=30, help="0 skips the alignment benchmark")
    ap.add_argument("--align-max-rows", type=int, default=5_000_000, help="rows of the unthrottled run")
    ap.add_argument("--no-verify-restore", dest="verify_restore", action="store_false",
                    help="skip the savepoint of the rescaled restore that checks its size")
    ap.add_argument("--timeout", type=float, default=600, help="per step, seconds (default 600)")
    ap.add_argument("--work", help="parent of the work directory (default .bench); it is deleted unless --keep")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, snapshots)")
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench/state.md"))
    a = ap.parse_args()
    a.sizes_text = a.sizes
    a.size_labels = [s.strip() for s in a.sizes.split(",") if s.strip()]
    a.sizes = [parse_size(s) for s in a.size_labels]
    a.storage = [s.strip() for s in a.storage.split(",") if s.strip()]
    if not set(a.storage) <= {"local", "s3"} or not a.storage:
        ap.error("--storage takes local, s3 or local,s3")
    return run_bench(Bench, a)


def run_bench(make, a):
    """Builds the bench (`make(a)`), runs it and writes its report to `a.out`; child
    processes are stopped and the work directory deleted (unless `a.keep`) whatever
    happens. Returns the exit status. scripts/bench_restore.py runs its bench with it."""
    bench = None

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(stop_children)
    t0 = time.monotonic()
    try:
        bench = make(a)
        log(f"work directory {bench.work}")
        bench.run()
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        bench.report(a.out)
        log(f"wrote {a.out} in {time.monotonic() - t0:.0f} s")
    except BenchError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        stop_children()
        if bench and not a.keep:
            shutil.rmtree(bench.work, ignore_errors=True)
        elif bench:
            log(f"kept {bench.work}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
