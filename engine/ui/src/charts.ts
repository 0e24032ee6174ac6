// Time series of GET v1/job/history drawn with uPlot: the engine keeps the ring
// buffer (one point a second, the last 10 minutes), the browser only draws it.

import uPlot from "uplot";
import type { History, HistoryVertex, Vertex } from "./api";
import { h, replace } from "./dom";
import { compact, duration, epochMs, known } from "./format";

const PALETTE = ["#2f6fde", "#d9480f", "#2b8a3e", "#9c36b5", "#e8590c", "#0c8599", "#c2255c", "#5c940d", "#364fc7", "#862e9c"];

interface ChartSpec {
  key: string;
  title: string;
  unit: string;
  /** The value of one vertex at one point; null where unknown. */
  value: (v: HistoryVertex) => number | null;
  /** Whether a vertex gets a series here (latency: sinks only). */
  applies: (v: Vertex, history: History) => boolean;
  format: (v: number) => string;
}

const always = () => true;

const SPECS: ChartSpec[] = [
  {
    key: "throughput",
    title: "Throughput (records in per second; sources: read)",
    unit: "records/s",
    value: (v) => num(v.recordsInPerSecond),
    applies: always,
    format: (v) => compact(v),
  },
  {
    key: "watermark-lag",
    title: "Watermark lag (wall clock − watermark)",
    unit: "",
    value: (v) => num(v.watermarkLagMs),
    applies: (v, hist) => hist.points.some((p) => p.vertices.some((x) => x.id === v.id && known(x.watermarkLagMs))),
    format: (v) => duration(v),
  },
  {
    key: "busy",
    title: "Busy (% of time)",
    unit: "%",
    value: (v) => (known(v.busyRatio) ? v.busyRatio * 100 : null),
    applies: always,
    format: (v) => `${v.toFixed(0)}%`,
  },
  {
    key: "latency",
    title: "Latency p99 at sinks",
    unit: "",
    value: (v) => num(v.latencyP99Ms),
    applies: (v, hist) => hist.points.some((p) => p.vertices.some((x) => x.id === v.id && known(x.latencyP99Ms))),
    format: (v) => duration(v),
  },
];

function num(v: number | null | undefined): number | null {
  return known(v) ? v : null;
}

interface Chart {
  spec: ChartSpec;
  holder: HTMLElement;
  plot: uPlot | null;
  /** The vertex ids of the series, in order: the plot is rebuilt when they change. */
  series: number[];
}

export class ChartsView {
  private readonly charts: Chart[];
  private readonly observer: ResizeObserver;
  private lastWidth = 0;

  constructor(container: HTMLElement) {
    this.charts = SPECS.map((spec) => ({ spec, holder: h("div", { class: "chart-body" }), plot: null, series: [] }));
    replace(
      container,
      ...this.charts.map((c) => h("figure", { class: "chart", "data-chart": c.spec.key }, h("figcaption", {}, c.spec.title), c.holder)),
    );
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(container);
  }

  update(history: History, vertices: Vertex[]): void {
    const xs = history.points.map((p) => (epochMs(p.time) ?? 0) / 1000);
    for (const chart of this.charts) {
      const chosen = vertices.filter((v) => chart.spec.applies(v, history));
      const ids = chosen.map((v) => v.id);
      const data: uPlot.AlignedData = [
        xs,
        ...ids.map((id) =>
          history.points.map((p) => {
            const hv = p.vertices.find((x) => x.id === id);
            return hv ? chart.spec.value(hv) : null;
          }),
        ),
      ];
      if (ids.length === 0) {
        chart.plot?.destroy();
        chart.plot = null;
        chart.series = [];
        replace(chart.holder, h("p", { class: "hint" }, history.points.length === 0 ? "No history yet." : "No vertex reports this."));
        continue;
      }
      if (!chart.plot || chart.series.join() !== ids.join()) {
        chart.plot?.destroy();
        replace(chart.holder);
        chart.series = ids;
        chart.plot = new uPlot(options(chart.spec, chosen, this.width(chart.holder)), data, chart.holder);
      } else {
        chart.plot.setData(data);
      }
    }
  }

  /** Fits the charts to their boxes; called when the overview becomes visible again. */
  resize(): void {
    for (const chart of this.charts) {
      if (!chart.plot) continue;
      const width = this.width(chart.holder);
      if (width > 0 && Math.abs(width - chart.plot.width) > 2) chart.plot.setSize({ width, height: 180 });
    }
  }

  private width(holder: HTMLElement): number {
    const w = holder.clientWidth;
    if (w > 0) this.lastWidth = w;
    return Math.max(240, w > 0 ? w : this.lastWidth || 480);
  }
}

function options(spec: ChartSpec, vertices: Vertex[], width: number): uPlot.Options {
  const fmt = (_u: uPlot, v: number | null) => (v === null || v === undefined ? "–" : spec.format(v));
  return {
    width,
    height: 180,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, spec.unit === "%" ? 100 : 1)] } },
    axes: [
      { stroke: "#5b6472", grid: { stroke: "#eef0f3" } },
      { stroke: "#5b6472", grid: { stroke: "#eef0f3" }, size: 64, values: (_u, splits) => splits.map((v) => spec.format(v)) },
    ],
    series: [
      { label: "time" },
      ...vertices.map((v, i) => ({
        label: `#${v.id} ${v.name.length > 32 ? v.name.slice(0, 31) + "…" : v.name}`,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.6,
        spanGaps: false,
        value: fmt,
      })),
    ],
  };
}
