// The engine's REST bodies as the UI reads them (engine/openapi.json is the
// contract), and the fetches. Every URL is relative to the page, so that the UI
// also works behind a path prefix such as the Kubernetes API server's service
// proxy (/api/v1/namespaces/<ns>/services/<svc>:rest/proxy/).
//
// Fields that older engines do not send are optional here: the views treat a
// missing or null value as unknown and show "–".

export type JobState =
  | "CREATED"
  | "RUNNING"
  | "FAILING"
  | "RESTARTING"
  | "FINISHED"
  | "FAILED"
  | "CANCELED"
  | "SUSPENDED"
  | "STANDBY";

export interface VertexInput {
  vertex: number;
  partitioning: string;
}

export interface Vertex {
  id: number;
  uid?: string;
  name: string;
  parallelism: number;
  inputs?: VertexInput[];
  keyed?: boolean;
  splits?: number | null;
}

export interface Checkpoint {
  id: number;
  kind?: "checkpoint" | "savepoint";
  status: "IN_PROGRESS" | "COMPLETED" | "FAILED";
  triggerTime?: string;
  durationMs?: number | null;
  sizeBytes?: number | null;
  writtenBytes?: number | null;
  alignmentMs?: number | null;
  location?: string | null;
  failure?: string | null;
  acks?: Ack[] | null;
}

export interface Ack {
  vertex: number;
  subtask: number;
  ackMs?: number | null;
  alignmentMs?: number | null;
  pauseUs?: number | null;
  stateBytes?: number | null;
}

export interface Job {
  id: string;
  name: string;
  state: JobState | string;
  startTime?: string;
  endTime?: string | null;
  durationMs?: number | null;
  restarts?: number | null;
  maxParallelism?: number;
  vertices: Vertex[];
  lastCompletedCheckpoint?: Checkpoint | null;
  error?: string | null;
}

export interface Percentiles {
  p50?: number | null;
  p99?: number | null;
  p999?: number | null;
  count?: number | null;
}

export interface Latency {
  eventTimeLagMs?: Percentiles | null;
  processingLatencyMs?: Percentiles | null;
}

export interface SubtaskMetrics {
  subtask: number;
  busyRatio?: number | null;
  backpressuredRatio?: number | null;
  idleRatio?: number | null;
  recordsInPerSecond?: number | null;
  recordsOutPerSecond?: number | null;
  watermark?: string | null;
  lag?: number | null;
  cpuSecondsPerMillionRecords?: number | null;
}

export interface VertexMetrics {
  id: number;
  uid?: string;
  name?: string;
  parallelism?: number;
  busyRatio?: number | null;
  backpressuredRatio?: number | null;
  idleRatio?: number | null;
  recordsInPerSecond?: number | null;
  recordsOutPerSecond?: number | null;
  bytesInPerSecond?: number | null;
  bytesOutPerSecond?: number | null;
  recordsIn?: number | null;
  recordsOut?: number | null;
  /** RFC 3339, "+inf" once the input has ended, null before the first watermark. */
  watermark?: string | null;
  lag?: number | null;
  lateRecordsDropped?: number | null;
  cpuSecondsPerMillionRecords?: number | null;
  stateBytes?: number | null;
  stateKeys?: number | null;
  /** Null at vertices other than sinks. */
  latency?: Latency | null;
  subtasks?: SubtaskMetrics[] | null;
}

export interface JobMetrics {
  id: string;
  vertices: VertexMetrics[];
}

export interface HistoryVertex {
  id: number;
  recordsInPerSecond?: number | null;
  recordsOutPerSecond?: number | null;
  busyRatio?: number | null;
  backpressuredRatio?: number | null;
  watermarkLagMs?: number | null;
  latencyP99Ms?: number | null;
}

export interface HistoryPoint {
  time: string;
  vertices: HistoryVertex[];
}

export interface History {
  intervalMs?: number;
  points: HistoryPoint[];
}

export interface Checkpoints {
  counts?: { completed?: number; failed?: number; inProgress?: number };
  latestCompleted?: Checkpoint | null;
  history: Checkpoint[];
}

export interface JobException {
  time?: string;
  message: string;
  restarted?: boolean;
}

export interface Exceptions {
  restarts?: number;
  exceptions: JobException[];
}

export interface Plan {
  file?: string | null;
  sql?: string | null;
  explain?: string | null;
}

/** A request that failed: the path, and the status (0 when there was no answer). */
export class FetchError extends Error {
  constructor(
    readonly path: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  /** The engine has no such route: an engine older than this UI. */
  get missing(): boolean {
    return this.status === 404;
  }
}

/** GET `path` (relative to the page) as JSON. Throws a {@link FetchError}. */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store", signal });
  } catch (e) {
    throw new FetchError(path, 0, `GET ${path}: no answer from the engine (${String(e)})`);
  }
  const text = await response.text();
  if (!response.ok) {
    let detail = text.trim().slice(0, 300);
    try {
      const body = JSON.parse(text) as { error?: string };
      if (body.error) detail = body.error;
    } catch {
      // not JSON: keep the text
    }
    throw new FetchError(path, response.status, `GET ${path}: ${response.status} ${response.statusText}${detail ? ` — ${detail}` : ""}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new FetchError(path, response.status, `GET ${path}: the answer is not JSON (${String(e)})`);
  }
}

export const routes = {
  job: "v1/job",
  metrics: "v1/job/metrics",
  history: "v1/job/history",
  checkpoints: "v1/job/checkpoints",
  exceptions: "v1/job/exceptions",
  plan: "v1/job/plan",
} as const;
