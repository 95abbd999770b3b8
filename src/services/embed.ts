import { cachedVector, cacheKey, readCache } from "../cache";
import { ApiError } from "../errors";
import { listModels, type RegisteredModel } from "../models/registry";
import { type ClassifyDeps, hashed, type ImageFacts, type ImageHash, type ModelInfo, modelInfo, runModel } from "./run";
import { type StageTimings, stageTimer } from "./timer";

export interface EmbedInput {
  bytes: Uint8Array;
  model: RegisteredModel;
  /** The hash of `bytes` if the caller already computed it (e.g. for an ETag). */
  hash?: ImageHash;
}

export interface EmbedResult {
  model: ModelInfo;
  dim: number;
  /** Unit L2 norm: the dot product of two embeddings of one model is their cosine similarity. */
  embedding: number[];
  image: ImageFacts;
  cached: boolean;
  timings_ms: StageTimings;
}

/** Refuses, before any work, a model whose manifest names no features output. */
export function requireEmbeddable(model: RegisteredModel): number {
  const features = model.manifest.output.features;
  if (!features) {
    const able = listModels()
      .filter((m) => m.manifest.output.features)
      .map((m) => m.manifest.id);
    throw new ApiError(
      "embedding_unavailable",
      `model ${model.manifest.id} exposes no feature output, so it cannot embed; ${
        able.length ? `models that can: ${able.join(", ")}` : "no model in this deployment can (yet)"
      }`,
    );
  }
  return features.dim;
}

/**
 * The pooled penultimate features of one image (what Keras calls
 * include_top=False), L2-normalised. Same pipeline and inference as classify:
 * a miss here also caches the image's classification.
 */
export async function embed(input: EmbedInput, deps: ClassifyDeps): Promise<EmbedResult> {
  const { bytes, model } = input;
  const dim = requireEmbeddable(model);
  const timer = stageTimer();
  const imageSha = await hashed(input, timer);

  if (deps.cache) {
    const hit = await readCache(deps.cache, cacheKey(model, imageSha));
    timer.lap("cache_read");
    // An entry a bulk job wrote has the classification only: then this is a miss.
    const vector = hit && cachedVector(hit, dim);
    if (hit && vector) {
      return {
        model: modelInfo(model),
        dim,
        embedding: Array.from(vector),
        image: hit.image,
        cached: true,
        timings_ms: timer.done(),
      };
    }
  }

  const run = await runModel(bytes, imageSha, model, deps, timer);
  if (!run.embedding) throw new Error(`model ${model.manifest.id}: features output missing from the run`);
  return {
    model: modelInfo(model),
    dim,
    embedding: Array.from(run.embedding),
    image: run.image,
    cached: false,
    timings_ms: timer.done(),
  };
}
