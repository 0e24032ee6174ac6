// The SQL & plan tab: the job's file, its SQL and `explain` (GET v1/job/plan).

import type { Plan } from "./api";
import { h, replace } from "./dom";
import { UNKNOWN } from "./format";

export function renderPlan(el: HTMLElement, plan: Plan): void {
  replace(
    el,
    h("p", { class: "summary" }, "File: ", h("code", {}, plan.file ?? UNKNOWN)),
    h("div", { class: "plan-grid" }, block("SQL", plan.sql, "plan-sql"), block("Plan (explain)", plan.explain, "plan-explain")),
  );
}

function block(title: string, text: string | null | undefined, cls: string): HTMLElement {
  return h("section", { class: `plan-block ${cls}` }, h("h3", {}, title), h("pre", {}, text ?? UNKNOWN));
}
