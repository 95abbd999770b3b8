/**
 * A thin client for the edgetag jobs API. Errors come in two kinds main() treats
 * differently: ApiError (the server answered with {"error":{code,message}}) and
 * ConnectionError (nobody answered, usually because `npm run dev` is not running).
 */

import { localApiKey } from "../keys/dev-key";
import type { JobCounts } from "./progress";
import { parseResultLine, type ResultLine } from "./results";

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ConnectionError extends Error {
  override name = "ConnectionError";
  constructor(
    readonly endpoint: string,
    readonly causeCode: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";
export const TERMINAL_STATES: ReadonlySet<string> = new Set(["done", "failed", "cancelled"]);

export interface JobStatus {
  id: string;
  state: JobState;
  model: string;
  top_k: number;
  counts: JobCounts;
  total_final: boolean;
  created_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  elapsed_s?: number | null;
  images_per_s?: number | null;
  error?: { code: string; message: string } | string | null;
}

export interface JobCreated {
  id: string;
  state: JobState;
  status_url: string;
  results_url: string;
}

export interface JobRequest {
  model?: string;
  top_k?: number;
  source: { urls?: string[]; keys?: string[]; prefix?: string };
}

export interface UploadResult {
  key: string;
  bytes: number;
  sha256: string;
  format: string;
  width: number;
  height: number;
}

/** Network-level failures worth retrying (the request may never have reached the server). */
const TRANSIENT_NET = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]);
/** Server answers worth retrying: overloaded or restarting, not "your request is wrong". */
const TRANSIENT_HTTP = new Set([429, 502, 503, 504]);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Digs the errno-style code out of undici's `TypeError: fetch failed` (it sits in `cause`, sometimes nested). */
export function networkErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const errors = (e as { errors?: unknown }).errors;
    // AggregateError from happy-eyeballs (IPv4 + IPv6 both refused).
    if (Array.isArray(errors) && errors.length > 0) e = errors[0];
    else e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export class ApiClient {
  constructor(
    readonly endpoint: string,
    private readonly retries = 4,
    private readonly retryBaseMs = 500,
    /** Sent as a Bearer token: EDGETAG_API_KEY, else the local dev key (README, "Security model"). */
    private readonly apiKey = localApiKey(),
    /**
     * Per request. Without it a connection the local dev proxy silently drops
     * hangs for undici's 300 s default (seen in CI: the job was done, the CLI
     * sat on a dead poll for five minutes).
     */
    private readonly timeoutMs = 60_000,
  ) {}

  /**
   * fetch + error mapping + bounded retries for idempotent requests. POST is
   * never retried: a lost answer to "create job" must not create a second job.
   */
  async request(
    method: string,
    path: string,
    init: { body?: Uint8Array | string; headers?: Record<string, string> } = {},
  ) {
    const idempotent = method !== "POST";
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.endpoint}${path}`, {
          method,
          body: init.body,
          headers: { ...init.headers, authorization: `Bearer ${this.apiKey}` },
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        const code = (err as Error).name === "TimeoutError" ? "ETIMEDOUT" : networkErrorCode(err);
        if (idempotent && attempt < this.retries && code !== undefined && TRANSIENT_NET.has(code)) {
          await sleep(this.retryBaseMs * 2 ** attempt);
          continue;
        }
        const why = code === "ECONNREFUSED" ? "connection refused" : (code ?? (err as Error).message);
        throw new ConnectionError(this.endpoint, code, `cannot reach ${this.endpoint} (${why})`);
      }
      if (res.ok) return res;
      if (idempotent && attempt < this.retries && TRANSIENT_HTTP.has(res.status)) {
        await res.body?.cancel();
        // Honour Retry-After (seconds) when the server gives one, within reason.
        const ra = Number(res.headers.get("retry-after"));
        await sleep(Number.isFinite(ra) && ra > 0 ? Math.min(ra, 30) * 1000 : this.retryBaseMs * 2 ** attempt);
        continue;
      }
      throw await toApiError(res);
    }
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init =
      body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } };
    const res = await this.request(method, path, init);
    return (await res.json()) as T;
  }

  putImage(key: string, bytes: Uint8Array, contentType: string): Promise<UploadResult> {
    // Keys use only [A-Za-z0-9/._-], so they go into the path as they are; slashes stay slashes.
    return this.request("PUT", `/v1/images/${key}`, {
      body: bytes,
      headers: { "content-type": contentType },
    }).then((r) => r.json() as Promise<UploadResult>);
  }

  createJob(req: JobRequest): Promise<JobCreated> {
    return this.json<JobCreated>("POST", "/v1/jobs", req);
  }

  getJob(id: string): Promise<JobStatus> {
    return this.json<JobStatus>("GET", `/v1/jobs/${encodeURIComponent(id)}`);
  }

  cancelJob(id: string): Promise<JobStatus> {
    return this.json<JobStatus>("DELETE", `/v1/jobs/${encodeURIComponent(id)}`);
  }

  /**
   * Every finished item of a job, page by page, in the server's order. Call it
   * once the job is terminal: then the set of finished items no longer changes,
   * and one empty page means the download is complete.
   *
   * `x-next-after` is treated as an opaque cursor and handed back verbatim: the
   * server may page by item index or by finish sequence (this one pages in
   * finish order), and the client must not care. Without the header it falls
   * back to the last line's item index. The first request has no `after`, so the
   * server picks the start. Items already seen are dropped, and a page that
   * brings nothing new ends the loop, so a server that ignores the cursor cannot
   * make it spin forever or write duplicates.
   */
  async *resultPages(id: string, limit = 1000): AsyncGenerator<ResultLine[]> {
    let after: string | undefined;
    const seen = new Set<number>();
    for (;;) {
      const q = new URLSearchParams({ limit: String(limit) });
      if (after !== undefined) q.set("after", after);
      const res = await this.request("GET", `/v1/jobs/${encodeURIComponent(id)}/results?${q}`);
      const lines = (await res.text())
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map(parseResultLine);
      const fresh = lines.filter((l) => !seen.has(l.item));
      if (fresh.length === 0) return;
      for (const l of fresh) seen.add(l.item);
      yield fresh;
      const header = res.headers.get("x-next-after")?.trim();
      after = header ? header : String((lines[lines.length - 1] as ResultLine).item);
    }
  }
}

async function toApiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && typeof body.error.code === "string") {
      return new ApiError(res.status, body.error.code, String(body.error.message ?? ""));
    }
  } catch {
    // Not JSON: a proxy page or a route that does not exist yet; report the status and the start of the body.
  }
  return new ApiError(res.status, `http_${res.status}`, text.slice(0, 300) || res.statusText);
}
