import { z } from "zod";
import { LIMITS } from "./limits";
import type { RegisteredModel } from "./models/registry";

/**
 * KV result cache. The key pins the exact image bytes (sha256) and the exact
 * model build (id + model file sha256), so a re-uploaded model never serves
 * stale predictions. One entry per (model build, image) holds what one
 * inference produced: the classification and, when the run kept it, the
 * embedding. So a miss costs one KV write, not one per output (writes are
 * KV's billed and rate-limited operation), and whichever endpoint asks next
 * finds its answer. The cache is an optimisation only: every KV failure is
 * logged and treated as a miss, never as a failed request.
 */
export const CachedImage = z.object({
  sha256: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.enum(["jpeg", "png", "webp"]),
});

/**
 * An embedding is stored as the base64 of its little-endian float32 values:
 * exact, and ~4x smaller than a JSON array of 1280 numbers.
 */
export const CachedEmbedding = z.object({
  dim: z.number().int().positive(),
  data: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
});

export const CachedResult = z.object({
  v: z.literal(2),
  predictions: z.array(z.object({ label: z.string(), index: z.number().int().nonnegative(), score: z.number() })),
  /** Absent when the run that wrote the entry did not keep it (bulk jobs never read embeddings back). */
  embedding: CachedEmbedding.optional(),
  image: CachedImage,
  createdAt: z.string(),
});
export type CachedResult = z.infer<typeof CachedResult>;

export function cacheKey(model: RegisteredModel, imageSha256: string): string {
  return `res:v2:${model.manifest.id}:${model.manifest.file.sha256}:${imageSha256}`;
}

export function readCache(kv: KVNamespace, key: string): Promise<CachedResult | undefined> {
  return readEntry(kv, key, CachedResult);
}

/** The entry's vector, if it has one of `dim` values; one whose length disagrees is as good as absent. */
export function cachedVector(entry: CachedResult, dim: number): Float32Array | undefined {
  if (!entry.embedding || entry.embedding.dim !== dim) return undefined;
  const vector = decodeFloats(entry.embedding.data);
  if (vector?.length !== dim) {
    console.warn(`cache: ignoring a malformed embedding for image ${entry.image.sha256}`);
    return undefined;
  }
  return vector;
}

async function readEntry<S extends z.ZodType>(
  kv: KVNamespace,
  key: string,
  schema: S,
): Promise<z.infer<S> | undefined> {
  try {
    const raw = await kv.get(key, "json");
    if (raw === null) return undefined;
    // An older deploy (or a bug) may have written another shape: treat it as a miss.
    const parsed = schema.safeParse(raw);
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

export function encodeFloats(values: Float32Array): string {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let binary = "";
  // Chunked: String.fromCharCode(...bytes) would overflow the argument limit for big vectors.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** undefined if the text is not base64 of whole float32 values. */
export function decodeFloats(b64: string): Float32Array | undefined {
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    return undefined;
  }
  if (binary.length % 4 !== 0) return undefined;
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer);
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
