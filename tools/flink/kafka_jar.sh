#!/usr/bin/env bash
# Fetches (idempotently) Flink's Kafka SQL connector, the fat jar flink-sql-connector-kafka, from
# Maven Central into $HOME/.cache/sluice/flink-jars (SLUICE_CACHE overrides the cache) and prints
# its path. For bench/flink/run_kafka.py (the Kafka benchmark of scripts/bench_kafka.py).
#
# Version: 5.0.0-2.2 is the newest connector for Flink 2.x on Maven Central (built for Flink 2.2;
# there is no -2.3 build yet); it runs on Flink 2.3.0 for the bench's jobs (JSON format, Kafka
# source with a bounded mode, exactly-once Kafka sink). SLUICE_FLINK_KAFKA_VERSION overrides it.
set -euo pipefail
VERSION="${SLUICE_FLINK_KAFKA_VERSION:-5.0.0-2.2}"
dir="${SLUICE_CACHE:-$HOME/.cache/sluice}/flink-jars"
jar="$dir/flink-sql-connector-kafka-$VERSION.jar"
if [ ! -s "$jar" ]; then
  command -v mvn >/dev/null || { echo "kafka_jar.sh: 'mvn' is not on PATH; install Maven" >&2; exit 1; }
  mkdir -p "$dir"
  log="$(mktemp)"
  # Maven's output only on failure.
  if ! mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      -Dartifact="org.apache.flink:flink-sql-connector-kafka:$VERSION" -DoutputDirectory="$dir" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "kafka_jar.sh: mvn could not fetch flink-sql-connector-kafka $VERSION (is Maven Central reachable?)" >&2
    exit 1
  fi
  rm -f "$log"
fi
echo "$jar"
