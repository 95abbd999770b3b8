import { ApiError, isApiError } from "../errors";
import { LIMITS } from "../limits";
import { fetchModelBytes, type RegisteredModel } from "../models/registry";
import { sleep } from "../util/isolate-lock";
import { createOrtSession, initOrt, type OrtSession } from "./ort";

/**
 * What a cold load cost, reported in the first response's timings. ORT init and
 * the fetch run concurrently and both count from the start of the load, so they
 * overlap (and the fetch includes any time its continuation waited for the CPU).
 */
export interface LoadTimings {
  ortInitMs: number;
  fetchMs: number;
  sessionMs: number;
}

export interface LoadedModel {
  session: OrtSession;
  /** Present only for the request that actually performed the load. */
  loadTimings?: LoadTimings;
}

interface Failure {
  error: ApiError;
  retryAt: number;
  backoffMs: number;
}

/**
 * One session per model build per isolate. Concurrent cold requests share one
 * load: the first request loads, the others poll until it is done (never
 * awaiting the loading request's promise, see util/isolate-lock.ts). A failed
 * load is remembered with exponential back-off: requests inside the window get
 * the same 503 at once (no R2 storm, no repeated session builds), and the
 * first request after it tries again, so a fixed R2 heals.
 */
const sessions = new Map<string, OrtSession>();
const loading = new Map<string, number>(); // key -> load start (ms)
const failures = new Map<string, Failure>();
/** A load still "in progress" after this long belongs to a request that died: take it over. */
const LOAD_STALE_MS = 120_000;

export function isLoaded(model: RegisteredModel): boolean {
  return sessions.has(model.versionKey);
}

export async function getSession(bucket: R2Bucket, model: RegisteredModel): Promise<LoadedModel> {
  const key = model.versionKey;
  const isLoading = () => {
    const since = loading.get(key);
    return since !== undefined && Date.now() - since < LOAD_STALE_MS;
  };
  while (isLoading()) await sleep(5);
  const ready = sessions.get(key);
  if (ready) return { session: ready };

  const failure = failures.get(key);
  const now = Date.now();
  if (failure && now < failure.retryAt) {
    const wait = Math.ceil((failure.retryAt - now) / 1000);
    throw new ApiError("model_unavailable", `${failure.error.message} (next retry in ${wait}s)`, {
      "Retry-After": String(wait),
    });
  }

  loading.set(key, now);
  try {
    // The R2 read is I/O and ORT's init is CPU: run them side by side. The fetch is
    // started first so its request is on the wire before init takes the CPU. If
    // either fails, Promise.all still observes the other (no unhandled rejection).
    const t0 = performance.now();
    let ortInitMs = 0;
    let fetchMs = 0;
    const [bytes] = await Promise.all([
      fetchModelBytes(bucket, model.manifest).then((b) => {
        fetchMs = performance.now() - t0;
        return b;
      }),
      initOrt().then(() => {
        ortInitMs = performance.now() - t0;
      }),
    ]);
    const t1 = performance.now();
    const session = await createOrtSession(bytes, model.manifest.runtime);
    const t2 = performance.now();
    checkSignature(session, model);
    sessions.set(key, session);
    failures.delete(key);
    return { session, loadTimings: { ortInitMs, fetchMs, sessionMs: t2 - t1 } };
  } catch (e) {
    const error = isApiError(e)
      ? e
      : new ApiError("model_unavailable", `model ${model.manifest.id} failed to load: ${errorMessage(e)}`);
    const backoffMs = Math.min(
      failure ? failure.backoffMs * 2 : LIMITS.modelRetryBackoffMs.initial,
      LIMITS.modelRetryBackoffMs.max,
    );
    failures.set(key, { error, retryAt: Date.now() + backoffMs, backoffMs });
    throw new ApiError(error.code, error.message, {
      ...error.headers,
      "Retry-After": String(Math.ceil(backoffMs / 1000)),
    });
  } finally {
    loading.delete(key);
  }
}

/** A manifest that names tensors the graph does not have is a deploy mistake; say which. */
function checkSignature(session: OrtSession, model: RegisteredModel): void {
  const { id, input } = model.manifest;
  const outputs = outputNames(model);
  if (!session.inputNames.includes(input.name) || !outputs.every((o) => session.outputNames.includes(o))) {
    void session.release();
    throw new ApiError(
      "model_unavailable",
      `model ${id}: manifest names input "${input.name}" / outputs [${outputs.join(", ")}], graph has inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]`,
    );
  }
}

/** The outputs one inference fetches: class scores, plus the pooled features when the manifest names them. */
export function outputNames(model: RegisteredModel): string[] {
  const { output } = model.manifest;
  return output.features ? [output.name, output.features.name] : [output.name];
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
