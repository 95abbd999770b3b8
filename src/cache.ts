import { z } from "zod";
import { LIMITS } from "./limits";
import type { RegisteredModel } from "./models/registry";

/**
 * KV result cache. The key pins the exact image bytes (sha256) and the exact
 * model build (id + model file sha256), so a re-uploaded model never serves
 * stale predictions. Classifications and embeddings live under distinct
 * prefixes, and one inference fills both. The cache is an optimisation only:
 * every KV failure is logged and treated as a miss, never as a failed request.
 */
export const CachedImage = z.object({
  sha256: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.enum(["jpeg", "png", "webp"]),
});

export const CachedResult = z.object({
  v: z.literal(1),
  predictions: z.array(z.object({ label: z.string(), index: z.number().int().nonnegative(), score: z.number() })),
  image: CachedImage,
  createdAt: z.string(),
});
export type CachedResult = z.infer<typeof CachedResult>;

/**
 * An embedding is stored as the base64 of its little-endian float32 values:
 * exact, and ~4x smaller than a JSON array of 1280 numbers.
 */
export const CachedEmbedding = z.object({
  v: z.literal(1),
  dim: z.number().int().positive(),
  embedding: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
  image: CachedImage,
  createdAt: z.string(),
});
export type CachedEmbedding = z.infer<typeof CachedEmbedding>;

export function cacheKey(model: RegisteredModel, imageSha256: string): string {
  return `cls:v1:${model.manifest.id}:${model.manifest.file.sha256}:${imageSha256}`;
}

export function embedCacheKey(model: RegisteredModel, imageSha256: string): string {
  return `emb:v1:${model.manifest.id}:${model.manifest.file.sha256}:${imageSha256}`;
}

export function readCache(kv: KVNamespace, key: string): Promise<CachedResult | undefined> {
  return readEntry(kv, key, CachedResult);
}

/** The entry with its vector decoded; one whose length disagrees with its `dim` is as good as malformed. */
export async function readEmbeddingCache(
  kv: KVNamespace,
  key: string,
): Promise<(CachedEmbedding & { vector: Float32Array }) | undefined> {
  const entry = await readEntry(kv, key, CachedEmbedding);
  if (!entry) return undefined;
  const vector = decodeFloats(entry.embedding);
  if (vector?.length !== entry.dim) {
    console.warn(`cache: ignoring malformed entry ${key}`);
    return undefined;
  }
  return { ...entry, vector };
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

export async function writeCache(
  kv: KVNamespace,
  key: string,
  value: CachedResult | CachedEmbedding,
  ttlSeconds: number,
): Promise<void> {
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
