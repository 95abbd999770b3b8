import { type ApiError, isApiError } from "../errors";
import type { RegisteredModel } from "../models/registry";
import type { Prediction } from "../pipeline/postprocess";
import { classify } from "./classify";
import { type FetchImage, type ImageInput, resolveImage } from "./inputs";
import { type ClassifyDeps, type ImageFacts, type ModelInfo, modelInfo } from "./run";
import type { StageTimings } from "./timer";

export type BatchItem =
  | { index: number; predictions: Prediction[]; image: ImageFacts; cached: boolean; timings_ms: StageTimings }
  | { index: number; error: { code: string; message: string } };

export interface BatchResult {
  model: ModelInfo;
  counts: { total: number; succeeded: number; failed: number };
  results: BatchItem[];
}

export interface BatchDeps extends ClassifyDeps {
  fetchImage: FetchImage;
}

/**
 * Classifies up to LIMITS.batchMaxItems images, in order. One at a time on
 * purpose: inference is serialised per isolate anyway, and holding one
 * decoded image at a time keeps a 16-image batch inside a 128 MB isolate.
 * An item's own failure (unreadable body part, bad URL, bad image) becomes that
 * item's error; only a model that cannot load fails the whole request (a 503
 * with Retry-After says more than sixteen identical item errors).
 */
export async function classifyBatch(
  items: ReadonlyArray<ImageInput | ApiError>,
  params: { model: RegisteredModel; topK: number; minScore: number },
  deps: BatchDeps,
): Promise<BatchResult> {
  const results: BatchItem[] = [];
  for (const [index, item] of items.entries()) {
    if (isApiError(item)) {
      results.push({ index, error: { code: item.code, message: item.message } });
      continue;
    }
    try {
      const bytes = await resolveImage(item, deps.fetchImage);
      const r = await classify({ bytes, model: params.model, topK: params.topK, minScore: params.minScore }, deps);
      results.push({ index, predictions: r.predictions, image: r.image, cached: r.cached, timings_ms: r.timings_ms });
    } catch (e) {
      if (isApiError(e) && e.code === "model_unavailable") throw e;
      if (isApiError(e)) {
        results.push({ index, error: { code: e.code, message: e.message } });
      } else {
        console.error(`batch item ${index}: unhandled error`, e);
        results.push({ index, error: { code: "internal", message: "internal error" } });
      }
    }
  }
  const failed = results.filter((r) => "error" in r).length;
  return {
    model: modelInfo(params.model),
    counts: { total: results.length, succeeded: results.length - failed, failed },
    results,
  };
}
