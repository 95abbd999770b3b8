/** One ranked class. */
export interface Prediction {
  label: string;
  index: number;
  score: number;
}

/**
 * Turns the raw output tensor into probabilities. Models disagree on shape
 * ([1,1000], [1000], or the ONNX zoo DenseNet's [1,1000,1,1]): any shape whose
 * element count equals the class count is one score per class.
 */
export function toProbabilities(
  output: Float32Array,
  dims: readonly number[],
  numClasses: number,
  kind: "logits" | "probabilities",
): Float32Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== numClasses || output.length !== numClasses) {
    throw new Error(
      `output has shape [${dims.join(",")}] (${output.length} values); expected ${numClasses} class scores`,
    );
  }
  return kind === "logits" ? softmax(output) : output;
}

/** Numerically stable softmax in float64, returned as float32. */
export function softmax(logits: Float32Array): Float32Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) if (v > max) max = v;
  const out = new Float32Array(logits.length);
  let sum = 0;
  const exps = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max);
    exps[i] = e;
    sum += e;
  }
  for (let i = 0; i < logits.length; i++) out[i] = (exps[i] as number) / sum;
  return out;
}

/** The k highest scores, best first; ties broken by the lower class index so results are deterministic. */
export function topK(probs: Float32Array, labels: readonly string[], k: number): Prediction[] {
  const idx = Array.from({ length: probs.length }, (_, i) => i);
  idx.sort((a, b) => (probs[b] as number) - (probs[a] as number) || a - b);
  return idx
    .slice(0, Math.min(k, probs.length))
    .map((i) => ({ label: labels[i] ?? String(i), index: i, score: probs[i] as number }));
}

/**
 * Turns the pooled feature output into an embedding of unit L2 norm, so the
 * dot product of two embeddings is their cosine similarity. Any shape with
 * `dim` elements is accepted ([1,dim] or a pooled [1,dim,1,1]). The norm is
 * accumulated in float64. An all-zero vector has no direction and is returned
 * as zeros rather than NaNs.
 */
export function l2Normalize(features: Float32Array, dims: readonly number[], dim: number): Float32Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== dim || features.length !== dim) {
    throw new Error(`feature output has shape [${dims.join(",")}] (${features.length} values); expected ${dim}`);
  }
  let sumSq = 0;
  for (const v of features) sumSq += v * v;
  const out = new Float32Array(dim);
  if (sumSq === 0) return out;
  const norm = Math.sqrt(sumSq);
  for (let i = 0; i < dim; i++) out[i] = (features[i] as number) / norm;
  return out;
}
