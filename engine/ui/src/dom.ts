// A few DOM helpers, so that views build elements without a framework.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

/** An HTML element with attributes (`on<event>` keys add listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and children. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

function apply(el: Element, attrs: Attrs): void {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A table with a header row; `rows` are cells, or [cells, attributes of the row]. */
export function table(headers: string[], rows: (Child[] | [Child[], Attrs])[], attrs: Attrs = {}): HTMLTableElement {
  const head = h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", {}, t))));
  const body = h("tbody");
  for (const row of rows) {
    const [cells, rowAttrs] = isRowWithAttrs(row) ? row : [row as Child[], {}];
    body.append(h("tr", rowAttrs, ...cells.map((c) => h("td", {}, c))));
  }
  return h("table", { class: "grid", ...attrs }, head, body);
}

function isRowWithAttrs(row: Child[] | [Child[], Attrs]): row is [Child[], Attrs] {
  return row.length === 2 && Array.isArray(row[0]);
}
