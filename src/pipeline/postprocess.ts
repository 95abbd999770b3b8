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
