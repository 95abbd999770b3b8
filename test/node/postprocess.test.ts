import { describe, expect, it } from "vitest";
import { softmax, toProbabilities, topK } from "../../src/pipeline/postprocess";

describe("postprocess", () => {
  it("softmax matches the textbook formula and sums to 1, even for huge logits", () => {
    const logits = new Float32Array([1, 2, 3, 1000, 1000.5]);
    const p = softmax(logits);
    const exps = Array.from(logits, (v) => Math.exp(v - 1000.5));
    const sum = exps.reduce((a, b) => a + b, 0);
    exps.forEach((e, i) => {
      expect(p[i]).toBeCloseTo(e / sum, 6);
    });
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(Number.isFinite(p[3])).toBe(true);
  });

  it("accepts any output shape holding one score per class, e.g. the ONNX zoo's [1,1000,1,1]", () => {
    const raw = new Float32Array(1000).map((_, i) => (i === 417 ? 5 : 0));
    for (const dims of [[1, 1000], [1000], [1, 1000, 1, 1]]) {
      const p = toProbabilities(raw, dims, 1000, "logits");
      expect(topK(p, [], 1)[0]?.index).toBe(417);
    }
    expect(() => toProbabilities(raw, [1, 999], 1000, "logits")).toThrow(/expected 1000/);
    expect(() => toProbabilities(new Float32Array(5), [1, 5], 1000, "logits")).toThrow();
  });

  it("passes probabilities through untouched", () => {
    const probs = new Float32Array([0.1, 0.7, 0.2]);
    expect(toProbabilities(probs, [1, 3], 3, "probabilities")).toBe(probs);
  });

  it("topK sorts by score, breaks ties by class index, labels each entry and caps k", () => {
    const probs = new Float32Array([0.2, 0.3, 0.2, 0.3]);
    const labels = ["a", "b", "c", "d"];
    expect(topK(probs, labels, 3)).toEqual([
      { label: "b", index: 1, score: probs[1] },
      { label: "d", index: 3, score: probs[3] },
      { label: "a", index: 0, score: probs[0] },
    ]);
    expect(topK(probs, labels, 10)).toHaveLength(4);
  });
});
