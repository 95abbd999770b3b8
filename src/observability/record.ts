/**
 * One request, as logs and metrics see it. Built field by field from known
 * values only (route pattern, status, ids, numbers), never from headers,
 * bodies or the raw URL, so image bytes, API keys and Authorization headers
 * cannot reach a log line by construction.
 */
import { z } from "zod";

export interface RequestRecord {
  request_id: string;
  method: string;
  /** The matched route pattern (e.g. /v1/jobs/:id), never the raw path: R2 keys and job ids stay out. */
  route: string;
  status: number;
  duration_ms: number;
  /** Hash prefix of the caller's API key (never the key); absent on public routes and failed auth. */
  key_id?: string;
  model?: string;
  cache?: "hit" | "miss" | "mixed";
  /** Images in the response (1 for classify, n for a batch). */
  items?: number;
  stages_ms?: Record<string, number>;
  /** The error envelope's code on 4xx/5xx. */
  error?: string;
}

/** The parts of a response body the record takes, validated like any other input (zod at every edge). */
const Classified = z.object({
  model: z.object({ id: z.string().max(64) }),
  cached: z.boolean(),
  timings_ms: z.record(z.string(), z.number()).optional(),
});
const Batch = z.object({ results: z.array(z.unknown()) });
const ErrorEnvelope = z.object({ error: z.object({ code: z.string().regex(/^[a-z_]{1,40}$/) }) });

/** JSON bodies larger than this are not parsed for the log (an embedding is ~30 kB; pages of results stream as NDJSON). */
const MAX_SUMMARISED_BYTES = 256 * 1024;

/** Routes whose 200 answers are classifications (single or batch). */
const CLASSIFY_ROUTES = /^\/v1\/(classify|embed)(\/|$)/;

/**
 * Reads what the log needs from the response the handler produced: the
 * public response contract, so handlers need no logging code of their own.
 */
export async function summarize(res: Response, path: string): Promise<Partial<RequestRecord>> {
  if (!/^application\/json\b/.test(res.headers.get("content-type") ?? "")) return {};
  const length = Number(res.headers.get("content-length") ?? 0);
  if (length > MAX_SUMMARISED_BYTES) return {};
  const wanted = res.status >= 400 || (res.status === 200 && CLASSIFY_ROUTES.test(path));
  if (!wanted) return {};
  let body: unknown;
  try {
    const text = await res.clone().text();
    if (text.length > MAX_SUMMARISED_BYTES) return {};
    body = JSON.parse(text);
  } catch {
    return {};
  }
  if (res.status >= 400) {
    const e = ErrorEnvelope.safeParse(body);
    return e.success ? { error: e.data.error.code } : {};
  }
  const one = Classified.safeParse(body);
  if (one.success) {
    const { model, cached, timings_ms } = one.data;
    return { model: model.id, cache: cached ? "hit" : "miss", items: 1, ...(timings_ms && { stages_ms: timings_ms }) };
  }
  const batch = Batch.safeParse(body);
  if (batch.success) {
    const items = batch.data.results.map((r) => Classified.safeParse(r)).filter((r) => r.success);
    const hits = items.filter((r) => r.data.cached).length;
    return {
      items: batch.data.results.length,
      ...(items[0] && { model: items[0].data.model.id }),
      ...(items.length > 0 && { cache: hits === items.length ? "hit" : hits === 0 ? "miss" : "mixed" }),
    };
  }
  return {};
}
