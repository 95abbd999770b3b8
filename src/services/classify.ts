import { type CachedResult, cacheKey, readCache, writeCache } from "../cache";
import { getSession, type LoadedModel } from "../inference/sessions";
import { LIMITS } from "../limits";
import type { RegisteredModel } from "../models/registry";
import { ensureCodecs } from "../pipeline/codecs/wasm";
import { decodeImageWithInfo } from "../pipeline/decode";
import { type Prediction, toProbabilities, topK } from "../pipeline/postprocess";
import { minDecodeShortSide, preprocess } from "../pipeline/preprocess";
import { sha256Hex } from "../util/hash";

/** Bindings and runtime hooks the service needs, passed in so tests can call it directly. */
export interface ClassifyDeps {
  models: R2Bucket;
  /** Optional: without it every request is a miss (and nothing breaks). */
  cache?: KVNamespace;
  cacheTtlSeconds: number;
  /** ctx.waitUntil: the cache write happens after the response is sent. */
  waitUntil: (p: Promise<unknown>) => void;
}

export interface ClassifyInput {
  bytes: Uint8Array;
  model: RegisteredModel;
  topK: number;
}

/**
 * Wall-clock milliseconds per stage. Locally these are real; in production
 * Workers' clocks only advance across I/O, so pure-CPU stages read 0 there.
 */
export type StageTimings = Record<string, number>;

export interface ClassifyResult {
  model: { id: string; version: string; trained: boolean; sha256: string };
  predictions: Prediction[];
  image: CachedResult["image"];
  cached: boolean;
  timings_ms: StageTimings;
}

/**
 * The single classification path shared by HTTP and (later) queue consumers:
 * hash -> cache -> decode -> preprocess -> infer -> postprocess -> cache write.
 */
export async function classify(input: ClassifyInput, deps: ClassifyDeps): Promise<ClassifyResult> {
  const { bytes, model, topK: k } = input;
  const { manifest } = model;
  const timer = stageTimer();

  const imageSha = await sha256Hex(bytes);
  timer.lap("hash");

  const key = cacheKey(model, imageSha);
  if (deps.cache) {
    const hit = await readCache(deps.cache, key);
    timer.lap("cache_read");
    if (hit) {
      return {
        model: modelInfo(model),
        predictions: hit.predictions.slice(0, k),
        image: hit.image,
        cached: true,
        timings_ms: timer.done(),
      };
    }
  }

  // Start loading the model (R2 fetch is I/O) while the CPU decodes the image.
  const loading = getSession(deps.models, model);
  // If decoding fails, this request answers 4xx while the load is still in flight. workerd
  // never resumes a finished request's pending work, so without waitUntil the load would be
  // stranded half-way with the model marked "loading": every request for that model would
  // then wait for the 120 s stale-load takeover (found by scripts/loadtest.ts). The catch
  // also silences the early-rejection warning; the error is observed by the await below.
  deps.waitUntil(loading.catch(() => undefined));

  const image = await (async () => {
    await ensureCodecs();
    const { info, image: decoded } = await decodeImageWithInfo(bytes, {
      maxPixels: LIMITS.maxPixels,
      maxPixelsFullDecode: LIMITS.maxPixelsFullDecode,
      maxCoefficientBytes: LIMITS.maxJpegCoefficientBytes,
      minShortSide: minDecodeShortSide(manifest.preprocess),
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
  const output = await session.session.run(spec.name, image.tensor, dims, manifest.output.name);
  timer.lap("infer");

  const probs = toProbabilities(output.data, output.dims, manifest.numClasses, manifest.output.kind);
  const ranked = topK(probs, model.labels, LIMITS.cachedPredictions);
  timer.lap("postprocess");

  const { info } = image;
  const swap = info.orientation >= 5; // EXIF 5..8 transpose the stored image
  const entry: CachedResult = {
    v: 1,
    predictions: ranked,
    image: {
      sha256: imageSha,
      width: swap ? info.height : info.width,
      height: swap ? info.width : info.height,
      format: info.format,
    },
    createdAt: new Date().toISOString(),
  };
  if (deps.cache) deps.waitUntil(writeCache(deps.cache, key, entry, deps.cacheTtlSeconds));

  return {
    model: modelInfo(model),
    predictions: ranked.slice(0, k),
    image: entry.image,
    cached: false,
    timings_ms: timer.done(),
  };
}

function modelInfo(model: RegisteredModel): ClassifyResult["model"] {
  const m = model.manifest;
  return { id: m.id, version: m.version, trained: m.trained, sha256: m.file.sha256 };
}

function stageTimer() {
  const start = performance.now();
  let last = start;
  const timings: StageTimings = {};
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    lap(stage: string) {
      const now = performance.now();
      timings[stage] = round(now - last);
      last = now;
    },
    set(stage: string, ms: number) {
      timings[stage] = round(ms);
    },
    done(): StageTimings {
      timings.total = round(performance.now() - start);
      return timings;
    },
  };
}
