import { type CachedResult, cacheKey, encodeFloats, writeCache } from "../cache";
import { getSession, type LoadedModel, outputNames } from "../inference/sessions";
import { LIMITS } from "../limits";
import type { RegisteredModel } from "../models/registry";
import { ensureCodecs } from "../pipeline/codecs/wasm";
import { decodeImageWithInfo, decodeOptionsFor } from "../pipeline/decode";
import { l2Normalize, type Prediction, toProbabilities, topK } from "../pipeline/postprocess";
import { preprocess } from "../pipeline/preprocess";
import { sha256Hex } from "../util/hash";
import type { StageTimer } from "./timer";

/** Bindings and runtime hooks the services need, passed in so tests can call them directly. */
export interface ClassifyDeps {
  models: R2Bucket;
  /** Optional: without it every request is a miss (and nothing breaks). */
  cache?: KVNamespace;
  cacheTtlSeconds: number;
  /** ctx.waitUntil: cache writes happen after the response is sent. */
  waitUntil: (p: Promise<unknown>) => void;
}

export type ImageFacts = CachedResult["image"];

export interface ModelRun {
  /** The top LIMITS.cachedPredictions classes, best first. */
  predictions: Prediction[];
  /** L2-normalised pooled features; present when the manifest names a features output. */
  embedding?: Float32Array;
  image: ImageFacts;
}

/** What a run's cache entry keeps. */
export interface CacheFill {
  /**
   * Keep the embedding in the cache entry (default true). Bulk jobs pass
   * false: they never read embeddings back, and the 1280-float vector is ~7 KB
   * of the entry (an /v1/embed for such an image runs the model once more and
   * rewrites the entry with both).
   */
  embedding?: boolean;
}

/**
 * decode -> preprocess -> one inference -> postprocess, then the cache writes.
 * The run fetches the class scores and (if the model has them) the pooled
 * features together, and caches both in one entry, so an HTTP classification
 * also answers a later embedding request and vice versa: the second kind of
 * request for an image costs no inference.
 */
export async function runModel(
  bytes: Uint8Array,
  imageSha: string,
  model: RegisteredModel,
  deps: ClassifyDeps,
  timer: StageTimer,
  fill: CacheFill = {},
): Promise<ModelRun> {
  const { manifest } = model;

  // Start loading the model (R2 fetch is I/O) while the CPU decodes the image.
  const loading = getSession(deps.models, model);
  // If decoding fails, this request answers 4xx while the load is still in flight. workerd
  // never resumes a finished request's pending work, so without waitUntil the load would be
  // stranded half-way with the model marked "loading": every request for that model would
  // then wait for the 120 s stale-load takeover (found by scripts/loadtest.ts). The catch
  // also silences the early-rejection warning; the error is observed by the await below.
  deps.waitUntil(loading.catch(() => undefined));

  const image = await (async () => {
    const { info, image: decoded } = await decodeImageWithInfo(bytes, {
      ...decodeOptionsFor(manifest.preprocess),
      prepareWebp: ensureCodecs,
    });
    timer.lap("decode");
    const tensor = preprocess(decoded, manifest.preprocess, manifest.input);
    timer.lap("preprocess");
    return { info, tensor };
  })();

  const session: LoadedModel = await loading;
  if (session.loadTimings) {
    timer.set("ort_init", session.loadTimings.ortInitMs);
    timer.set("model_fetch", session.loadTimings.fetchMs);
    timer.set("session_create", session.loadTimings.sessionMs);
  }
  timer.lap("model_wait");

  const spec = manifest.input;
  const dims = spec.layout === "NCHW" ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3];
  const outputs = await session.session.run(spec.name, image.tensor, dims, outputNames(model));
  timer.lap("infer");

  const scores = outputs[manifest.output.name];
  if (!scores) throw new Error(`model ${manifest.id}: no output ${manifest.output.name}`);
  const probs = toProbabilities(scores.data, scores.dims, manifest.numClasses, manifest.output.kind);
  const predictions = topK(probs, model.labels, LIMITS.cachedPredictions);
  const { features } = manifest.output;
  const pooled = features ? outputs[features.name] : undefined;
  const embedding = features && pooled ? l2Normalize(pooled.data, pooled.dims, features.dim) : undefined;
  timer.lap("postprocess");

  const { info } = image;
  const swap = info.orientation >= 5; // EXIF 5..8 transpose the stored image
  const facts: ImageFacts = {
    sha256: imageSha,
    width: swap ? info.height : info.width,
    height: swap ? info.width : info.height,
    format: info.format,
  };
  if (deps.cache) {
    // One entry, one KV write, for everything this run produced.
    const entry: CachedResult = {
      v: 2,
      predictions,
      ...(embedding && fill.embedding !== false
        ? { embedding: { dim: embedding.length, data: encodeFloats(embedding) } }
        : {}),
      image: facts,
      createdAt: new Date().toISOString(),
    };
    deps.waitUntil(writeCache(deps.cache, cacheKey(model, imageSha), entry, deps.cacheTtlSeconds));
  }
  return { predictions, embedding, image: facts };
}

/** Which model answered: enough to tell builds apart, and whether its labels mean anything. */
export interface ModelInfo {
  id: string;
  version: string;
  trained: boolean;
  sha256: string;
}

export function modelInfo(model: RegisteredModel): ModelInfo {
  const m = model.manifest;
  return { id: m.id, version: m.version, trained: m.trained, sha256: m.file.sha256 };
}

/** An image's sha256 and what computing it cost. */
export interface ImageHash {
  sha256: string;
  ms: number;
}

export async function hashImage(bytes: Uint8Array): Promise<ImageHash> {
  const t0 = performance.now();
  const sha256 = await sha256Hex(bytes);
  return { sha256, ms: performance.now() - t0 };
}

/** The image's sha256, hashing it now unless the caller already did (its cost still shows as "hash"). */
export async function hashed(input: { bytes: Uint8Array; hash?: ImageHash }, timer: StageTimer): Promise<string> {
  if (input.hash) {
    timer.lap("hash");
    timer.set("hash", input.hash.ms);
    return input.hash.sha256;
  }
  const sha = await sha256Hex(input.bytes);
  timer.lap("hash");
  return sha;
}
