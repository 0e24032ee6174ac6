// The job graph: vertices from GET v1/job laid out by dagre as SVG, coloured by
// GET v1/job/metrics in Flink's convention (idle blue, back-pressured black,
// busy red, shades in between), with a badge on a back-pressured vertex.
//
// Every vertex element carries data-vertex-id, data-backpressured and
// data-color (its fill), and the badge the class bp-badge: the browser test
// reads them.

import dagre from "@dagrejs/dagre";
import type { Job, Vertex, VertexMetrics } from "./api";
import { h, replace, s } from "./dom";
import { known, latency as latencyText, percent, rate } from "./format";

const NODE_WIDTH = 250;
const LINE_HEIGHT = 15;
const MAX_NAME_LINES = 3;

/** Back pressure above this is "high" and marks the vertex back-pressured (Flink's levels). */
export const BP_HIGH = 0.5;
/** Back pressure above this (and up to BP_HIGH) is "low". */
export const BP_LOW = 0.1;

type Rgb = [number, number, number];
const IDLE: Rgb = [66, 133, 214];
const BUSY: Rgb = [214, 48, 49];
const BACKPRESSURED: Rgb = [28, 31, 36];
const UNKNOWN_COLOR = "#8a94a3";

/**
 * The fill of a vertex: the mix of idle blue, back-pressured black and busy red
 * in the proportions of its time, as Flink's web UI colours its job graph.
 * Unknown (grey) while the vertex has reported no time yet.
 */
export function vertexColor(m: VertexMetrics | undefined): string {
  const busy = m?.busyRatio;
  const bp = m?.backpressuredRatio;
  const idle = m?.idleRatio;
  if (!known(busy) && !known(bp) && !known(idle)) return UNKNOWN_COLOR;
  const w = [known(idle) ? idle : 0, known(bp) ? bp : 0, known(busy) ? busy : 0];
  const total = w[0] + w[1] + w[2];
  if (total <= 0) return UNKNOWN_COLOR;
  const mix = [0, 1, 2].map((c) => Math.round((w[0] * IDLE[c] + w[1] * BACKPRESSURED[c] + w[2] * BUSY[c]) / total));
  return "#" + mix.map((c) => c.toString(16).padStart(2, "0")).join("");
}

export type BpLevel = "ok" | "low" | "high" | "unknown";

export function bpLevel(ratio: number | null | undefined): BpLevel {
  if (!known(ratio)) return "unknown";
  if (ratio > BP_HIGH) return "high";
  if (ratio > BP_LOW) return "low";
  return "ok";
}

/**
 * Splits a vertex name (chained operators, "A -> B -> C") into at most `maxLines`
 * lines that each satisfy `fits`, breaking at spaces and inside a word only when
 * it is wider than a line; the last kept line ends with "…" when some is left out.
 */
export function wrapName(name: string, fits: (line: string) => boolean, maxLines = MAX_NAME_LINES): { lines: string[]; truncated: boolean } {
  const lines: string[] = [];
  let line = "";
  for (const word of name.split(/\s+/).filter((w) => w.length > 0)) {
    const candidate = line ? `${line} ${word}` : word;
    if (fits(candidate)) {
      line = candidate;
      continue;
    }
    if (line) lines.push(line);
    line = word;
    while (line.length > 1 && !fits(line)) {
      let n = line.length - 1;
      while (n > 1 && !fits(line.slice(0, n))) n--;
      lines.push(line.slice(0, n));
      line = line.slice(n);
    }
  }
  if (line) lines.push(line);
  if (lines.length <= maxLines) return { lines, truncated: false };
  const kept = lines.slice(0, maxLines);
  let last = kept[maxLines - 1];
  while (last.length > 0 && !fits(last + "…")) last = last.slice(0, -1);
  kept[maxLines - 1] = last.trimEnd() + "…";
  return { lines: kept, truncated: true };
}

let measureContext: CanvasRenderingContext2D | null | undefined;

/** Whether `text` in the vertex title's font fits the box (measured on a canvas). */
function fitsTitle(text: string): boolean {
  if (measureContext === undefined) {
    measureContext = document.createElement("canvas").getContext("2d");
    if (measureContext) measureContext.font = `600 12px ${getComputedStyle(document.body).fontFamily}`;
  }
  const width = measureContext ? measureContext.measureText(text).width : text.length * 7.4;
  return width <= NODE_WIDTH - 26;
}

interface NodeElements {
  group: SVGGElement;
  box: SVGRectElement;
  stats: SVGTextElement;
  rates: SVGTextElement;
  extra: SVGTextElement;
  badge: SVGGElement;
  badgeText: SVGTextElement;
}

/** The graph view: lays out once per job shape, then recolours on every poll. */
export class GraphView {
  private shape = "";
  private nodes = new Map<number, NodeElements>();
  private readonly svgHolder: HTMLElement;

  constructor(
    container: HTMLElement,
    private readonly onSelect: (vertex: number) => void,
  ) {
    this.svgHolder = h("div", { class: "graph-canvas" });
    replace(container, this.svgHolder);
  }

  update(job: Job, metrics: Map<number, VertexMetrics>, selected: number | null): void {
    const shape = JSON.stringify(job.vertices.map((v) => [v.id, v.name, v.parallelism, v.inputs ?? []]));
    if (shape !== this.shape) {
      this.shape = shape;
      this.layout(job.vertices);
    }
    for (const v of job.vertices) {
      const el = this.nodes.get(v.id);
      if (el) this.paint(el, v, metrics.get(v.id), selected === v.id);
    }
  }

  private layout(vertices: Vertex[]): void {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 90, edgesep: 20, marginx: 16, marginy: 16 });
    g.setDefaultEdgeLabel(() => ({}));
    const names = new Map<number, { lines: string[]; truncated: boolean }>();
    for (const v of vertices) {
      const wrapped = wrapName(v.name, fitsTitle);
      names.set(v.id, wrapped);
      g.setNode(String(v.id), { width: NODE_WIDTH, height: nodeHeight(wrapped.lines.length) });
    }
    const known = new Set(vertices.map((v) => v.id));
    for (const v of vertices) {
      for (const [i, input] of (v.inputs ?? []).entries()) {
        if (!known.has(input.vertex)) continue;
        const label = shorten(input.partitioning, 26);
        g.setEdge(String(input.vertex), String(v.id), { label, width: label.length * 6.6 + 12, height: 18, labelpos: "c" }, `${i}`);
      }
    }
    dagre.layout(g);
    const graph = g.graph();
    const width = Math.ceil(graph.width ?? 400);
    const height = Math.ceil(graph.height ?? 200);

    const defs = s(
      "defs",
      {},
      s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "edge-arrow" })),
    );
    const edges = s("g", { class: "edges" });
    for (const e of g.edges()) {
      const edge = g.edge(e);
      const points: { x: number; y: number }[] = edge.points ?? [];
      const d = points.map((p, i) => `${i === 0 ? "M" : "L"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" ");
      const target = vertices.find((v) => String(v.id) === e.w);
      const full = target?.inputs?.[Number(e.name)]?.partitioning ?? "";
      edges.append(
        s(
          "g",
          { class: "edge", "data-from": e.v, "data-to": e.w, "data-partitioning": full },
          s("path", { d, "marker-end": "url(#arrow)" }),
          known_(edge.x) && known_(edge.y)
            ? s(
                "g",
                { class: "edge-label", transform: `translate(${edge.x.toFixed(1)} ${edge.y.toFixed(1)})` },
                s("title", {}, full),
                s("rect", { x: -(edge.width ?? 0) / 2, y: -9, width: edge.width ?? 0, height: 18, rx: 4 }),
                s("text", { "text-anchor": "middle", dy: 4 }, String(edge.label ?? "")),
              )
            : null,
        ),
      );
    }

    const nodesGroup = s("g", { class: "nodes" });
    this.nodes.clear();
    for (const v of vertices) {
      const n = g.node(String(v.id));
      const wrapped = names.get(v.id) ?? { lines: [v.name], truncated: false };
      const el = buildNode(v, wrapped.lines, n.x - n.width / 2, n.y - n.height / 2, n.height);
      el.group.addEventListener("click", () => this.onSelect(v.id));
      el.group.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          this.onSelect(v.id);
        }
      });
      this.nodes.set(v.id, el);
      nodesGroup.append(el.group);
    }

    const svg = s("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "job graph" }, defs, edges, nodesGroup);
    replace(this.svgHolder, svg);
  }

  private paint(el: NodeElements, v: Vertex, m: VertexMetrics | undefined, selected: boolean): void {
    const color = vertexColor(m);
    const bp = m?.backpressuredRatio;
    const level = bpLevel(bp);
    const backpressured = level === "high";
    el.box.setAttribute("fill", color);
    el.group.dataset.color = color;
    el.group.dataset.backpressured = String(backpressured);
    el.group.dataset.bpLevel = level;
    el.group.classList.toggle("selected", selected);
    el.group.setAttribute("aria-pressed", String(selected));
    el.stats.textContent = `busy ${percent(m?.busyRatio)} · backpressure ${percent(bp)}`;
    el.rates.textContent = `in ${rate(m?.recordsInPerSecond)} · out ${rate(m?.recordsOutPerSecond)}`;
    el.extra.textContent = extraLine(v, m);
    if (level === "high" || level === "low") {
      el.badge.style.display = "";
      el.badge.setAttribute("class", level === "high" ? "bp-badge" : "bp-low");
      el.badge.dataset.level = level;
      el.badgeText.textContent = `BP ${percent(bp)} ${level}`;
      const w = el.badgeText.textContent.length * 6.4 + 12;
      const rect = el.badge.querySelector("rect");
      rect?.setAttribute("width", w.toFixed(0));
      rect?.setAttribute("x", (NODE_WIDTH - w - 6).toFixed(0));
      el.badgeText.setAttribute("x", (NODE_WIDTH - w / 2 - 6).toFixed(0));
    } else {
      el.badge.style.display = "none";
      el.badge.setAttribute("class", "bp-none");
    }
  }
}

function known_(v: number | undefined): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function nodeHeight(nameLines: number): number {
  // title lines, then parallelism, busy/bp, rates and one extra line
  return 26 + nameLines * LINE_HEIGHT + 4 * LINE_HEIGHT + 6;
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max - 1) + "…";
}

/** A sink's p99 latency, or a source's lag, or the watermark. */
function extraLine(v: Vertex, m: VertexMetrics | undefined): string {
  const latency = m?.latency;
  if (latency) {
    const p99 = latency.processingLatencyMs?.p99;
    const lag = latency.eventTimeLagMs?.p99;
    return `p99 latency ${latencyText(p99)} · event lag ${latencyText(lag)}`;
  }
  if ((v.inputs ?? []).length === 0) {
    return `source lag ${known(m?.lag) ? Math.round(m.lag).toLocaleString("en-US") + " records" : "–"}`;
  }
  return `${v.keyed ? "keyed · " : ""}watermark ${watermarkShort(m?.watermark)}`;
}

function watermarkShort(w: string | null | undefined): string {
  if (!w) return "–";
  if (w === "+inf") return "+∞";
  const d = new Date(w);
  return Number.isNaN(d.getTime()) ? w : d.toLocaleTimeString(undefined, { hour12: false });
}

function buildNode(v: Vertex, lines: string[], x: number, y: number, height: number): NodeElements {
  const text = (cls: string, row: number, content = "") => s("text", { class: cls, x: 12, y: 20 + row * LINE_HEIGHT }, content);
  const title = s("text", { class: "node-name", x: 12, y: 20 });
  for (const [i, line] of lines.entries()) {
    title.append(s("tspan", { x: 12, dy: i === 0 ? 0 : LINE_HEIGHT }, line));
  }
  const base = lines.length + 0.4;
  const parallelism = text("node-meta", base, `#${v.id} · parallelism ${v.parallelism}${v.keyed ? " · keyed" : ""}`);
  const stats = text("node-stat", base + 1);
  const rates = text("node-stat", base + 2);
  const extra = text("node-stat", base + 3);
  const badgeText = s("text", { "text-anchor": "middle", y: -3 });
  const badge = s("g", { class: "bp-none", style: "display:none" }, s("rect", { y: -16, height: 18, rx: 9 }), badgeText);
  const box = s("rect", { class: "node-box", width: NODE_WIDTH, height, rx: 8 });
  const clipId = `clip-vertex-${v.id}`;
  const clip = s("clipPath", { id: clipId }, s("rect", { x: 6, y: 0, width: NODE_WIDTH - 12, height }));
  const texts = s("g", { "clip-path": `url(#${clipId})` }, title, parallelism, stats, rates, extra);
  const group = s(
    "g",
    {
      class: "vertex",
      transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`,
      "data-vertex-id": v.id,
      "data-backpressured": "false",
      "data-color": UNKNOWN_COLOR,
      tabindex: 0,
      role: "button",
    },
    s("title", {}, `${v.name}\nvertex ${v.id}, uid ${v.uid ?? "–"}, parallelism ${v.parallelism}`),
    clip,
    box,
    texts,
    badge,
  );
  return { group, box, stats, rates, extra, badge, badgeText };
}
