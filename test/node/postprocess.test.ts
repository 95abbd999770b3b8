import { describe, expect, it } from "vitest";
import { l2Normalize, softmax, toProbabilities, topK } from "../../src/pipeline/postprocess";

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

  it("l2Normalize gives a unit vector in the same direction, for any shape holding dim values", () => {
    const raw = new Float32Array([3, 0, 4, 0]);
    for (const dims of [[1, 4], [4], [1, 4, 1, 1]]) {
      expect(Array.from(l2Normalize(raw, dims, 4))).toEqual([0.6000000238418579, 0, 0.800000011920929, 0]);
    }
    const big = new Float32Array(1280).map((_, i) => Math.sin(i) * 50);
    const unit = l2Normalize(big, [1, 1280], 1280);
    expect(unit.reduce((a, v) => a + v * v, 0)).toBeCloseTo(1, 6);
    expect((unit[7] as number) / (unit[3] as number)).toBeCloseTo((big[7] as number) / (big[3] as number), 5);
    expect(Array.from(l2Normalize(new Float32Array(3), [3], 3))).toEqual([0, 0, 0]);
    expect(() => l2Normalize(raw, [1, 4], 5)).toThrow(/expected 5/);
  });
});
