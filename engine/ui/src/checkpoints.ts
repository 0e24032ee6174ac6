// The checkpoints tab: counts, the history (GET v1/job/checkpoints, newest
// first) and, for the selected row, when each subtask acknowledged it.

import type { Checkpoint, Checkpoints, Vertex } from "./api";
import { h, replace, table } from "./dom";
import { bytes, count, duration, time, UNKNOWN } from "./format";

export class CheckpointsView {
  private selected: number | null = null;
  private last: { data: Checkpoints; vertices: Vertex[] } | null = null;

  constructor(private readonly el: HTMLElement) {}

  render(data: Checkpoints, vertices: Vertex[]): void {
    this.last = { data, vertices };
    const c = data.counts ?? {};
    const summary = h(
      "div",
      { class: "cards" },
      card("completed", count(c.completed)),
      card("failed", count(c.failed), (c.failed ?? 0) > 0 ? "bad" : ""),
      card("in progress", count(c.inProgress)),
      card("latest completed", data.latestCompleted ? `#${data.latestCompleted.id} at ${time(data.latestCompleted.triggerTime)}` : UNKNOWN),
    );
    const history = data.history ?? [];
    const rows = history.map((cp): [(Node | string)[], Record<string, string | number | ((e: Event) => void)>] => [
      [
        String(cp.id),
        cp.kind ?? "checkpoint",
        h("span", { class: `status status-${cp.status.toLowerCase()}` }, cp.status.replace("_", " ")),
        time(cp.triggerTime),
        cp.status === "IN_PROGRESS" ? UNKNOWN : duration(cp.durationMs),
        cp.status === "COMPLETED" ? bytes(cp.sizeBytes) : UNKNOWN,
        cp.status === "COMPLETED" ? bytes(cp.writtenBytes ?? cp.sizeBytes) : UNKNOWN,
        duration(cp.alignmentMs),
        cp.failure ? h("span", { class: "failure", title: cp.failure }, cp.failure) : "",
      ],
      {
        "data-checkpoint-id": cp.id,
        class: `clickable${cp.id === this.selected ? " selected" : ""}`,
        tabindex: 0,
        onclick: () => this.select(cp.id),
        onkeydown: (e: Event) => {
          if ((e as KeyboardEvent).key === "Enter") this.select(cp.id);
        },
      },
    ]);
    const list =
      history.length === 0
        ? h("p", { class: "hint" }, "No checkpoint yet. Checkpoints are off unless the job sets execution.checkpointing.interval.")
        : h("div", { class: "scroll-x" }, table(["id", "kind", "status", "triggered", "duration", "size", "written", "alignment", "failure"], rows, { class: "grid checkpoints" }));
    const chosen = history.find((cp) => cp.id === this.selected);
    replace(
      this.el,
      summary,
      h("div", { class: "split" }, h("div", { class: "split-main" }, list), h("aside", { class: "panel acks" }, acksPanel(chosen, vertices))),
    );
  }

  private select(id: number): void {
    this.selected = this.selected === id ? null : id;
    if (this.last) this.render(this.last.data, this.last.vertices);
  }
}

function card(label: string, value: string, cls = ""): HTMLElement {
  return h("div", { class: `card ${cls}` }, h("div", { class: "card-value" }, value), h("div", { class: "card-label" }, label));
}

function acksPanel(cp: Checkpoint | undefined, vertices: Vertex[]): Node {
  if (!cp) return h("p", { class: "hint" }, "Select a checkpoint to see when each subtask acknowledged it.");
  const head = [
    h("h3", {}, `${cp.kind === "savepoint" ? "Savepoint" : "Checkpoint"} ${cp.id}`),
    h("p", { class: "location" }, cp.location ?? UNKNOWN),
    cp.failure ? h("pre", { class: "failure-text" }, cp.failure) : null,
  ];
  const acks = cp.acks;
  if (!acks || acks.length === 0) {
    return h(
      "div",
      {},
      ...head,
      h("p", { class: "hint" }, cp.status === "IN_PROGRESS" ? "No subtask has acknowledged it yet." : "This engine reports no acknowledgements for this checkpoint."),
    );
  }
  const names = new Map(vertices.map((v) => [v.id, v.name]));
  const sorted = [...acks].sort((a, b) => a.vertex - b.vertex || a.subtask - b.subtask);
  const rows = sorted.map((a): [(Node | string)[], Record<string, string>] => [
    [h("span", { title: names.get(a.vertex) ?? "" }, `#${a.vertex} ${shortName(names.get(a.vertex))}`), String(a.subtask), duration(a.ackMs), duration(a.alignmentMs), pause(a.pauseUs), bytes(a.stateBytes)],
    { "data-ack": `${a.vertex}-${a.subtask}` },
  ]);
  const acksTable = table(["vertex", "subtask", "ack after", "alignment", "pause", "state"], rows, { class: "grid ack-table" });
  return h("div", { "data-acks-for": cp.id }, ...head, h("div", { class: "scroll-x" }, acksTable));
}

/// The task thread's pause for a snapshot, in microseconds: usually well under a millisecond.
function pause(us: number | null | undefined): string {
  if (us === null || us === undefined) return UNKNOWN;
  return us < 1000 ? `${Math.round(us)} µs` : duration(us / 1000);
}

function shortName(name: string | undefined): string {
  if (!name) return "";
  return name.length > 18 ? name.slice(0, 17) + "…" : name;
}
