import { type CachedResult, cacheKey, readCache } from "../cache";
import type { RegisteredModel } from "../models/registry";
import type { Prediction } from "../pipeline/postprocess";
import {
  type CacheFill,
  type ClassifyDeps,
  hashed,
  hashImage,
  type ImageFacts,
  type ImageHash,
  type ModelInfo,
  modelInfo,
  runModel,
} from "./run";
import { type StageTimings, stageTimer } from "./timer";

export type { ClassifyDeps } from "./run";
export type { StageTimings } from "./timer";

export interface ClassifyInput {
  bytes: Uint8Array;
  model: RegisteredModel;
  topK: number;
  /** Drop predictions scoring below this (after top_k); 0 keeps all. */
  minScore?: number;
  /** The hash of `bytes` if the caller already computed it (e.g. for an ETag). */
  hash?: ImageHash;
  /** The cache lookup for `bytes` and `model` if the caller already did it (lookupCache); overrides `hash`. */
  lookup?: CacheLookup;
  /** Which cache entries a miss writes (default: the classification and, if the model has one, the embedding). */
  fill?: CacheFill;
}

/** An image's hash and its cache entry for one model, looked up ahead of classify(). */
export interface CacheLookup {
  hash: ImageHash;
  /** The entry, or undefined on a miss (or without a cache). */
  hit: CachedResult | undefined;
  /** From issuing the cache read to its answer (ahead of classify(), this includes other work the isolate did meanwhile). */
  readMs: number;
}

/**
 * Hash (unless the caller has it) + cache read: the I/O half of classify(),
 * which does it this way too. Callers that overlap it with other work call
 * it ahead (the job consumer does, while the previous item infers).
 */
export async function lookupCache(
  bytes: Uint8Array,
  model: RegisteredModel,
  deps: ClassifyDeps,
  known?: ImageHash,
): Promise<CacheLookup> {
  const hash = known ?? (await hashImage(bytes));
  const t0 = performance.now();
  const hit = deps.cache ? await readCache(deps.cache, cacheKey(model, hash.sha256)) : undefined;
  return { hash, hit, readMs: performance.now() - t0 };
}

export interface ClassifyResult {
  model: ModelInfo;
  predictions: Prediction[];
  image: ImageFacts;
  cached: boolean;
  timings_ms: StageTimings;
}

/**
 * The single classification path shared by HTTP and the queue consumers:
 * hash -> cache -> (decode -> preprocess -> infer -> postprocess -> cache write).
 */
export async function classify(input: ClassifyInput, deps: ClassifyDeps): Promise<ClassifyResult> {
  const { bytes, model, topK: k, minScore = 0 } = input;
  const timer = stageTimer();
  const { hash, hit, readMs } = input.lookup ?? (await lookupCache(bytes, model, deps, input.hash));
  const imageSha = await hashed({ bytes, hash }, timer);
  const pick = (ranked: Prediction[]) => ranked.slice(0, k).filter((p) => p.score >= minScore);

  if (deps.cache) {
    timer.lap("cache_read");
    timer.set("cache_read", readMs);
    if (hit) {
      return {
        model: modelInfo(model),
        predictions: pick(hit.predictions),
        image: hit.image,
        cached: true,
        timings_ms: timer.done(),
      };
    }
  }

  const run = await runModel(bytes, imageSha, model, deps, timer, input.fill);
  return {
    model: modelInfo(model),
    predictions: pick(run.predictions),
    image: run.image,
    cached: false,
    timings_ms: timer.done(),
  };
}
