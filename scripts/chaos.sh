#!/usr/bin/env bash
# `make chaos`: the fault-injection suite at full length (SLUICE_CHAOS=full):
# 100 kill -9s, S3 faults of 30 s, damaged checkpoints, partitions, garbage on
# every port, SQL fuzzing, a backpressure minute, and the operator killed at each
# in-place upgrade step (operator/tests/upgrade_chaos.rs; bluegreen.rs kills it at
# each cutover step). Each scenario appends a
# JSON line to $SLUICE_CHAOS_REPORT; this script renders them as .bench/chaos.md.
# `make test` runs the same scenarios in their short version.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.bench
mkdir -p "$out"
lines="$out/chaos.jsonl"
rm -f "$lines"
started=$(date +%s)
status=0
# The feature set of `make test` (TEST_FEATURES), so that its build is reused; the
# cluster tests run the engine binary that this build also makes.
features="${TEST_FEATURES:-sluice-storage/s3-tests,sluice-connectors/s3-tests,sluice-engine/s3-tests,sluice-operator/cluster-tests}"
SLUICE_CHAOS=full SLUICE_CHAOS_REPORT="$PWD/$lines" \
  cargo test --workspace --features "$features" --test chaos --test chaos_storage --test upgrade_chaos \
  -- --test-threads=1 || status=$?
# The autoscaler's load tests (a step down, a backlog): minutes each, on quiet cores.
cargo test --workspace --features "$features" --test autoscaler -- --ignored --test-threads=1 || status=$?
python3 - "$lines" "$out/chaos.md" "$(( $(date +%s) - started ))" "$status" <<'PY'
import json, sys, datetime, os
lines, report, secs, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [json.loads(l) for l in open(lines)] if os.path.exists(lines) else []
def pct(xs, p):
    if not xs:
        return "–"
    xs = sorted(xs)
    return f"{xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] / 1000:.2f}"
with open(report, "w") as f:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    f.write("# Sluice chaos report\n\n")
    f.write(f"{now} on {os.cpu_count()} cores; `make chaos` (SLUICE_CHAOS=full) took {secs} s; "
            f"cargo test exit status {status}.\n\n")
    f.write("Recovery: from the fault (or its end, for storage faults) to the completion of a checkpoint "
            "triggered after it. Lost and duplicated rows come from a sequence check of the committed output "
            "against a run that was never disturbed.\n\n")
    f.write("| scenario | runs | faults | lost | duplicated | recover p50 s | p99 s | max s |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for r in rows:
        ms = r["recover_ms"]
        f.write(f"| {r['scenario']} | {r['runs']} | {r['faults']} | {r['lost']} | {r['duplicated']} | "
                f"{pct(ms, 50)} | {pct(ms, 99)} | {pct(ms, 100)} |\n")
    f.write("\n")
    for r in rows:
        for n in r["notes"]:
            f.write(f"- {r['scenario']}: {n}\n")
print(open(report).read())
PY
exit "$status"
