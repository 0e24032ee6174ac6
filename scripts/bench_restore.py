#!/usr/bin/env python3
"""Restore benchmark for `make bench`: how soon a job restored from a savepoint
with large keyed state produces output. Writes .bench/restore.md.

1. Builds the keyed state of bench/state/restore.sql (a GROUP BY; one CSV line
   per key) to about --size bytes of savepoint (`sizeBytes`; the number of keys
   is calibrated from a small run), then stops it with a savepoint.
2. Writes a file of --rows rows for existing keys, spread over the key space,
   that the HAVING lets through: each gives one output row.
3. Restores the job from the savepoint at each parallelism of --parallelism
   and times, from process start: GET /v1/job says RUNNING; the first output
   row (the print sink's first line); every output row; and every key group
   restored (the engine's `restore_progress` log lines, see runtime::lazy).

Progress goes to stderr; child processes are stopped at exit. The engine
helpers (processes, REST, savepoints) are scripts/bench_state.py's.
"""

import argparse
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_state import (ROOT, S3_BUCKET, S3_KEY, S3_SECRET, BenchBase, BenchError, Engine, human, log,  # noqa: E402
                         parse_size, run_bench, start_minio)

OUTPUT = re.compile(rb"^[^\n]*[+-][IUD]\[", re.M)
LAZY = re.compile(rb"key groups \((\d+) bytes of state\) restore lazily")
DONE = re.compile(rb"every key group restored, (\d+) ms after it started")
AFTER_V = 5_000_000  # v of the rows written after the restore (the HAVING needs >= 1,000,000)


class Bench(BenchBase):
    def __init__(self, args):
        super().__init__(args, "restore-", "warn,restore_progress=info")
        self.rows = []
        self.s3 = []  # engine arguments for MinIO, with --storage s3

    def job(self, data_dir):
        with open(os.path.join(ROOT, "bench/state/restore.sql")) as f:
            text = f.read().replace("@DATA_DIR@", data_dir)
        path = os.path.join(self.work, "restore.sql")
        with open(path, "w") as f:
            f.write(text)
        return path

    def make_data(self, keys, name):
        d = os.path.join(self.work, name)
        os.makedirs(d)
        with open(os.path.join(d, "keys.csv"), "w") as f:
            step = 200_000
            for lo in range(0, keys, step):
                f.write("".join(f"{k},0,{k % 1000},{(h := f'{k * 2654435761 % 2**64:016x}')}{h}{h}{h}\n"
                                for k in range(lo, min(keys, lo + step))))
        return d

    def build(self, name, keys, data):
        """Reads every key, then stops with a savepoint; returns (location, sizeBytes, seconds)."""
        e = Engine(self, name, self.job(data), ["-p", "1", "--job-id", name, *self.s3])
        self.record(f"{name}: build the state", e)
        e.wait_rest()
        t0 = time.monotonic()
        deadline = t0 + self.args.timeout
        while e.records_in("Aggregate") < keys:
            e.alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{name}: read {e.records_in('Aggregate')} of {keys} keys in {self.args.timeout} s")
            time.sleep(0.2)
        read_s = time.monotonic() - t0
        # The peak while the job holds every key, before the savepoint.
        self.build_rss = (e.proc.rss_hwm_kb() or 0) * 1024
        target = f"s3://{S3_BUCKET}/sp-{name}" if self.s3 else os.path.join(self.work, f"sp-{name}")
        _, loc, entry = e.savepoint(target, True, self.args.timeout)
        e.proc.wait(self.args.timeout)
        size = entry and entry["sizeBytes"]
        if not size:
            raise BenchError(f"{name}: the savepoint reported no size")
        log(f"{name}: {keys} keys read in {read_s:.1f} s; savepoint of {human(size)} at {loc}")
        return loc, size, read_s

    def calibrate(self):
        keys = self.args.calibration_keys
        data = self.make_data(keys, "data-calibrate")
        _, size, _ = self.build("calibrate", keys, data)
        shutil.rmtree(data, ignore_errors=True)
        return size / keys

    def restore(self, loc, data, p, rows):
        name = f"restore-p{p}"
        e = Engine(self, name, self.job(data), ["--restore", loc, "-p", str(p), "--job-id", name, *self.s3])
        self.record(f"{name}: restore and answer {rows} rows", e)
        t = {"running": None, "first": None, "all": None, "restored": None}
        lazy = done = 0
        deadline = time.monotonic() + self.args.timeout
        next_rest = 0.0
        while t["all"] is None or t["restored"] is None or t["running"] is None:
            e.alive()
            now = time.monotonic() - e.proc.t0
            text = open(e.proc.log_path, "rb").read()
            outs = len(OUTPUT.findall(text))
            if outs and t["first"] is None:
                t["first"] = now
            if outs >= rows and t["all"] is None:
                t["all"] = now
            lazy, done = len(LAZY.findall(text)), len(DONE.findall(text))
            if lazy and done >= lazy and t["restored"] is None:
                t["restored"] = now
            if t["running"] is None and now >= next_rest:
                next_rest = now + 0.05
                try:
                    e.wait_rest(1)
                    if e.get("/v1/job")["state"] == "RUNNING":
                        t["running"] = now
                except (OSError, BenchError):
                    pass
            if time.monotonic() > deadline:
                raise BenchError(f"{name}: {outs} of {rows} rows, {done} of {lazy} subtasks restored "
                                 f"within {self.args.timeout} s:\n{e.proc.tail()}")
            time.sleep(0.01)
        rss = (e.proc.rss_hwm_kb() or 0) / 1024
        e.cancel()
        log(f"{name}: RUNNING {t['running']:.2f} s, first row {t['first']:.2f} s, all {rows} rows {t['all']:.2f} s, "
            f"every key group restored {t['restored']:.2f} s ({lazy} lazy subtasks); peak RSS {rss:.0f} MiB")
        return dict(p=p, rss=rss, lazy=lazy, **t)

    def run(self):
        a = self.args
        if a.storage == "s3":
            _, endpoint = start_minio(self.work)
            self.s3 = ["--s3-endpoint", endpoint, "--set", f"s3.access-key={S3_KEY}", "--set", f"s3.secret-key={S3_SECRET}"]
        per_key = self.calibrate()
        keys = max(1000, int(a.size / per_key))
        log(f"calibration: {per_key:.1f} bytes per key; {keys} keys for {human(a.size)}")
        data = self.make_data(keys, "data")
        loc, size, read_s = self.build("build", keys, data)
        self.built = dict(keys=keys, size=size, read_s=read_s, rss=self.build_rss)
        with open(os.path.join(data, "after.csv.tmp"), "w") as f:
            step = max(1, keys // a.rows)
            f.write("".join(f"{k},0,{AFTER_V},{'f' * 64}\n" for k in range(0, keys, step)[:a.rows]))
        os.rename(os.path.join(data, "after.csv.tmp"), os.path.join(data, "after.csv"))
        rows = min(a.rows, len(range(0, keys, max(1, keys // a.rows))))
        for p in a.parallelism:
            self.rows.append(self.restore(loc, data, p, rows))

    def report(self, path):
        b, a = self.built, self.args
        out = [f"## Restore: time to the first output record ({a.storage})", "",
               f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} on {os.cpu_count()} cores; "
               f"`scripts/bench_restore.py --size {a.size_text} --storage {a.storage}`; {b['keys']} keys, a "
               f"savepoint of {human(b['size'])} (`sizeBytes`) on {a.storage} storage"
               f"{' (MinIO on loopback)' if a.storage == 's3' else ''}, built in {b['read_s']:.1f} s at parallelism 1.",
               "",
               f"Peak RSS of the job holding that state, before its savepoint: {b['rss'] / (1 << 20):,.0f} MiB, "
               f"**{b['rss'] / b['size']:.2f}x** the savepoint's `sizeBytes`.",
               "",
               "Seconds from process start. *First output*: the first row of the restored job, for a row "
               "written after the restore; *every key group*: the last subtask's `restore_progress` line "
               "(before lazy restore, a restore decoded all of its state before RUNNING).", "",
               "| parallelism | RUNNING | first output | all output rows | every key group restored | peak RSS MiB |",
               "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in self.rows:
            out.append(f"| {r['p']} | {r['running']:.2f} | {r['first']:.2f} | {r['all']:.2f} | {r['restored']:.2f} "
                       f"| {r['rss']:.0f} |")
        out += ["", "Commands (`$W` is the work directory):", ""]
        out += [f"- {what}: `{cmd}`" for what, cmd in self.commands]
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release/sluice-engine"))
    ap.add_argument("--size", default="1G", help="keyed state as the savepoint's sizeBytes (default 1G)")
    ap.add_argument("--rows", type=int, default=1000, help="rows written after the restore (default 1000)")
    ap.add_argument("--parallelism", default="1,2", help="restore parallelisms (default 1,2)")
    ap.add_argument("--storage", default="local", choices=["local", "s3"],
                    help="where the savepoint goes: a local directory or MinIO (default local)")
    ap.add_argument("--calibration-keys", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=900, help="per step, seconds (default 900)")
    ap.add_argument("--work", help="parent of the work directory (default .bench); it is deleted unless --keep")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, savepoint)")
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench/restore.md"))
    a = ap.parse_args()
    a.size_text, a.size = a.size, parse_size(a.size)
    a.parallelism = [int(p) for p in a.parallelism.split(",") if p.strip()]
    return run_bench(Bench, a)

if __name__ == "__main__":
    sys.exit(main())
