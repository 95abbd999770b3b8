/**
 * Access control for /v1/*: default deny. Every /v1 route needs a valid,
 * unrevoked API key within its rate limit, except the read-only model catalogue
 * (static manifest data, the same for every caller, and what the demo page and
 * the API reference link to). The health, docs and demo routes live outside
 * /v1 and are public. A route added under /v1 later is protected without
 * anyone remembering to protect it.
 */
import type { MiddlewareHandler } from "hono";
import { LIMITS } from "../limits";
import { VerifiedKeyCache } from "./key-cache";
import { enforceRateLimit } from "./rate-limit";
import { type AuthenticatedKey, authenticate } from "./verify";

declare module "hono" {
  interface ContextVariableMap {
    /** Set by requireApiKey on authenticated requests (for logs and metrics). */
    apiKey: AuthenticatedKey;
  }
}

const PUBLIC_V1: ReadonlyArray<{ methods: ReadonlySet<string>; path: RegExp }> = [
  { methods: new Set(["GET", "HEAD"]), path: /^\/v1\/models(\/[^/]+)?\/?$/ },
];

export function isPublic(method: string, path: string): boolean {
  return PUBLIC_V1.some((r) => r.methods.has(method) && r.path.test(path));
}

/** One per isolate: what it holds is only ever a hash and a key's id, name and tier. */
export const verifiedKeys = new VerifiedKeyCache(
  LIMITS.apiKeyIsolateCacheSeconds * 1000,
  LIMITS.apiKeyIsolateCacheEntries,
);

export function requireApiKey(): MiddlewareHandler<{ Bindings: Env }> {
  return async (c, next) => {
    if (isPublic(c.req.method, c.req.path)) return next();
    const key = await authenticate(c.req.header("authorization"), {
      kv: c.env.API_KEYS,
      hashList: c.env.API_KEY_HASHES,
      verified: verifiedKeys,
    });
    c.set("apiKey", key);
    await enforceRateLimit(key, { standard: c.env.RATE_LIMIT_STANDARD, bulk: c.env.RATE_LIMIT_BULK });
    await next();
  };
}
