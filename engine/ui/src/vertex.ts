// The details of the selected vertex: its figures, latency and cost, and one
// row per subtask (GET v1/job/metrics, vertices[i].subtasks).

import type { Percentiles, Vertex, VertexMetrics } from "./api";
import { h, replace, table } from "./dom";
import { bytes, compact, count, known, latency as latencyText, percent, rate, time, UNKNOWN } from "./format";
import { bpLevel } from "./graph";

/** State bytes per key, or null when either is unknown (or there are no keys). */
export function stateBytesPerKey(m: VertexMetrics | undefined): number | null {
  if (!m || !known(m.stateBytes) || !known(m.stateKeys) || m.stateKeys <= 0) return null;
  return m.stateBytes / m.stateKeys;
}

export function renderVertex(el: HTMLElement, v: Vertex | undefined, m: VertexMetrics | undefined, onClose: () => void): void {
  if (!v) {
    replace(el, h("p", { class: "hint" }, "Select a vertex in the graph to see its subtasks, latency and cost."));
    return;
  }
  const level = bpLevel(m?.backpressuredRatio);
  const facts: [string, Node | string][] = [
    ["uid", h("code", {}, v.uid ?? UNKNOWN)],
    ["parallelism", `${v.parallelism}${v.keyed ? " (keyed state)" : ""}`],
    ["busy", percent(m?.busyRatio)],
    ["backpressure", h("span", { class: `level level-${level}` }, `${percent(m?.backpressuredRatio)} ${level === "unknown" ? "" : level}`)],
    ["idle", percent(m?.idleRatio)],
    ["records in / out", `${rate(m?.recordsInPerSecond)} / ${rate(m?.recordsOutPerSecond)}`],
    ["bytes in / out", `${bytesRate(m?.bytesInPerSecond)} / ${bytesRate(m?.bytesOutPerSecond)}`],
    ["records total in / out", `${count(m?.recordsIn)} / ${count(m?.recordsOut)}`],
    ["watermark", time(m?.watermark)],
    ["lag", known(m?.lag) ? `${count(m.lag)} records` : UNKNOWN],
    ["late records dropped", count(m?.lateRecordsDropped)],
  ];
  const cost: [string, string][] = [
    ["CPU per million records", known(m?.cpuSecondsPerMillionRecords) ? `${compact(m.cpuSecondsPerMillionRecords)} s` : UNKNOWN],
    ["state", bytes(m?.stateBytes)],
    ["state keys", count(m?.stateKeys)],
    ["state bytes per key", bytes(stateBytesPerKey(m))],
  ];
  const sections: Node[] = [
    h(
      "div",
      { class: "panel-head" },
      h("h3", {}, `Vertex ${v.id}`),
      h("button", { class: "close", type: "button", title: "Close", "aria-label": "close the vertex details", onclick: onClose }, "×"),
    ),
    h("p", { class: "vertex-name" }, v.name),
    definitions(facts, "vertex-facts"),
    h("h4", {}, "Cost"),
    definitions(cost, "vertex-cost"),
  ];
  if (m?.latency) {
    sections.push(h("h4", {}, "Latency (sink)"), latencyTable([["processing", m.latency.processingLatencyMs], ["event-time lag", m.latency.eventTimeLagMs]]));
  }
  sections.push(h("h4", {}, "Subtasks"), subtaskTable(m));
  replace(el, ...sections);
}

function bytesRate(v: number | null | undefined): string {
  return known(v) ? `${bytes(v)}/s` : UNKNOWN;
}

function definitions(rows: [string, Node | string][], cls: string): HTMLElement {
  const dl = h("dl", { class: `facts ${cls}` });
  for (const [k, v] of rows) dl.append(h("dt", {}, k), h("dd", {}, v));
  return dl;
}

export function latencyTable(rows: [string, Percentiles | null | undefined][]): HTMLTableElement {
  return table(
    ["", "p50", "p99", "p999", "samples"],
    rows.map(([label, p]) => [label, latencyText(p?.p50), latencyText(p?.p99), latencyText(p?.p999), count(p?.count)]),
    { class: "grid latency" },
  );
}

function subtaskTable(m: VertexMetrics | undefined): HTMLElement {
  const subtasks = m?.subtasks;
  if (!subtasks || subtasks.length === 0) {
    return h("p", { class: "hint" }, "This engine reports no per-subtask figures.");
  }
  const t = table(
    ["#", "busy", "backpr.", "idle", "in/s", "out/s", "watermark", "lag", "CPU s/M"],
    subtasks.map((t) => [
      [
        String(t.subtask),
        percent(t.busyRatio),
        h("span", { class: `level level-${bpLevel(t.backpressuredRatio)}` }, percent(t.backpressuredRatio)),
        percent(t.idleRatio),
        compact(t.recordsInPerSecond),
        compact(t.recordsOutPerSecond),
        time(t.watermark),
        count(t.lag),
        compact(t.cpuSecondsPerMillionRecords),
      ],
      { "data-subtask": t.subtask },
    ]),
    { class: "grid subtasks" },
  );
  return h("div", { class: "scroll-x" }, t);
}
