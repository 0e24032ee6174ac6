// The web UI against a real job, in Chromium (playwright-core with Debian's
// /usr/bin/chromium; `make test-ui`, or `scripts/ui.sh test`).
//
// It runs `sluice-engine run` on a job whose throttled blackhole sink
// back-pressures its input, with 1-s checkpoints and a fault point that fails
// the job once, and opens the UI through a path prefix (as the Kubernetes API
// server's service proxy serves it), then checks that:
//   - the graph shows every vertex of GET v1/job, with its name and parallelism;
//   - the sink's input vertex turns back-pressured (data-backpressured, .bp-badge)
//     and its colour changes;
//   - clicking a vertex shows one row per subtask;
//   - the charts draw v1/job/history;
//   - a completed checkpoint appears, and clicking it shows the acknowledgements;
//   - the injected failure appears under exceptions, with its restart;
//   - the SQL and plan are shown;
//   - the page logged no error, and no request left the prefix.
//
// Environment: SLUICE_ENGINE (the binary; default $CARGO_TARGET_DIR/debug/sluice-engine),
// SLUICE_CHROMIUM (default /usr/bin/chromium), UI_TEST_ARTIFACTS (screenshots and
// the engine's log; default .bench/ui), UPDATE_SCREENSHOT=1 (also writes docs/ui.png),
// UI_TEST_LOCAL_DIST=1 (serve engine/ui/dist through the proxy instead of the engine's
// embedded copy: for working on the UI without rebuilding the engine; otherwise the
// test fails when the engine embeds another bundle than dist/).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request, createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const engineBin = process.env.SLUICE_ENGINE ? resolve(repo, process.env.SLUICE_ENGINE) : join(process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, "target"), "debug/sluice-engine");
const chromiumBin = process.env.SLUICE_CHROMIUM ?? "/usr/bin/chromium";
const artifacts = resolve(repo, process.env.UI_TEST_ARTIFACTS ?? ".bench/ui");
const PREFIX = "/api/v1/namespaces/jobs/services/clicks-coordinator:8081/proxy";
const FAULT = "injected by the UI test";
const CHECKPOINT_FAULT = "checkpoint failure injected by the UI test";
const dist = join(repo, "engine/ui/dist");
const localDist = process.env.UI_TEST_LOCAL_DIST === "1";
const UI_FILES = { "/": "index.html", "/ui/app.js": "app.js", "/ui/app.css": "app.css" };

const SQL = `-- The web UI's browser test (engine/ui/test/browser.mjs).
SET 'execution.batch-size' = '100';
SET 'execution.checkpointing.interval' = '1s';
SET 'restart-strategy.type' = 'fixed-delay';
SET 'restart-strategy.fixed-delay.delay' = '200ms';
SET 'restart-strategy.fixed-delay.attempts' = '5';
CREATE TABLE clicks (user_id BIGINT, url STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen', 'rows-per-second' = '5000', 'scan.parallelism' = '1',
  'fields.user_id.min' = '1', 'fields.user_id.max' = '100', 'fields.url.length' = '12', 'fields.ts.max-past' = '0');
-- 300 rows per second per subtask: its input vertex is back-pressured.
CREATE TABLE slow_sink (user_id BIGINT, url STRING)
WITH ('connector' = 'blackhole', 'sink.throttle' = '300', 'sink.parallelism' = '2');
CREATE TABLE counts (user_id BIGINT, window_end TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
EXECUTE STATEMENT SET BEGIN
INSERT INTO slow_sink SELECT user_id, url FROM clicks;
INSERT INTO counts SELECT user_id, window_end, COUNT(*)
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY user_id, window_start, window_end;
END;
`;

const started = Date.now();
const log = (msg) => console.log(`ui test [${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

class TestFailure extends Error {}

function fail(msg) {
  throw new TestFailure(msg);
}

/** Polls `probe` until it returns a truthy value; fails naming `what` and the last thing seen. */
async function waitFor(what, probe, { timeoutMs = 60_000, everyMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let seen = "nothing";
  for (;;) {
    try {
      const r = await probe((s) => (seen = s));
      if (r) return r;
    } catch (e) {
      seen = `error: ${e.message}`;
    }
    if (Date.now() > deadline) fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last seen: ${seen}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---- the engine ----

const gate = (dir) => join(dir, "gate");

function startEngine(dir) {
  writeFileSync(join(dir, "clicks.sql"), SQL);
  mkdirSync(gate(dir));
  const engineLog = join(artifacts, "engine.log");
  const out = [];
  const child = spawn(engineBin, ["run", "clicks.sql", "-p", "2", "--checkpoint-dir", join(dir, "checkpoints"), "--rest-addr", "127.0.0.1:0"], {
    cwd: dir,
    // The job waits at its start until the page is open (restore.loaded is hit before
    // the tasks start, restore or not); its first checkpoint fails (the job goes on), and
    // the first one that completes then fails the job once.
    env: {
      ...process.env,
      SLUICE_FAILPOINTS: `restore.loaded=1*pause(${gate(dir)});checkpoint.before-metadata=1*error(${CHECKPOINT_FAULT});checkpoint.committed=1*error(${FAULT})`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const collect = (chunk) => {
    out.push(chunk);
    writeFileSync(engineLog, Buffer.concat(out));
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  return { child, exited, output: () => Buffer.concat(out).toString(), engineLog };
}

/** GET path from the engine (Node's http: no proxy settings apply): {status, type, body}. */
function get(base, path) {
  return new Promise((resolveGet, reject) => {
    const req = request(`${base}${path}`, { method: "GET" }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolveGet({ status: res.statusCode, type: res.headers["content-type"] ?? "", body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function getJson(base, path) {
  const { status, body } = await get(base, path);
  const text = body.toString();
  if (status !== 200) throw new Error(`GET ${path}: ${status} ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`GET ${path}: not JSON: ${e.message}`);
  }
}

/** The engine serves the bundle of engine/ui/dist: GET / and GET /ui/{file}. */
async function checkEmbeddedUi(base) {
  for (const [path, file] of Object.entries(UI_FILES)) {
    const { status, type, body } = await get(base, path);
    if (status !== 200) fail(`GET ${path} from the engine: ${status}, not 200: ${body.toString().slice(0, 200)}`);
    const want = { html: "text/html", js: "text/javascript", css: "text/css" }[file.split(".").pop()];
    if (!type.startsWith(want)) fail(`GET ${path} from the engine: content-type "${type}", not ${want}`);
    if (!localDist && Buffer.compare(body, readFileSync(join(dist, file))) !== 0) {
      fail(`GET ${path}: the engine embeds another ${file} than engine/ui/dist/${file}: rebuild the engine after \`make ui\` (or set UI_TEST_LOCAL_DIST=1)`);
    }
  }
  const missing = await get(base, "/ui/nothing.js");
  if (missing.status !== 404) fail(`GET /ui/nothing.js from the engine: ${missing.status}, not 404`);
}

// ---- the prefix proxy, as the Kubernetes API server's service proxy ----

function startProxy(engine, strays) {
  const target = new URL(engine);
  const server = createServer((req, res) => {
    if (!req.url.startsWith(PREFIX + "/")) {
      strays.push(req.url);
      res.writeHead(404).end("outside the proxy prefix");
      return;
    }
    const file = localDist && UI_FILES[req.url.slice(PREFIX.length)];
    if (file) {
      const type = { html: "text/html", js: "text/javascript", css: "text/css" }[file.split(".").pop()];
      res.writeHead(200, { "content-type": `${type}; charset=utf-8` }).end(readFileSync(join(dist, file)));
      return;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url.slice(PREFIX.length), headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", (e) => res.writeHead(502).end(String(e)));
    req.pipe(upstream);
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ server, url: `http://127.0.0.1:${server.address().port}${PREFIX}/` })));
}

// ---- the test ----

/** The relative luminance of "#rrggbb" (0 black … 1 white). */
function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  try {
    statSync(engineBin);
  } catch {
    fail(`no engine binary at ${engineBin}: build it with \`cargo build -p sluice-engine --bin sluice-engine\` or set SLUICE_ENGINE`);
  }
  const dir = mkdtempSync(join(tmpdir(), "sluice-ui-test-"));
  const engine = startEngine(dir);
  let browser = null;
  let proxy = null;
  const cleanup = () => {
    if (engine.child.exitCode === null) engine.child.kill("SIGKILL");
  };
  process.on("exit", cleanup);
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      cleanup();
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  }
  try {
    const addr = await waitFor(
      "the engine to print its REST address",
      async (seen) => {
        if (engine.child.exitCode !== null) fail(`the engine exited (${engine.child.exitCode}) before serving REST:\n${engine.output()}`);
        seen(engine.output().slice(-300) || "no output");
        return engine.output().match(/REST API on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
      },
      { timeoutMs: 60_000 },
    );
    log(`engine REST API on ${addr}`);
    await checkEmbeddedUi(addr);
    const job = await waitFor("GET v1/job to list the vertices", async (seen) => {
      const j = await getJson(addr, "/v1/job");
      seen(JSON.stringify(j).slice(0, 300));
      return j.vertices?.length > 0 && j;
    });
    const sink = job.vertices.find((v) => v.name.includes("slow_sink")) ?? fail(`no vertex of v1/job names slow_sink: ${job.vertices.map((v) => v.name).join(" | ")}`);
    const upstream = sink.inputs?.[0]?.vertex ?? fail(`the slow_sink vertex ${sink.id} has no input in v1/job`);
    log(`${job.vertices.length} vertices; the throttled sink is vertex ${sink.id}, its input vertex ${upstream}`);

    const strays = [];
    proxy = await startProxy(addr, strays);
    browser = await chromium.launch({
      executablePath: chromiumBin,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    // Every colour the vertices take, from the first paint on.
    await page.addInitScript(() => {
      window.__colors = [];
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target;
          window.__colors.push({ id: el.getAttribute("data-vertex-id"), color: el.getAttribute("data-color"), bp: el.getAttribute("data-backpressured") });
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-color"] });
    });
    const shot = async (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

    await page.goto(proxy.url);
    log(`opened ${proxy.url}`);

    // 1. Every vertex of v1/job is in the graph, with its name and parallelism.
    await waitFor(`${job.vertices.length} vertices in the graph`, async (seen) => {
      const n = await page.locator("[data-vertex-id]").count();
      seen(`${n} vertex elements`);
      return n === job.vertices.length;
    });
    for (const v of job.vertices) {
      const el = page.locator(`[data-vertex-id="${v.id}"]`);
      const title = await el.locator("title").first().textContent();
      if (!title?.includes(v.name)) fail(`vertex ${v.id}: its tooltip does not name it "${v.name}"; it says "${title}"`);
      const text = await el.textContent();
      if (!text?.includes(`parallelism ${v.parallelism}`)) fail(`vertex ${v.id}: the box does not show "parallelism ${v.parallelism}"; it shows "${text}"`);
    }
    const edges = job.vertices.flatMap((v) => (v.inputs ?? []).map((i) => ({ from: i.vertex, to: v.id, partitioning: i.partitioning })));
    for (const e of edges) {
      const n = await page.locator(`.edge[data-from="${e.from}"][data-to="${e.to}"][data-partitioning="${e.partitioning}"]`).count();
      if (n !== 1) fail(`the edge ${e.from} -> ${e.to} (${e.partitioning}) is drawn ${n} times, not once`);
    }
    if ((await page.locator("#job-name").textContent()) !== job.name) fail(`the header names the job "${await page.locator("#job-name").textContent()}", not "${job.name}"`);
    log(`the graph shows all ${job.vertices.length} vertices and ${edges.length} edges`);
    await shot("1-graph");

    // The page has painted the vertices before the job runs: now let it run.
    await waitFor("the page to paint the vertices while the job waits at its start", async (seen) => {
      const painted = await page.evaluate(() => window.__colors.length);
      seen(`${painted} paints`);
      return painted >= job.vertices.length;
    });
    writeFileSync(join(gate(dir), "restore.loaded.go"), "");

    // 2. The sink's input vertex turns back-pressured, with a badge, and its colour changes.
    const bpVertex = page.locator(`[data-vertex-id="${upstream}"]`);
    await waitFor(
      `vertex ${upstream} (the input of the throttled sink) to show back pressure`,
      async (seen) => {
        const [bp, color, badge, stats] = await Promise.all([
          bpVertex.getAttribute("data-backpressured"),
          bpVertex.getAttribute("data-color"),
          bpVertex.locator(".bp-badge").count(),
          bpVertex.locator(".node-stat").first().textContent(),
        ]);
        seen(`data-backpressured=${bp} data-color=${color} .bp-badge=${badge} "${stats}"`);
        return bp === "true" && badge === 1;
      },
      { timeoutMs: 90_000 },
    );
    const badge = await bpVertex.locator(".bp-badge").textContent();
    if (!/^BP \d+% high$/.test(badge ?? "")) fail(`the back-pressure badge of vertex ${upstream} reads "${badge}", not "BP <n>% high"`);
    const colors = (await page.evaluate(() => window.__colors)).filter((c) => c.id === String(upstream));
    const bpColor = await bpVertex.getAttribute("data-color");
    const before = colors.filter((c) => c.bp !== "true").map((c) => c.color);
    if (before.length === 0 || before.every((c) => c === bpColor)) {
      fail(`vertex ${upstream}'s colour did not change when it became back-pressured: it was ${JSON.stringify([...new Set(before)])}, now ${bpColor}`);
    }
    if (luminance(bpColor) > 0.12) fail(`vertex ${upstream} is back-pressured but its colour ${bpColor} is not dark (Flink's convention: back-pressured is black)`);
    log(`vertex ${upstream} back-pressured: badge "${badge}", colour ${[...new Set(before)].join(" → ")} → ${bpColor}`);
    await shot("2-backpressure");

    // 3. Clicking it shows one row per subtask.
    await bpVertex.click();
    const upstreamVertex = job.vertices.find((v) => v.id === upstream);
    await waitFor(`the subtasks of vertex ${upstream} in the details`, async (seen) => {
      const rows = await page.locator("#vertex-details table.subtasks tbody tr").count();
      seen(`${rows} subtask rows; panel: ${(await page.locator("#vertex-details").textContent())?.slice(0, 300)}`);
      return rows === upstreamVertex.parallelism;
    });
    log(`the details of vertex ${upstream} list its ${upstreamVertex.parallelism} subtask(s)`);

    // 4. The charts draw v1/job/history.
    await waitFor("the throughput and busy charts", async (seen) => {
      const n = await page.locator('.chart[data-chart="throughput"] .uplot, .chart[data-chart="busy"] .uplot').count();
      seen(`${n} of 2 charts; ${(await page.locator("#charts").textContent())?.slice(0, 200)}`);
      return n === 2;
    });
    if (process.env.UPDATE_SCREENSHOT === "1") {
      // Some history first, so that the charts have lines.
      await waitFor("30 s of history for docs/ui.png", async (seen) => {
        const points = (await getJson(addr, "/v1/job/history")).points.length;
        seen(`${points} points`);
        return points >= 30;
      }, { timeoutMs: 90_000, everyMs: 1000 });
      await updateReadmeScreenshot(page, sink.id);
    }
    await shot("3-overview");

    // 5. A completed checkpoint in the history; clicking it shows the acknowledgements.
    await page.click('a[data-tab="checkpoints"]');
    const completed = await waitFor("a COMPLETED checkpoint in the history", async (seen) => {
      const rows = await page.locator("tr[data-checkpoint-id]").allTextContents();
      seen(rows.length ? rows.slice(0, 3).join(" | ") : "no rows");
      return page.locator("tr[data-checkpoint-id]:has(.status-completed)").first().getAttribute("data-checkpoint-id").catch(() => null);
    });
    const failed = await waitFor(`a FAILED checkpoint whose failure reads "${CHECKPOINT_FAULT}"`, async (seen) => {
      const failures = await page.locator("tr[data-checkpoint-id]:has(.status-failed) .failure").allTextContents();
      seen(failures.length ? failures.join(" | ").slice(0, 300) : "no FAILED row");
      return failures.find((f) => f.includes(CHECKPOINT_FAULT));
    });
    log(`a failed checkpoint is listed with its failure "${failed}"`);
    await page.click(`tr[data-checkpoint-id="${completed}"]`);
    const acks = await waitFor(`the acknowledgements of checkpoint ${completed}`, async (seen) => {
      seen((await page.locator(".acks").textContent())?.slice(0, 300));
      return page.locator(`[data-acks-for="${completed}"] tbody tr`).count();
    });
    const subtasks = job.vertices.reduce((n, v) => n + v.parallelism, 0);
    if (acks !== subtasks) fail(`checkpoint ${completed} lists ${acks} acknowledgements, not one per subtask (${subtasks})`);
    log(`checkpoint ${completed} completed, with ${acks} acknowledgements`);
    await shot("4-checkpoints");

    // 6. The injected failure under exceptions, with its restart.
    await page.click('a[data-tab="exceptions"]');
    await waitFor(`the injected failure ("${FAULT}") under exceptions, marked restarted`, async (seen) => {
      const all = await page.locator(".exception").allTextContents();
      seen(all.length ? all.join(" | ").slice(0, 300) : `no .exception; ${(await page.locator("#exceptions-view").textContent())?.slice(0, 200)}`);
      return (await page.locator(`.exception:has-text("${FAULT}"):has(.tag-restarted)`).count()) === 1;
    });
    const restarts = Number(await page.locator("#job-restarts").textContent());
    if (!(restarts >= 1)) fail(`the header shows ${await page.locator("#job-restarts").textContent()} restarts after the injected failure, not 1 or more`);
    log(`the injected failure is listed under exceptions, restarted; the header counts ${restarts} restart(s)`);
    await shot("5-exceptions");

    // 7. The SQL and the plan.
    await page.click('a[data-tab="plan"]');
    await waitFor("the job's SQL and plan", async (seen) => {
      const [sql, plan] = await Promise.all([page.locator(".plan-sql pre").textContent().catch(() => ""), page.locator(".plan-explain pre").textContent().catch(() => "")]);
      seen(`sql: ${sql?.slice(0, 80)}; plan: ${plan?.slice(0, 80)}`);
      return sql?.includes("slow_sink") && plan?.includes(`Vertex ${sink.id}`);
    });
    await shot("6-plan");
    log("the SQL and plan are shown");

    // 8. Nothing went wrong on the way.
    await page.click('a[data-tab="overview"]');
    await page.waitForTimeout(1500);
    const banner = await page.locator("#banner").isVisible();
    if (banner) fail(`the error banner is showing: ${await page.locator("#banner").textContent()}`);
    if (strays.length) fail(`the page requested URLs outside the proxy prefix (absolute URLs?): ${strays.join(", ")}`);
    if (problems.length) fail(`the page reported errors:\n  ${problems.join("\n  ")}`);
    log(`passed; screenshots in ${artifacts}`);
  } catch (e) {
    if (browser) {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages[0]) await pages[0].screenshot({ path: join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
    }
    const tail = engine.output().split("\n").slice(-40).join("\n");
    console.error(`\nui test FAILED: ${e instanceof TestFailure ? e.message : e.stack}\n\nengine: ${engineBin}\nscreenshots: ${artifacts}\nengine log (${engine.engineLog}), last lines:\n${tail}`);
    process.exitCode = 1;
  } finally {
    await browser?.close().catch(() => {});
    proxy?.server.close();
    cleanup();
    await Promise.race([engine.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** docs/ui.png for the README: the overview with the back-pressured vertex selected. */
async function updateReadmeScreenshot(page, sinkId) {
  const path = join(repo, "docs/ui.png");
  mkdirSync(dirname(path), { recursive: true });
  await page.setViewportSize({ width: 1280, height: 1040 });
  await page.waitForTimeout(1200);
  await page.screenshot({ path });
  await page.setViewportSize({ width: 1360, height: 900 });
  const size = statSync(path).size;
  if (size > 300 * 1024) fail(`docs/ui.png is ${(size / 1024).toFixed(0)} KiB; keep it under 300 KiB`);
  log(`wrote docs/ui.png (${(size / 1024).toFixed(0)} KiB; sink vertex ${sinkId})`);
}

await main();
