// The exceptions tab: the failures of the job's attempts (GET v1/job/exceptions,
// newest first), and whether each led to a restart.

import type { Exceptions, Job } from "./api";
import { h, replace } from "./dom";
import { count, time } from "./format";

export function renderExceptions(el: HTMLElement, data: Exceptions, job: Job | null): void {
  const restarts = data.restarts ?? job?.restarts;
  const head = h("p", { class: "summary" }, `Restarts: ${count(restarts)} · exceptions: ${data.exceptions.length}`);
  const current = job?.error ? h("div", { class: "exception current" }, h("div", { class: "exception-head" }, h("strong", {}, "Current error")), h("pre", {}, job.error)) : null;
  if (data.exceptions.length === 0) {
    replace(el, head, current, h("p", { class: "hint" }, "No exception so far."));
    return;
  }
  replace(
    el,
    head,
    current,
    ...data.exceptions.map((e, i) =>
      h(
        "article",
        { class: "exception", "data-exception-index": i },
        h(
          "div",
          { class: "exception-head" },
          h("time", { datetime: e.time ?? "" }, time(e.time)),
          e.restarted === undefined ? null : h("span", { class: `tag ${e.restarted ? "tag-restarted" : "tag-fatal"}` }, e.restarted ? "restarted" : "not restarted"),
        ),
        h("pre", { class: "exception-message" }, e.message),
      ),
    ),
  );
}
