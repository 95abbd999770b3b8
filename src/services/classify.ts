import { cacheKey, readCache } from "../cache";
import type { RegisteredModel } from "../models/registry";
import type { Prediction } from "../pipeline/postprocess";
import { type ClassifyDeps, hashed, type ImageFacts, type ImageHash, type ModelInfo, modelInfo, runModel } from "./run";
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
  const imageSha = await hashed(input, timer);
  const pick = (ranked: Prediction[]) => ranked.slice(0, k).filter((p) => p.score >= minScore);

  if (deps.cache) {
    const hit = await readCache(deps.cache, cacheKey(model, imageSha));
    timer.lap("cache_read");
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

  const run = await runModel(bytes, imageSha, model, deps, timer);
  return {
    model: modelInfo(model),
    predictions: pick(run.predictions),
    image: run.image,
    cached: false,
    timings_ms: timer.done(),
  };
}
