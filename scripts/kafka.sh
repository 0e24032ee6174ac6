#!/usr/bin/env bash
# A real Apache Kafka broker for tests: Kafka 4.4.0 (KRaft, no ZooKeeper) from Maven Central, run
# on the system's Java 17.
#
#   scripts/kafka.sh install   # fetches the broker's jars into $SLUICE_CACHE/kafka-4.4.0/libs if missing; prints the install dir
#   scripts/kafka.sh path      # prints the install dir (exit 1 if it is not installed)
#   scripts/kafka.sh run --port P --controller-port C --dir DIR [--host IP] [--parent-pid PID [--cleanup]] [--auto-create N]
#
# `run` starts one combined broker and controller with single-node settings, listening only on
# 127.0.0.1 (PLAINTEXT on P, the controller on C; with --host the PLAINTEXT listener is on that
# address instead and advertised there, as the sandbox's bridge gateway for its pods), with its
# data under DIR/data and its log in
# DIR/server.log; it formats DIR/data on the first run and reuses it afterwards, so running again
# with the same ports and DIR restarts the same broker. It execs Java in the foreground, so the
# process that started it can stop it with a signal. With --parent-pid the broker is killed once
# PID is gone (a test process that dies without stopping it), and with --cleanup DIR is deleted then.
# With --auto-create N, a topic that a producer names is created with N partitions (for benchmarks;
# tests create their topics).
#
# Why Maven Central: it is the registry this machine reaches; the broker is kafka_2.13 and its
# runtime dependencies, plus the log4j binding for SLF4J that the Kafka distribution ships.
set -euo pipefail

KAFKA_VERSION=4.4.0
# Kafka's own log4j (kafka-server depends on log4j-core) and the SLF4J 1.x binding for it.
LOG4J_VERSION=2.25.5
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
home="$cache/kafka-$KAFKA_VERSION"
# Written last by install: a half-copied libs/ never looks installed.
marker="$home/.installed"

die() { echo "kafka.sh: $*" >&2; exit 1; }

install() {
  [ -f "$marker" ] && { echo "$home"; return; }
  command -v java >/dev/null || die "'java' is not on PATH; install Java 17+ (e.g. openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "'mvn' is not on PATH; install Maven to fetch Kafka from Maven Central"
  mkdir -p "$cache"
  # Parallel test processes install once: the others wait here, then find the marker.
  exec 9>"$cache/.kafka-$KAFKA_VERSION-install.lock"
  flock 9
  if [ ! -f "$marker" ]; then
    echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION from Maven Central (about 45 MB)..." >&2
    local work start
    work="$(mktemp -d "$cache/.kafka-install.XXXXXX")"
    start=$(date +%s)
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    # A private local repository: the jars end up only in libs/, and ~/.m2 is left alone.
    # Maven's output only on failure (even -q prints terminal escapes).
    if ! (cd "$work" && mvn -q -B -Dmaven.repo.local="$work/repo" "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1); then
      cat "$work/mvn.log" >&2
      rm -rf "$work"
      die "mvn could not fetch Kafka $KAFKA_VERSION (is Maven Central reachable?)"
    fi
    rm -rf "$home"
    mkdir -p "$home"
    mv "$work/libs" "$home/libs"
    rm -rf "$work"
    touch "$marker"
    echo "kafka.sh: installed $home in $(( $(date +%s) - start )) s" >&2
  fi
  flock -u 9
  exec 9>&-
  echo "$home"
}

# Whether a process runs: a zombie does not (`kill -0` says it does, and an orphaned broker may
# stay a zombie for good in a container whose pid 1 does not reap).
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ]
}

# Kafka's Uuid form (16 random bytes, URL-safe base64 without padding), without a JVM start for
# `kafka-storage random-uuid`; never starting with '-', which the tool would take for an option.
cluster_id() {
  local id="-"
  while [ "${id:0:1}" = - ]; do id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"; done
  echo "$id"
}

write_config() {
  local dir="$1" port="$2" cport="$3" auto="${4:-}" host="${5:-127.0.0.1}"
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh: one broker that is also the only controller, for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://$host:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://$host:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

# A single node: every internal topic has one replica and one partition.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
num.partitions=${auto:-1}
auto.create.topics.enable=$([ -n "$auto" ] && echo true || echo false)
group.initial.rebalance.delay.ms=0
# A broker restarted after a crash registers again only once its old session has expired
# (9 s by default).
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000

# Small: few threads on a 2-core machine, and the log cleaner's 128 MiB dedupe buffer cut to 8.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
  cat >"$dir/log4j2.properties" <<EOF
# Written by scripts/kafka.sh: the broker logs to $dir/server.log only.
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/server.log
appender.file.append=true
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
logger.request.name=kafka.request.logger
logger.request.level=WARN
logger.authorizer.name=kafka.authorizer.logger
logger.authorizer.level=WARN
EOF
}

run() {
  local port="" cport="" dir="" parent="" cleanup="" auto="" host=127.0.0.1
  local usage="usage: run --port P --controller-port C --dir DIR [--host IP] [--parent-pid PID [--cleanup]] [--auto-create N]"
  while [ $# -gt 0 ]; do
    case "$1" in
      --port | --controller-port | --dir | --host | --parent-pid | --auto-create) [ $# -ge 2 ] || die "$1 needs a value ($usage)" ;;
    esac
    case "$1" in
      --port) port="$2"; shift 2 ;;
      --controller-port) cport="$2"; shift 2 ;;
      --dir) dir="$2"; shift 2 ;;
      --host) host="$2"; shift 2 ;;
      --parent-pid) parent="$2"; shift 2 ;;
      --cleanup) cleanup=1; shift ;;
      --auto-create) auto="$2"; shift 2 ;;
      *) die "unknown argument '$1' ($usage)" ;;
    esac
  done
  [ -n "$port" ] && [ -n "$cport" ] && [ -n "$dir" ] || die "$usage"
  case "$port$cport$parent$auto" in *[!0-9]*) die "ports, the parent pid and partitions are numbers ($usage)" ;; esac
  [ -z "$cleanup" ] || [ -n "$parent" ] || die "--cleanup needs --parent-pid"
  install >/dev/null
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  case "$host" in *[!0-9.]* | "") die "--host is an IPv4 address ($usage)" ;; esac
  write_config "$dir" "$port" "$cport" "$auto" "$host"

  local java_opts=(
    # Small and quick to start on a 2-core machine; tests send little data.
    -Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=64m
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir"
  )
  local cp="$home/libs/*"
  if [ ! -f "$dir/data/meta.properties" ]; then
    java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format \
      --cluster-id "$(cluster_id)" --config "$dir/server.properties" >>"$dir/server.log" 2>&1 \
      || die "formatting $dir/data failed; see $dir/server.log"
  fi

  if [ -n "$parent" ]; then
    # The watchdog: `exec` keeps this shell's pid, so $$ becomes the broker's. It exits when the
    # broker does, and kills the broker when the parent is gone. Its stdio is /dev/null so that it
    # never holds the caller's pipes open.
    local self=$$
    (
      while alive "$self"; do
        if ! alive "$parent"; then
          kill -KILL "$self" 2>/dev/null || true
          if [ -n "$cleanup" ] && [ -f "$dir/server.properties" ]; then
            for _ in $(seq 100); do alive "$self" || break; sleep 0.1; done
            rm -rf "$dir"
          fi
          exit 0
        fi
        sleep 1
      done
    ) </dev/null >/dev/null 2>&1 &
  fi
  exec java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties"
}

case "${1:-}" in
  install) install ;;
  path) [ -f "$marker" ] || die "Kafka is not installed; run '$0 install'"; echo "$home" ;;
  run) shift; run "$@" ;;
  *) die "usage: $0 install | path | run --port P --controller-port C --dir DIR [--parent-pid PID [--cleanup]] [--auto-create N]" ;;
esac
