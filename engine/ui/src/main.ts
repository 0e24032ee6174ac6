// The Sluice engine's web UI: one page served at `<prefix>/`, polling the REST
// API (relative URLs, see api.ts) once a second and drawing the job's graph,
// metrics, checkpoints, exceptions and plan. No framework: views own their
// elements and are re-rendered from the latest answers.

import {
  type Checkpoints,
  type Exceptions,
  FetchError,
  getJson,
  type History,
  type Job,
  type JobMetrics,
  type Plan,
  routes,
  type VertexMetrics,
} from "./api";
import { ChartsView } from "./charts";
import { CheckpointsView } from "./checkpoints";
import { h, replace, table } from "./dom";
import { renderExceptions } from "./exceptions";
import { count, duration, latency as latencyText, time, UNKNOWN } from "./format";
import { GraphView } from "./graph";
import { renderPlan } from "./plan";
import { renderVertex } from "./vertex";

const POLL_MS = 1000;

type Tab = "overview" | "checkpoints" | "exceptions" | "plan";
const TABS: [Tab, string][] = [
  ["overview", "Overview"],
  ["checkpoints", "Checkpoints"],
  ["exceptions", "Exceptions"],
  ["plan", "SQL & plan"],
];

interface State {
  job: Job | null;
  metrics: Map<number, VertexMetrics>;
  selected: number | null;
  tab: Tab;
  plan: Plan | null;
  /** The current error of each route, shown in the banner until it answers again. */
  errors: Map<string, FetchError>;
  exceptionCount: number | null;
  /** When GET v1/job last answered. */
  lastUpdate: Date | null;
}

const state: State = { job: null, metrics: new Map(), selected: null, tab: tabFromHash(), plan: null, errors: new Map(), exceptionCount: null, lastUpdate: null };

function tabFromHash(): Tab {
  const name = location.hash.replace(/^#\/?/, "");
  return TABS.some(([t]) => t === name) ? (name as Tab) : "overview";
}

// ---- layout ----

const el = {
  name: h("span", { class: "job-name", id: "job-name" }, "…"),
  stateBadge: h("span", { class: "state", id: "job-state" }, UNKNOWN),
  duration: h("span", { id: "job-duration" }, UNKNOWN),
  restarts: h("span", { id: "job-restarts" }, UNKNOWN),
  checkpoint: h("span", { id: "job-checkpoint" }, UNKNOWN),
  nav: h("nav", { class: "tabs" }),
  banner: h("div", { class: "banner", id: "banner", role: "alert", hidden: true }),
  graph: h("div", { class: "graph-wrap", id: "graph" }),
  vertex: h("aside", { class: "panel vertex-panel", id: "vertex-details" }),
  latency: h("div", { id: "sink-latency" }),
  charts: h("div", { class: "charts", id: "charts" }),
  checkpoints: h("div", { id: "checkpoints-view" }),
  exceptions: h("div", { id: "exceptions-view" }),
  plan: h("div", { id: "plan-view" }),
};

const sections: Record<Tab, HTMLElement> = {
  overview: h(
    "section",
    { id: "overview", class: "page" },
    h("div", { class: "split" }, h("div", { class: "split-main" }, el.graph, legend()), el.vertex),
    el.latency,
    h("h2", {}, "Last 10 minutes"),
    el.charts,
  ),
  checkpoints: h("section", { id: "checkpoints", class: "page" }, el.checkpoints),
  exceptions: h("section", { id: "exceptions", class: "page" }, el.exceptions),
  plan: h("section", { id: "plan", class: "page" }, el.plan),
};

function legend(): HTMLElement {
  const swatch = (color: string, label: string) => h("span", { class: "legend-item" }, h("i", { style: `background:${color}` }), label);
  return h(
    "div",
    { class: "legend" },
    swatch("#4285d6", "idle"),
    swatch("#1c1f24", "back-pressured"),
    swatch("#d63031", "busy"),
    h("span", { class: "legend-note" }, "Colour mixes the three by share of time, as in Flink. Back pressure: ok ≤ 10% < low ≤ 50% < high."),
  );
}

const app = document.getElementById("app") ?? document.body;
replace(
  app,
  h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("span", { class: "logo" }, "≋"), "Sluice"),
    h(
      "div",
      { class: "job" },
      el.name,
      el.stateBadge,
      h("span", { class: "meta" }, "running for ", el.duration),
      h("span", { class: "meta" }, "restarts ", el.restarts),
      h("span", { class: "meta" }, "last checkpoint ", el.checkpoint),
    ),
    el.nav,
  ),
  el.banner,
  h("main", {}, ...Object.values(sections)),
);

const graphView = new GraphView(el.graph, (id) => {
  state.selected = state.selected === id ? null : id;
  renderOverview();
});
const chartsView = new ChartsView(el.charts);
const checkpointsView = new CheckpointsView(el.checkpoints);

function renderNav(): void {
  replace(
    el.nav,
    ...TABS.map(([tab, label]) =>
      h(
        "a",
        { href: `#${tab}`, class: tab === state.tab ? "active" : "", "data-tab": tab, "aria-current": tab === state.tab ? "page" : null },
        label,
        tab === "exceptions" && state.exceptionCount ? h("span", { class: "count" }, String(state.exceptionCount)) : null,
      ),
    ),
  );
  for (const [tab, section] of Object.entries(sections)) section.hidden = tab !== state.tab;
}

window.addEventListener("hashchange", () => {
  state.tab = tabFromHash();
  renderNav();
  if (state.tab === "overview") chartsView.resize();
  void poll();
});

// ---- rendering ----

function renderHeader(job: Job): void {
  document.title = `${job.name} · Sluice`;
  el.name.textContent = job.name;
  el.name.title = `job id ${job.id}`;
  el.stateBadge.textContent = job.state;
  el.stateBadge.className = `state state-${job.state.toLowerCase()}`;
  el.stateBadge.title = job.error ?? "";
  el.duration.textContent = duration(job.durationMs);
  el.restarts.textContent = count(job.restarts);
  const last = job.lastCompletedCheckpoint;
  el.checkpoint.textContent = last ? `#${last.id} at ${time(last.triggerTime)}` : UNKNOWN;
}

function renderOverview(): void {
  const job = state.job;
  if (!job) return;
  graphView.update(job, state.metrics, state.selected);
  const selected = job.vertices.find((v) => v.id === state.selected);
  renderVertex(el.vertex, selected, selected ? state.metrics.get(selected.id) : undefined, () => {
    state.selected = null;
    renderOverview();
  });
  const sinks = job.vertices.filter((v) => state.metrics.get(v.id)?.latency);
  if (sinks.length === 0) {
    replace(el.latency);
    return;
  }
  replace(
    el.latency,
    h("h2", {}, "Latency at sinks"),
    table(
      ["sink", "processing p50", "p99", "p999", "event-time lag p50", "p99", "p999"],
      sinks.map((v) => {
        const l = state.metrics.get(v.id)?.latency;
        const p = l?.processingLatencyMs;
        const e = l?.eventTimeLagMs;
        return [[h("span", { class: "name", title: v.name }, `#${v.id} ${v.name}`), latencyText(p?.p50), latencyText(p?.p99), latencyText(p?.p999), latencyText(e?.p50), latencyText(e?.p99), latencyText(e?.p999)], { "data-sink": v.id }];
      }),
      { class: "grid sink-latency" },
    ),
  );
}

function renderBanner(): void {
  const errors = [...state.errors.values()];
  el.banner.hidden = errors.length === 0;
  const since = state.lastUpdate ? `The figures shown are from ${state.lastUpdate.toLocaleTimeString(undefined, { hour12: false })}.` : "Nothing has been loaded yet.";
  replace(el.banner, ...errors.map((e) => h("div", { class: "banner-line" }, e.message)), errors.length ? h("div", { class: "banner-note" }, since) : null);
}

/** A note in place of a view whose route this engine does not serve. */
function missingNote(view: HTMLElement, route: string): void {
  replace(view, h("p", { class: "hint missing" }, `This engine does not serve ${route}: it is older than this UI.`));
}

// ---- polling ----

/** Routes this engine does not serve (404), and when to ask again: an older engine. */
const missingUntil = new Map<string, number>();
const MISSING_RETRY_MS = 60_000;

/** Runs `load` and records its failure (or clears it); resolves to null on failure. */
async function attempt<T>(route: string, load: () => Promise<T>, onMissing?: () => void): Promise<T | null> {
  if ((missingUntil.get(route) ?? 0) > Date.now()) return null;
  try {
    const value = await load();
    state.errors.delete(route);
    return value;
  } catch (e) {
    const err = e instanceof FetchError ? e : new FetchError(route, 0, `${route}: ${String(e)}`);
    if (err.missing && onMissing) {
      state.errors.delete(route);
      missingUntil.set(route, Date.now() + MISSING_RETRY_MS);
      onMissing();
    } else {
      state.errors.set(route, err);
    }
    return null;
  }
}

let polling = false;

async function poll(): Promise<void> {
  if (polling) return;
  polling = true;
  try {
    const tab = state.tab;
    const [job, metrics] = await Promise.all([attempt(routes.job, () => getJson<Job>(routes.job)), attempt(routes.metrics, () => getJson<JobMetrics>(routes.metrics))]);
    if (job) {
      state.job = job;
      state.lastUpdate = new Date();
      renderHeader(job);
    }
    if (metrics) state.metrics = new Map(metrics.vertices.map((m) => [m.id, m]));
    const loads: Promise<unknown>[] = [];
    loads.push(
      attempt(routes.exceptions, () => getJson<Exceptions>(routes.exceptions), () => missingNote(el.exceptions, routes.exceptions)).then((x) => {
        if (!x) return;
        state.exceptionCount = x.exceptions.length;
        if (tab === "exceptions") renderExceptions(el.exceptions, x, state.job);
      }),
    );
    if (tab === "overview") {
      loads.push(
        attempt(routes.history, () => getJson<History>(routes.history), () => missingNote(el.charts, routes.history)).then((x) => {
          if (x && state.job) chartsView.update(x, state.job.vertices);
        }),
      );
    }
    if (tab === "checkpoints") {
      loads.push(
        attempt(routes.checkpoints, () => getJson<Checkpoints>(routes.checkpoints), () => missingNote(el.checkpoints, routes.checkpoints)).then((x) => {
          if (x) checkpointsView.render(x, state.job?.vertices ?? []);
        }),
      );
    }
    if (tab === "plan" && !state.plan) {
      loads.push(
        attempt(routes.plan, () => getJson<Plan>(routes.plan), () => missingNote(el.plan, routes.plan)).then((x) => {
          if (x) {
            state.plan = x;
            renderPlan(el.plan, x);
          }
        }),
      );
    }
    await Promise.all(loads);
    if (tab === "overview") renderOverview();
    renderNav();
    renderBanner();
  } finally {
    polling = false;
  }
}

function loop(): void {
  void poll().finally(() => window.setTimeout(loop, POLL_MS));
}

renderNav();
loop();
