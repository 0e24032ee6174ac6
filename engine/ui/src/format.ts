// Text forms of values. Every function takes a possibly missing value and
// returns "–" for it: older engines omit fields, and null means unknown.

export const UNKNOWN = "–";

export function known(v: number | null | undefined): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

export function percent(v: number | null | undefined): string {
  return known(v) ? `${Math.round(v * 100)}%` : UNKNOWN;
}

/** 1234.5 → "1.23k"; keeps three significant digits. */
export function compact(v: number | null | undefined, unit = ""): string {
  if (!known(v)) return UNKNOWN;
  const abs = Math.abs(v);
  const steps: [number, string][] = [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  for (const [size, suffix] of steps) {
    if (abs >= size) return `${trim(v / size)}${suffix}${unit}`;
  }
  return `${trim(v)}${unit}`;
}

function trim(v: number): string {
  const abs = Math.abs(v);
  if (abs === 0) return "0";
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1).replace(/\.0$/, "");
  if (abs >= 0.01) return v.toFixed(2).replace(/\.?0+$/, "");
  return v.toPrecision(2);
}

export function rate(v: number | null | undefined): string {
  return known(v) ? `${compact(v)}/s` : UNKNOWN;
}

export function bytes(v: number | null | undefined): string {
  if (!known(v)) return UNKNOWN;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = v;
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : trim(n)} ${units[i]}`;
}

/** Milliseconds as "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min", "3 d 4 h". */
export function duration(ms: number | null | undefined): string {
  if (!known(ms)) return UNKNOWN;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${trim(s)} s`;
  const total = Math.floor(s);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  return `${m} min ${String(sec).padStart(2, "0")} s`;
}

/** The engine's latency histograms end at 800 s: larger values are reported as 800 s. */
const LATENCY_CAP_MS = 800_000;

/** A latency percentile: a duration, or "≥ 13 min 20 s" at the histograms' last bound. */
export function latency(ms: number | null | undefined): string {
  return known(ms) && ms >= LATENCY_CAP_MS ? `≥ ${duration(LATENCY_CAP_MS)}` : duration(ms);
}

/** An RFC 3339 time as local "HH:MM:SS.mmm", with the date when it is not today. */
export function time(t: string | null | undefined): string {
  if (!t) return UNKNOWN;
  if (t === "+inf") return "+∞ (input ended)";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return t;
  const hms = d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  const today = new Date().toDateString() === d.toDateString();
  return today ? hms : `${d.toLocaleDateString()} ${hms}`;
}

export function count(v: number | null | undefined): string {
  return known(v) ? Math.round(v).toLocaleString("en-US") : UNKNOWN;
}

/** The time `t` (RFC 3339) as milliseconds since the epoch, or null. */
export function epochMs(t: string | null | undefined): number | null {
  if (!t || t === "+inf") return null;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}
