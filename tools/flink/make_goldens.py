#!/usr/bin/env python3
"""Regenerate (or check) the golden outputs under engine/tests/golden/ with Apache Flink.

For every case directory engine/tests/golden/<case>/ holding job.sql and input/,
run the job on local Flink at parallelism 1 (tools/flink/run_flink.py) and write
expected/<sink>.txt = all lines Flink wrote for the sink table, byte-wise sorted.

  bash tools/flink/setup.sh                          # once: the Flink venv
  python3 tools/flink/make_goldens.py                # all cases
  python3 tools/flink/make_goldens.py tumble_agg     # some cases
  python3 tools/flink/make_goldens.py --check        # compare, change nothing
  python3 tools/flink/make_goldens.py --check -p 3   # does Flink at p=3 agree?

If a case has gen.py, it is run first (with the venv's python, cwd = the case
directory) to rewrite input/. Every sink named in job.sql as
'${OUTPUT_DIR}/<sink>' must produce at least one row, or the case fails.

Changelog cases (job.sql starting with `-- compare: changelog` or
`-- compare: materialized`) write to `'connector' = 'print'` sinks with
`'print-identifier' = '<sink>'`: expected/<sink>.txt is then what Flink printed
for that identifier, in order, without the `<sink>> ` prefix (`+I[...]`,
`-U[...]`, ...). `--check -p N` compares such sinks as materialized tables.
"""

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_GOLDEN = os.path.join(REPO, "engine", "tests", "golden")
DEFAULT_VENV = os.environ.get(
    "SLUICE_FLINK_VENV", os.path.join(os.path.expanduser("~"), ".cache", "sluice", "flink-venv")
)
SINK_RE = re.compile(r"\$\{OUTPUT_DIR\}/([A-Za-z0-9_]+)")
PRINT_RE = re.compile(r"'print-identifier'\s*=\s*'([A-Za-z0-9_]+)'")
PRINTED_RE = re.compile(r"^([A-Za-z0-9_]+)(?::\d+)?> ([+-][IUD]\[.*)$")


def collect_printed(stdout, ids, coll):
    """Each print sink's lines, in order, prefix stripped, into coll/<id>.txt."""
    os.makedirs(coll, exist_ok=True)
    lines = {i: [] for i in ids}
    for l in stdout.splitlines():
        m = PRINTED_RE.match(l)
        if m and m.group(1) in lines:
            lines[m.group(1)].append(m.group(2))
    for i, ls in lines.items():
        with open(os.path.join(coll, i + ".txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(l + "\n" for l in ls))


def materialize(path):
    """A changelog file applied to an empty table: the sorted remaining rows."""
    rows = {}
    with open(path, encoding="utf-8") as fh:
        for l in fh:
            kind, row = l[:2], l[2:].rstrip("\n")
            rows[row] = rows.get(row, 0) + (1 if kind in ("+I", "+U") else -1)
    return sorted(r for r, n in rows.items() for _ in range(n)) + [
        "!negative %s" % r for r, n in rows.items() if n < 0]


def run_case(case_dir, python, parallelism=1, timeout=900):
    """Run one case; return (collected_dir, tmp_root, sinks_expected) or raise."""
    job = os.path.join(case_dir, "job.sql")
    with open(job, encoding="utf-8") as fh:
        text = fh.read()
    printed = sorted(set(PRINT_RE.findall(text)))
    sinks = sorted(set(SINK_RE.findall(text)) | set(printed))
    if os.path.exists(os.path.join(case_dir, "gen.py")):
        subprocess.run([python, "gen.py"], cwd=case_dir, check=True)
    tmp = tempfile.mkdtemp(prefix="sluice-golden-%s-" % os.path.basename(case_dir))
    out, coll = os.path.join(tmp, "out"), os.path.join(tmp, "collected")
    cmd = [
        python, os.path.join(HERE, "run_flink.py"), job,
        "--input-dir", os.path.join(case_dir, "input"),
        "--output-dir", out, "--collect", coll, "--parallelism", str(parallelism),
        "--timeout", str(timeout), "--quiet",
    ]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        lines = [l for l in p.stdout.splitlines()
                 if l.startswith(("run_flink", "Caused by")) or "Exception" in l]
        raise RuntimeError("Flink run failed:\n  " + "\n  ".join(lines[:8]))
    if printed:
        collect_printed(p.stdout, printed, coll)
    return coll, tmp, sinks


def check_rows(coll, sinks):
    problems = []
    for s in sinks:
        f = os.path.join(coll, s + ".txt")
        if not os.path.exists(f):
            problems.append("sink %s wrote no files" % s)
        elif os.path.getsize(f) == 0:
            problems.append("sink %s wrote no rows" % s)
    extra = set(n[:-4] for n in os.listdir(coll) if n.endswith(".txt")) - set(sinks)
    if extra:
        problems.append("unexpected output dirs: %s" % sorted(extra))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    ap.add_argument("--golden-dir", default=DEFAULT_GOLDEN)
    ap.add_argument("--venv", default=DEFAULT_VENV)
    ap.add_argument("--check", action="store_true", help="compare with expected/, write nothing")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--parallelism", "-p", type=int, default=1,
                    help="only with --check: compare Flink at this parallelism with the goldens")
    args = ap.parse_args()

    if args.parallelism != 1 and not args.check:
        print("make_goldens: goldens are made at parallelism 1; use -p N only with --check", file=sys.stderr)
        return 2
    python = os.path.join(args.venv, "bin", "python")
    if not os.path.exists(python):
        print("make_goldens: no Flink venv at %s; run tools/flink/setup.sh" % args.venv, file=sys.stderr)
        return 2
    names = args.cases or sorted(
        d for d in os.listdir(args.golden_dir)
        if os.path.exists(os.path.join(args.golden_dir, d, "job.sql")))
    failed = []
    for name in names:
        case_dir = os.path.join(args.golden_dir, name)
        t0 = time.monotonic()
        try:
            coll, tmp, sinks = run_case(case_dir, python, args.parallelism)
        except Exception as e:
            print("FAIL %s: %s" % (name, e))
            failed.append(name)
            continue
        problems = check_rows(coll, sinks)
        exp = os.path.join(case_dir, "expected")
        counts = {s: sum(1 for _ in open(os.path.join(coll, s + ".txt"), "rb"))
                  for s in sinks if os.path.exists(os.path.join(coll, s + ".txt"))}
        if not problems and args.check:
            for s in sinks:
                e, got = os.path.join(exp, s + ".txt"), os.path.join(coll, s + ".txt")
                changelog = open(got, encoding="utf-8").read()[:1] in ("+", "-")
                if changelog and args.parallelism != 1:
                    same = os.path.exists(e) and materialize(e) == materialize(got)
                else:
                    same = os.path.exists(e) and filecmp.cmp(e, got, shallow=False)
                if not same:
                    problems.append("expected/%s.txt differs from Flink's output (%s)" % (s, coll))
        if problems:
            print("FAIL %s: %s" % (name, "; ".join(problems)))
            failed.append(name)
            continue
        if not args.check:
            os.makedirs(exp, exist_ok=True)
            for f in os.listdir(exp):
                if f.endswith(".txt"):
                    os.remove(os.path.join(exp, f))
            for s in sinks:
                shutil.copyfile(os.path.join(coll, s + ".txt"), os.path.join(exp, s + ".txt"))
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        print("ok   %s (%.1f s) %s" % (name, time.monotonic() - t0,
                                       " ".join("%s=%d" % kv for kv in sorted(counts.items()))))
        sys.stdout.flush()
    if failed:
        print("%d case(s) failed: %s" % (len(failed), " ".join(failed)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
