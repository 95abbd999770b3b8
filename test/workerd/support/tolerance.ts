/**
 * How far the worker's probabilities may sit from the independent reference's
 * (onnxruntime-node with exact dequantisation, test/reference/service.ts).
 *
 * Models that compute in fp32 (weight-only int8 files): only float rounding
 * separates the two paths (measured worst 2.7e-6, wasm vs native kernels), so 2e-5.
 *
 * Models with int8 activations (QDQ, e.g. mobilenet-v2-nsfw): quantising an
 * activation is a step function, so a 1e-7 difference between the worker's
 * float32 preprocessing and the reference's float64 one can move a value
 * across a rounding boundary, and integer kernels round differently per
 * build (wasm vs native x86). Measured on the committed fixtures: up to 0.04.
 * The bound is the model's own int8 error band, the largest |Δp| between it
 * and its fp32 network over the held-out set, which models:quantize wrote
 * into the manifest (fidelity.quantization.max_abs_dprob, 0.055 for nsfw):
 * a pipeline bug (channel order, layout, normalisation) moves scores by
 * far more than that.
 */
import type { ModelManifest } from "../../../src/models/manifest";

const FLOAT_TOLERANCE = 2e-5;

export function int8Activations(manifest: ModelManifest): boolean {
  return quantization(manifest)?.format === "qdq";
}

export function probabilityTolerance(manifest: ModelManifest): number {
  if (!int8Activations(manifest)) return FLOAT_TOLERANCE;
  const band = quantization(manifest)?.max_abs_dprob;
  if (typeof band !== "number" || !(band > 0)) {
    throw new Error(`${manifest.id}: a QDQ model must record fidelity.quantization.max_abs_dprob`);
  }
  return band;
}

/**
 * Whether a top-1 that differs from the reference's is allowed: only for an
 * int8-activation model, and only where the reference's own two candidates
 * (its top-1 and the worker's) lie within twice the model's int8 band.
 * `referenceMargin` = p_ref[reference top-1] - p_ref[worker top-1].
 */
export function mayFlipTop1(manifest: ModelManifest, referenceMargin: number): boolean {
  return int8Activations(manifest) && referenceMargin <= 2 * probabilityTolerance(manifest);
}

function quantization(manifest: ModelManifest): { format?: unknown; max_abs_dprob?: unknown } | undefined {
  const q = manifest.fidelity?.quantization;
  return q && typeof q === "object" ? (q as { format?: unknown; max_abs_dprob?: unknown }) : undefined;
}

/**
 * The same for the L2-normalised features (POST /v1/embed). fp32 compute:
 * cosine > 0.99999 and 1e-5 per element (measured ≤ 3.1e-7). Int8
 * activations: measured on 15 fixtures, onnxruntime-web's int8 kernels vs the
 * exact-dequantisation reference, cosine ≥ 0.9991 and ≤ 1.2e-2 per element;
 * bounds 0.995 and 0.05, far tighter than a wrong layout or normalisation.
 */
export function embeddingTolerance(manifest: ModelManifest): { minCosine: number; maxDelta: number } {
  return int8Activations(manifest) ? { minCosine: 0.995, maxDelta: 0.05 } : { minCosine: 0.99999, maxDelta: 1e-5 };
}
