import type { Context } from "hono";
import { cacheTtl } from "../cache";
import type { BatchDeps } from "../services/batch";
import { fetchImageUrl } from "../services/inputs";

/** The bindings and hooks a request hands to the services (which never see Hono). */
export function serviceDeps(c: Context<{ Bindings: Env }>): BatchDeps {
  return {
    models: c.env.MODELS,
    cache: c.env.RESULTS,
    cacheTtlSeconds: cacheTtl(c.env.CACHE_TTL_SECONDS),
    waitUntil: (p) => c.executionCtx.waitUntil(p),
    fetchImage: fetchImageUrl,
  };
}
