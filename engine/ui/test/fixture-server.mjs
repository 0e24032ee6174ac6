// A stand-in for the engine's REST API, for working on the UI without a job:
// serves dist/ as the engine does (GET / and GET /ui/{file}) and made-up but
// moving answers of the v1/job routes. With --prefix it serves everything under
// that path, as the Kubernetes API server's service proxy would.
//
//   node test/fixture-server.mjs [--port 8099] [--prefix /api/v1/namespaces/ns/services/x:rest/proxy] [--old]
//
// --old answers as an engine older than the UI: no history, exceptions or plan
// routes and none of the new metrics fields.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt("--port", "8099"));
const prefix = opt("--prefix", "").replace(/\/$/, "");
const old = args.includes("--old");

const started = Date.now();
const vertices = [
  { id: 0, uid: "645bac8e7f1333c2", name: "Source: clicks [datagen] -> Watermark(ts - INTERVAL '1' SECOND)", parallelism: 1, inputs: [], keyed: false, splits: null },
  { id: 1, uid: "e4f591e8cf2c4e70", name: "Calc", parallelism: 1, inputs: [{ vertex: 0, partitioning: "FORWARD" }], keyed: false, splits: null },
  { id: 2, uid: "b777f13c1e026bd9", name: "Sink: slow_sink [blackhole]", parallelism: 2, inputs: [{ vertex: 1, partitioning: "REBALANCE" }], keyed: false, splits: null },
  {
    id: 3,
    uid: "334dc7d200df891f",
    name: "WindowAggregateTUMBLE(size=2000ms) -> Calc -> Sink: counts [blackhole]",
    parallelism: 2,
    inputs: [{ vertex: 0, partitioning: "HASH[clicks.user_id]" }],
    keyed: true,
    splits: null,
  },
];
const sinks = new Set([2, 3]);

/** Seconds since start; the upstream of the slow sink becomes back-pressured after 5 s. */
const t = () => (Date.now() - started) / 1000;
const pressure = (id) => (id === 1 || id === 0 ? Math.min(0.97, Math.max(0, (t() - 5) / 4)) : 0);
const busy = (id) => (id === 2 ? 0.9 : id === 3 ? 0.25 + 0.1 * Math.sin(t() / 7) : 0.05);

function vertexMetrics(v) {
  const bp = pressure(v.id);
  const b = busy(v.id) * (1 - bp);
  const now = Date.now();
  const m = {
    id: v.id,
    uid: v.uid,
    name: v.name,
    parallelism: v.parallelism,
    busyRatio: b,
    backpressuredRatio: bp,
    idleRatio: Math.max(0, 1 - b - bp),
    busyTimeMsPerSecond: b * 1000,
    backPressuredTimeMsPerSecond: bp * 1000,
    idleTimeMsPerSecond: Math.max(0, 1 - b - bp) * 1000,
    recordsInPerSecond: 600 + 30 * Math.sin(t()),
    recordsOutPerSecond: sinks.has(v.id) ? 0 : 600 + 30 * Math.sin(t()),
    bytesInPerSecond: 21000,
    bytesOutPerSecond: sinks.has(v.id) ? 0 : 16000,
    recordsIn: Math.round(t() * 600),
    recordsOut: sinks.has(v.id) ? 0 : Math.round(t() * 600),
    watermark: new Date(now - 1500 - v.id * 200).toISOString(),
    lag: v.id === 0 ? Math.round(t() * 4400) : null,
    lateRecordsDropped: 0,
  };
  if (old) return m;
  return {
    ...m,
    cpuSecondsPerMillionRecords: 0.8 + v.id * 0.3,
    stateBytes: v.keyed ? 48_000 + Math.round(t() * 10) : null,
    stateKeys: v.keyed ? 100 : null,
    latency: sinks.has(v.id)
      ? { eventTimeLagMs: { p50: 1200, p99: 2100, p999: 2400, count: 5000 }, processingLatencyMs: { p50: 40, p99: 930 + 100 * Math.sin(t() / 5), p999: 1500, count: 5000 } }
      : null,
    subtasks: Array.from({ length: v.parallelism }, (_, i) => ({
      subtask: i,
      busyRatio: b,
      backpressuredRatio: bp,
      idleRatio: Math.max(0, 1 - b - bp),
      recordsInPerSecond: 600 / v.parallelism,
      recordsOutPerSecond: sinks.has(v.id) ? 0 : 600 / v.parallelism,
      watermark: new Date(now - 1500 - i * 100).toISOString(),
      lag: v.id === 0 ? Math.round(t() * 4400) : null,
      cpuSecondsPerMillionRecords: 0.8 + i * 0.1,
    })),
  };
}

const history = [];
setInterval(() => {
  history.push({
    time: new Date().toISOString(),
    vertices: vertices.map((v) => {
      const m = vertexMetrics(v);
      return {
        id: v.id,
        recordsInPerSecond: m.recordsInPerSecond,
        recordsOutPerSecond: m.recordsOutPerSecond,
        busyRatio: m.busyRatio,
        backpressuredRatio: m.backpressuredRatio,
        watermarkLagMs: 1500 + v.id * 200 + 300 * Math.random(),
        latencyP99Ms: sinks.has(v.id) ? 900 + 200 * Math.random() : null,
      };
    }),
  });
  if (history.length > 600) history.shift();
}, 1000);

function checkpoints() {
  const n = Math.floor(t() / 2);
  const history = [];
  for (let id = n; id >= Math.max(1, n - 20); id--) {
    const failed = id % 7 === 0;
    history.push({
      id,
      kind: id % 10 === 5 ? "savepoint" : "checkpoint",
      status: id === n ? "IN_PROGRESS" : failed ? "FAILED" : "COMPLETED",
      triggerTime: new Date(started + id * 2000).toISOString(),
      durationMs: id === n ? 0 : 300 + id * 10,
      sizeBytes: id === n ? 0 : 4500 + id * 100,
      alignmentMs: 12,
      location: `file:///tmp/ck/job/chk-${id}`,
      ...(failed ? { failure: "injected: checkpoint.before-metadata" } : {}),
      ...(old ? {} : { acks: vertices.flatMap((v) => Array.from({ length: v.parallelism }, (_, s) => ({ vertex: v.id, subtask: s, ackMs: 50 * (v.id + 1) + s, alignmentMs: 3, stateBytes: v.keyed ? 2000 : 40 }))) }),
    });
  }
  const completed = history.filter((c) => c.status === "COMPLETED");
  return { counts: { completed: completed.length, failed: history.filter((c) => c.status === "FAILED").length, inProgress: 1 }, latestCompleted: completed[0] ?? null, history };
}

const routes = {
  "/v1/job": () => ({
    id: "job",
    name: "job.sql",
    state: "RUNNING",
    startTime: new Date(started).toISOString(),
    endTime: null,
    durationMs: Date.now() - started,
    restarts: t() > 12 ? 1 : 0,
    maxParallelism: 128,
    vertices,
    lastCompletedCheckpoint: checkpoints().latestCompleted,
    error: null,
  }),
  "/v1/job/metrics": () => ({ id: "job", vertices: vertices.map(vertexMetrics) }),
  "/v1/job/checkpoints": checkpoints,
  ...(old
    ? {}
    : {
        "/v1/job/history": () => ({ intervalMs: 1000, points: history }),
        "/v1/job/exceptions": () => ({
          restarts: t() > 12 ? 1 : 0,
          exceptions: t() > 12 ? [{ time: new Date(started + 12000).toISOString(), message: "job `job`: injected by the fixture\n  at checkpoint.committed", restarted: true }] : [],
        }),
        "/v1/job/plan": () => ({
          file: "job.sql",
          sql: "CREATE TABLE clicks (...) WITH ('connector' = 'datagen');\nINSERT INTO slow_sink SELECT user_id, url FROM clicks;",
          explain: "Job graph: 4 vertices, max parallelism 128\n\nVertex 0 (parallelism 1, uid 645bac8e7f1333c2)\n  Source: clicks [datagen]",
        }),
      }),
};

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  if (!url.pathname.startsWith(prefix + "/")) {
    res.writeHead(404).end();
    return;
  }
  const path = url.pathname.slice(prefix.length);
  try {
    if (path === "/" || path.startsWith("/ui/")) {
      const file = path === "/" ? "index.html" : path.slice(4);
      if (!["index.html", "app.js", "app.css"].includes(file)) throw Object.assign(new Error("no such file"), { code: 404 });
      const body = await readFile(join(dist, file));
      res.writeHead(200, { "content-type": types[file.slice(file.lastIndexOf("."))] }).end(body);
      return;
    }
    const route = routes[path];
    if (!route) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: `no route ${path}` }));
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(route()));
  } catch (e) {
    res.writeHead(e.code === 404 ? 404 : 500).end(String(e));
  }
}).listen(port, "127.0.0.1", () => console.log(`fixture server on http://127.0.0.1:${port}${prefix}/`));
