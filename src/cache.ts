import { z } from "zod";
import { LIMITS } from "./limits";
import type { RegisteredModel } from "./models/registry";

/**
 * KV result cache. The key pins the exact image bytes (sha256) and the exact
 * model build (id + model file sha256), so a re-uploaded model never serves
 * stale predictions. The cache is an optimisation only: every KV failure is
 * logged and treated as a miss, never as a failed request.
 */
export const CachedResult = z.object({
  v: z.literal(1),
  predictions: z.array(z.object({ label: z.string(), index: z.number().int().nonnegative(), score: z.number() })),
  image: z.object({
    sha256: z.string(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    format: z.enum(["jpeg", "png", "webp"]),
  }),
  createdAt: z.string(),
});
export type CachedResult = z.infer<typeof CachedResult>;

export function cacheKey(model: RegisteredModel, imageSha256: string): string {
  return `cls:v1:${model.manifest.id}:${model.manifest.file.sha256}:${imageSha256}`;
}

export async function readCache(kv: KVNamespace, key: string): Promise<CachedResult | undefined> {
  try {
    const raw = await kv.get(key, "json");
    if (raw === null) return undefined;
    // An older deploy (or a bug) may have written another shape: treat it as a miss.
    const parsed = CachedResult.safeParse(raw);
    if (!parsed.success) {
      console.warn(`cache: ignoring malformed entry ${key}`);
      return undefined;
    }
    return parsed.data;
  } catch (e) {
    console.warn(`cache: read failed for ${key}: ${String(e)}`);
    return undefined;
  }
}

export async function writeCache(kv: KVNamespace, key: string, value: CachedResult, ttlSeconds: number): Promise<void> {
  try {
    await kv.put(key, JSON.stringify(value), { expirationTtl: ttlSeconds });
  } catch (e) {
    console.warn(`cache: write failed for ${key}: ${String(e)}`);
  }
}

/** Parses CACHE_TTL_SECONDS; anything unusable falls back to the default rather than breaking requests. */
export function cacheTtl(raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < LIMITS.minCacheTtlSeconds) return LIMITS.defaultCacheTtlSeconds;
  return n;
}
