#!/usr/bin/env bash
# Runs the benchmark jobs on Sluice at parallelism 1 and writes .bench/report.md:
# events per second, wall time and peak RSS, next to Apache Flink's figures for
# the same SQL from bench/flink/results.tsv (refreshed with BENCH_FLINK=1, which
# runs Flink locally through bench/flink/run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.bench
mkdir -p "$out"
bin="${CARGO_TARGET_DIR:-target}/release/sluice-engine"
[ -x "$bin" ] || { echo "bench: $bin is missing; run 'make build' first" >&2; exit 1; }
queries=(bench/q_filter.sql bench/q_tumble.sql bench/q_group.sql bench/nexmark/q0.sql bench/nexmark/q1.sql bench/nexmark/q2.sql bench/nexmark/q22.sql bench/nexmark/q5_hop.sql)
flink_tsv=bench/flink/results.tsv
if [ "${BENCH_FLINK:-0}" = 1 ]; then
  bash tools/flink/setup.sh
  py="$SLUICE_CACHE/flink-venv/bin/python"
  jsonl="$out/flink-results.jsonl"
  rm -f "$jsonl"
  for q in bench/q_filter.sql bench/q_tumble.sql bench/q_group.sql; do
    "$py" bench/flink/run.py "$q" --json "$jsonl"
  done
  # The median is not needed for one run each: take the measured figures as they are. Rows of
  # other queries (the Nexmark ones, which scripts/bench_nexmark.py writes) are kept.
  python3 - "$jsonl" "$flink_tsv" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {r["job"].removesuffix(".sql") for r in rows}
old = open(sys.argv[2]).read().splitlines() if os.path.exists(sys.argv[2]) else []
keep = [l for l in old if l.strip() and not l.startswith("#") and l.split("\t")[0] not in names]
with open(sys.argv[2], "w") as f:
    f.write("# query\tevents_per_s_net\tpeak_rss_mib\tsource\n")
    for l in keep:
        f.write(l + "\n")
    for r in rows:
        name = r["job"].removesuffix(".sql")
        f.write(f"{name}\t{r['events_per_s_net']}\t{round(r['peak_rss_mib'])}\tFlink {r['flink']}, make bench BENCH_FLINK=1\n")
PY
fi
report="$out/report.md"
{
  echo "# Sluice benchmark report"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); parallelism 1; \`make bench\`"
  echo
  echo "| query | events | wall s | Sluice events/s | peak RSS MiB | Flink events/s | Flink peak RSS MiB | Sluice / Flink |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$report"
for q in "${queries[@]}"; do
  name=$(basename "$q" .sql)
  log="$out/$name.log"
  /usr/bin/time -v "$bin" run "$q" --parallelism 1 --rest-addr 127.0.0.1:0 >"$log.out" 2>"$log"
  events=$(sed -n 's/.*: \([0-9]*\) records read.*/\1/p' "$log" | tail -1)
  wall=$(sed -n 's/.*Finished in \([0-9.]*\)s.*/\1/p' "$log" | tail -1)
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$log")
  eps=$(awk -v e="$events" -v w="$wall" 'BEGIN { printf "%.0f", e / w }')
  rss=$(awk -v k="$rss_kb" 'BEGIN { printf "%.0f", k / 1024 }')
  f_eps="-"; f_rss="-"; ratio="-"
  if [ -f "$flink_tsv" ]; then
    line=$(awk -F'\t' -v n="$name" '$1 == n' "$flink_tsv" | tail -1)
    if [ -n "$line" ]; then
      f_eps=$(cut -f2 <<<"$line"); f_rss=$(cut -f3 <<<"$line")
      ratio=$(awk -v a="$eps" -v b="$f_eps" 'BEGIN { printf "%.1fx", a / b }')
    fi
  fi
  echo "| $name | $events | $wall | $eps | $rss | $f_eps | $f_rss | $ratio |" >> "$report"
  echo "bench: $name: $eps events/s, ${rss} MiB peak RSS"
done
# The cost of a data policy: q_filter with two columns through HMAC-SHA256 at the source
# (bench/policy/q_filter.yaml), against the plain q_filter above; median of 3 runs each.
# The median events/s of 3 runs of a query at parallelism 1, with extra arguments.
median_eps() {
  local q="$1" runs=() log="$out/$(basename "$1" .sql)_median.log"
  shift
  for _ in 1 2 3; do
    "$bin" run "$q" --parallelism 1 --rest-addr 127.0.0.1:0 "$@" >"$log.out" 2>"$log"
    runs+=("$(sed -n 's/.*: \([0-9]*\) records read (\([0-9]*\)\/s).*/\2/p' "$log" | tail -1)")
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p
}
policy_eps() { median_eps bench/q_filter.sql "$@"; }
plain_eps=$(policy_eps)
secrets=(--set sluice.secrets-dir=bench/policy/secrets)
hmac_eps=$(policy_eps --data-policy bench/policy/q_filter.yaml "${secrets[@]}")
redact_eps=$(policy_eps --data-policy bench/policy/q_filter_redact.yaml)
slower() { awk -v p="$plain_eps" -v m="$1" 'BEGIN { printf "%.1f", (1 - m / p) * 100 }'; }
{
  echo
  echo "## Data policy cost"
  echo
  echo "q_filter at parallelism 1 (20,000,000 rows, all masked at the source, before the filter), median of 3 runs; target: at most 10% slower."
  echo
  echo "| policy | events/s | slower than without |"
  echo "| --- | ---: | ---: |"
  echo "| none | $plain_eps | - |"
  echo "| \`s\` redact (keep last 2), \`id\` null (bench/policy/q_filter_redact.yaml) | $redact_eps | $(slower "$redact_eps")% |"
  echo "| \`s\` and \`id\` hmac (bench/policy/q_filter.yaml) | $hmac_eps | $(slower "$hmac_eps")% |"
} >> "$report"
echo "bench: data policy: $plain_eps events/s; redact+null $redact_eps; 2x hmac $hmac_eps"
# The cost of the latency and cost metrics (issue 21's target: at most 3 %): each query with
# the defaults (latency markers every 100 ms, sink histograms of latency and event-time lag,
# CPU time per thread) and with metrics.latency.interval=0 (no markers, no histograms; the
# CPU clock, read once per 100 ms per thread, stays on). Median of 3 runs each.
{
  echo
  echo "## Observability overhead"
  echo
  echo "Parallelism 1, median of 3 runs each: the defaults against \`--set metrics.latency.interval=0\`; target: at most 3% slower."
  echo
  echo "| query | events/s, latency tracking off | events/s, on (default) | slower |"
  echo "| --- | ---: | ---: | ---: |"
} >> "$report"
for q in bench/q_filter.sql bench/q_tumble.sql; do
  off=$(median_eps "$q" --set metrics.latency.interval=0)
  on=$(median_eps "$q")
  pct=$(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.1f", (1 - b / a) * 100 }')
  echo "| $(basename "$q" .sql) | $off | $on | $pct% |" >> "$report"
  echo "bench: observability on $(basename "$q" .sql): $on events/s, off $off ($pct% slower)"
done
# Checkpoints under backpressure (the state-at-scale issue's target: at most 5 s with a
# throttled sink and a 1 s interval): bench/backpressure.sql for 40 s with buffer debloating
# (the default) and without it.
backpressure_checkpoints() {
  local port dir pid
  dir=$(mktemp -d)
  "$bin" run bench/backpressure.sql --parallelism 2 --rest-addr 127.0.0.1:0 --checkpoint-dir "$dir/ck" "$@" \
    >"$dir/out" 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*REST API on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  sleep 40
  curl -s "127.0.0.1:$port/v1/job/checkpoints" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ds = sorted(c["durationMs"] for c in d["history"] if c["status"] == "COMPLETED")
mid, top = (ds[len(ds) // 2], ds[-1]) if ds else ("-", "-")
print(d["counts"]["completed"], "|", mid, "|", top)'
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
{
  echo
  echo "## Checkpoints under backpressure"
  echo
  echo "bench/backpressure.sql (sources offer 5x what the throttled sink takes), 40 s, checkpoints every 1 s; target: at most 5 s."
  echo
  echo "| buffer debloating | checkpoints completed | median ms | slowest ms |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| off | $(backpressure_checkpoints --set taskmanager.network.memory.buffer-debloat.enabled=false) |"
  echo "| on (default, target 1 s) | $(backpressure_checkpoints) |"
} >> "$report"
{
  echo
  echo "Events are records read by the sources; wall time is the engine's run time"
  echo "excluding process start. Flink figures: bench/flink/results.tsv (see bench/flink/RESULTS.md)."
} >> "$report"
# Nexmark over files (scripts/bench_nexmark.py): q3, q4, q7, q8, q9, q18 and q19 (joins,
# updating aggregates, Top-N, deduplication) on Nexmark data generated once into csv files
# under $SLUICE_CACHE/nexmark-data, the same files for Sluice and Flink. The results of both
# engines are compared first on a small data set (needs Flink: only with BENCH_FLINK=1). With
# BENCH_FLINK=1 Flink runs the same queries and rewrites its nexmark_* rows of
# bench/flink/results.tsv; otherwise the report reads Flink's figures from there.
# BENCH_NEXMARK=0 skips them; BENCH_NEXMARK_ARGS passes options (e.g. "--events 500000").
failed=0
if [ "${BENCH_NEXMARK:-1}" != 0 ]; then
  nexmark_flink=()
  [ "${BENCH_FLINK:-0}" = 1 ] && nexmark_flink=(--flink "${SLUICE_CACHE:-$HOME/.cache/sluice}/flink-venv/bin/python")
  # shellcheck disable=SC2086
  if python3 scripts/bench_nexmark.py --bin "$bin" --out "$out/nexmark.md" "${nexmark_flink[@]}" ${BENCH_NEXMARK_ARGS:-}; then
    { echo; cat "$out/nexmark.md"; } >> "$report"
  else
    { echo; echo "## Nexmark over files"; echo; echo "Failed: see the output of scripts/bench_nexmark.py."; [ -f "$out/nexmark.md" ] && cat "$out/nexmark.md"; } >> "$report"
    failed=1
  fi
fi
# Checkpoint and state benchmarks (scripts/bench_state.py): state build, checkpoint and
# savepoint durations to a local directory and to MinIO, restore times, barrier alignment.
# BENCH_STATE=0 skips them; BENCH_STATE_ARGS passes options (e.g. "--sizes 10M,100M").
if [ "${BENCH_STATE:-1}" != 0 ]; then
  # shellcheck disable=SC2086
  if python3 scripts/bench_state.py --bin "$bin" --out "$out/state.md" ${BENCH_STATE_ARGS:-}; then
    { echo; cat "$out/state.md"; } >> "$report"
  else
    { echo; echo "## State and checkpoint benchmarks"; echo; echo "Failed: see the output of scripts/bench_state.py."; } >> "$report"
    failed=1
  fi
fi
# The disk state backend (scripts/bench_spill.py): a GROUP BY and a TUMBLE window whose state is 4x the
# memory budget, against the heap backend. BENCH_SPILL=0 skips it; BENCH_SPILL_ARGS passes
# options (e.g. "--keys 500000 --rows 1500000").
if [ "${BENCH_SPILL:-1}" != 0 ]; then
  # shellcheck disable=SC2086
  if python3 scripts/bench_spill.py --bin "$bin" --out "$out/spill.md" ${BENCH_SPILL_ARGS:-}; then
    { echo; cat "$out/spill.md"; } >> "$report"
  else
    { echo; echo "## Keyed state 4x the memory budget"; echo; echo "Failed: see the output of scripts/bench_spill.py."; } >> "$report"
    failed=1
  fi
fi
# Checkpoints under full backpressure (scripts/bench_backpressure.py): sources at 5x a throttled
# sink, a checkpoint every second, 45 s. BENCH_BACKPRESSURE=0 skips it; BENCH_BACKPRESSURE_ARGS
# passes options (e.g. "--no-debloat").
if [ "${BENCH_BACKPRESSURE:-1}" != 0 ]; then
  # shellcheck disable=SC2086
  if python3 scripts/bench_backpressure.py --bin "$bin" --out "$out/backpressure.md" ${BENCH_BACKPRESSURE_ARGS:-}; then
    { echo; cat "$out/backpressure.md"; } >> "$report"
  else
    { echo; echo "## Checkpoints under full backpressure"; echo; echo "Failed: see the output of scripts/bench_backpressure.py."; } >> "$report"
    failed=1
  fi
fi
# Restore (scripts/bench_restore.py): a GROUP BY restored from a 1 GB savepoint, time from
# process start to its first output record, and until every key group is restored.
# BENCH_RESTORE=0 skips it; BENCH_RESTORE_ARGS passes options (e.g. "--size 200M").
if [ "${BENCH_RESTORE:-1}" != 0 ]; then
  # shellcheck disable=SC2086
  if python3 scripts/bench_restore.py --bin "$bin" --out "$out/restore.md" ${BENCH_RESTORE_ARGS:-}; then
    { echo; cat "$out/restore.md"; } >> "$report"
  else
    { echo; echo "## Restore: time to the first output record"; echo; echo "Failed: see the output of scripts/bench_restore.py."; } >> "$report"
    failed=1
  fi
fi
# Kafka benchmarks (scripts/bench_kafka.py): a real broker, Kafka -> filter/project -> Kafka and
# Kafka -> TUMBLE -> Kafka exactly-once on 1 and 4 partitions: throughput, and end-to-end latency
# to a read_committed consumer at a fixed rate. With BENCH_FLINK=1, Flink runs the same jobs on
# the same broker and rewrites bench/flink/kafka_results.tsv; otherwise the report reads Flink's
# figures from that file. BENCH_KAFKA=0 skips them; BENCH_KAFKA_ARGS passes options (e.g.
# "--rows 500000 --live-seconds 10").
if [ "${BENCH_KAFKA:-1}" != 0 ]; then
  kafka_flink=()
  [ "${BENCH_FLINK:-0}" = 1 ] && kafka_flink=(--flink "${SLUICE_CACHE:-$HOME/.cache/sluice}/flink-venv/bin/python")
  # shellcheck disable=SC2086
  if python3 scripts/bench_kafka.py --bin "$bin" --out "$out/kafka.md" "${kafka_flink[@]}" ${BENCH_KAFKA_ARGS:-}; then
    { echo; cat "$out/kafka.md"; } >> "$report"
  else
    { echo; echo "## Kafka"; echo; echo "Failed: see the output of scripts/bench_kafka.py."; } >> "$report"
    failed=1
  fi
fi
# Distributed-engine benchmarks (scripts/bench_cluster.py): shuffle throughput between
# two workers, the TUMBLE job on 1 and 2 workers, recovery after kill -9 of a worker.
# BENCH_CLUSTER=0 skips them; BENCH_CLUSTER_ARGS passes options (e.g. "--state-mb 20").
if [ "${BENCH_CLUSTER:-1}" != 0 ]; then
  example="${CARGO_TARGET_DIR:-target}/release/examples/shuffle_bench"
  # shellcheck disable=SC2086
  if python3 scripts/bench_cluster.py --bin "$bin" --example "$example" --out "$out/cluster.md" ${BENCH_CLUSTER_ARGS:-}; then
    { echo; cat "$out/cluster.md"; } >> "$report"
  else
    { echo; echo "## Distributed engine"; echo; echo "Failed: see the output of scripts/bench_cluster.py."; } >> "$report"
    failed=1
  fi
fi
# Operator benchmarks, in a test cluster with MinIO: operator/tests/bench.rs (reconcile
# time, apply → Running, the pause of a blue-green cutover and of a savepoint upgrade with
# 100 MB of state, the operator's RSS idle and with 1,000 suspended StreamJobs; skipped by
# BENCH_OPERATOR=0) and operator/tests/bench_autoscaler.rs (a step up, flaps in 10 minutes
# of steady load, the pause of a rescale by savepoint and by blue-green, the autoscaler's
# cost over 1,000 jobs; skipped by BENCH_AUTOSCALER=0).
tdir="${CARGO_TARGET_DIR:-target}"
for b in operator autoscaler; do
  var="BENCH_$(tr '[:lower:]' '[:upper:]' <<<"$b")"
  [ "${!var:-1}" != 0 ] || continue
  test=bench; [ "$b" = autoscaler ] && test=bench_autoscaler
  if SLUICE_OPERATOR_BIN="$tdir/release/sluice-operator" SLUICE_ENGINE_BIN="$bin" BENCH_OUT="$PWD/$out/$b.md" \
      cargo test -q -p sluice-operator --test "$test" -- --ignored --nocapture; then
    { echo; cat "$out/$b.md"; } >> "$report"
  else
    { echo; echo "## ${b^}"; echo; echo "Failed: see the output of operator/tests/$test.rs."; } >> "$report"
    failed=1
  fi
done
cat "$report"
exit "$failed"
