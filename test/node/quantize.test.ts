/**
 * scripts/models-quantize.ts (npm run models:quantize) and scripts/onnx/quant.ts.
 *
 * The fp32 exports are build outputs (gitignored), so the fp32 inputs here are
 * made from committed files: every weight DequantizeLinear of a committed model
 * folded back into a float32 initializer. For mobilenet-v2-nsfw that is the
 * trained nsfwjs network (its 8-bit codes are lossless w.r.t. nsfwjs; the
 * folded weights equal the fp32 export within float rounding, 2e-7 relative).
 *
 * Run: npx vitest run --project node test/node/quantize.test.ts
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../scripts/model-files";
import { servedDifference } from "../../scripts/models-preoptimize";
import {
  calibrate,
  channelMeans,
  correctBiases,
  loadSamples,
  parseCli,
  quantizeCommand,
  type Report,
  type Sample,
  UsageError,
} from "../../scripts/models-quantize";
import { preoptimize, runsIntegerKernels } from "../../scripts/onnx/model";
import {
  activationParams,
  addBiasOffsets,
  applyQdq,
  DataType,
  dequantizeModel,
  dimsOf,
  equalizableConvs,
  equalizeChannels,
  equalizingScales,
  foldFp32ComputeWeights,
  foldWeightDequantize,
  indexGraph,
  isDepthwise,
  loadModel,
  type ModelProto,
  onnx,
  opCounts,
  planQdq,
  quantizeWeightOnly,
  readNumbers,
  reductionSize,
  type Selection,
  saveModel,
} from "../../scripts/onnx/quant";
import { ModelManifest } from "../../src/models/manifest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PHOTOS = join(ROOT, "test/fixtures/photos");
const NSFW_DIR = join(ROOT, "models/mobilenet-v2-nsfw");
const NSFW_MANIFEST = join(NSFW_DIR, "manifest.json");
/** The weight-only nsfw model the served QDQ file is built from (README, Quantization). */
const NSFW_WEIGHT_ONLY = join(ROOT, "test/fixtures/models/mobilenet-v2-nsfw.weight-only.onnx");
/** The QDQ graph models:quantize makes from it; the served file is its pre-optimised form (manifest runtime.preoptimized). */
const NSFW_QDQ = join(ROOT, "test/fixtures/models/mobilenet-v2-nsfw.qdq.onnx");
/** The weight-only DenseNet-121 (scripts/build_models.py) its served QDQ file is built from. */
const DENSENET_WEIGHT_ONLY = join(ROOT, "test/fixtures/models/densenet-121.weight-only.onnx");
/** The QDQ graph models:quantize makes from it; the served file is its pre-optimised form (manifest runtime.preoptimized). */
const DENSENET_QDQ = join(ROOT, "test/fixtures/models/densenet-121.qdq.onnx");
/** What scripts/build_models.py writes (int8 weight-only); DenseNet's served file is quantised further from it. */
const builtWeightOnly = (id: string) =>
  id === "densenet-121" ? DENSENET_WEIGHT_ONLY : join(ROOT, `models/${id}/model.int8.onnx`);

/**
 * A served QDQ file against the weight-only model it was quantised from: each
 * 8-bit weight tensor (name ending in `suffix`) is in the served file byte for
 * byte, or, folded (--fold-fp32-weights), is the float32 tensor under its DQ's
 * output name with exactly the values that DQ computes. Returns how many of
 * each.
 */
function servedCodesOrFloats(servedPath: string, weightOnly: ModelProto, suffix: string): [number, number] {
  const served = indexGraph(loadModel(servedPath).graph ?? {}).initializers;
  const codes = indexGraph(weightOnly.graph ?? {}).initializers;
  const floats = indexGraph(foldWeightDequantize(weightOnly).graph ?? {}).initializers;
  let asCodes = 0;
  let asFloats = 0;
  for (const [name, t] of codes) {
    if (!name.endsWith(suffix)) continue;
    const kept = served.get(name);
    if (kept) {
      expect(Buffer.from(kept.rawData ?? []).equals(Buffer.from(t.rawData ?? [])), name).toBe(true);
      asCodes++;
      continue;
    }
    const float = name.replace(/_quantized$/, "");
    const got = served.get(float);
    expect(got?.dataType, float).toBe(DataType.FLOAT);
    expect(Buffer.from(got?.rawData ?? []).equals(Buffer.from(floats.get(float)?.rawData ?? [])), float).toBe(true);
    asFloats++;
  }
  return [asCodes, asFloats];
}
const SEL: Selection = {
  opTypes: ["Conv", "Gemm", "MatMul"],
  excludeOps: [],
  excludeNodes: [],
  excludeDepthwise: false,
};

/**
 * Bounds for the trained 5-class model on the 9 committed photos (probabilities,
 * fp32 vs quantised, worst class of the worst image). Measured with
 * onnxruntime 1.30: weight-only 0.056, QDQ uint8 0.093.
 *  - weight-only: each weight moves by at most half an int8 step (≤ 0.4 % of its
 *    channel's largest weight), on top of nsfwjs's own 8-bit grid; 0.1 leaves
 *    headroom while a wrong axis, a sign error or a per-tensor scale on the
 *    depthwise convs (measured 0.36-0.47) fails it.
 *  - QDQ uint8: activations add one 8-bit rounding per layer; 0.15.
 * Top-1 must be identical on every photo for both.
 */
const WEIGHT_ONLY_MAX_DP = 0.1;
const QDQ_MAX_DP = 0.15;

let dir: string;
let nsfwCodesPath: string;
let nsfwFp32: ModelProto;
let fp32Path: string;
let featuresFp32Path: string;
let featuresManifestPath: string;

/** Counts op types after onnxruntime-node's own graph optimisation (what actually runs). */
async function optimizedOps(bytes: Uint8Array): Promise<Record<string, number>> {
  const out = join(dir, `opt-${Math.random().toString(36).slice(2)}.onnx`);
  const s = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: "extended",
    intraOpNumThreads: 1,
    optimizedModelFilePath: out,
  });
  await s.release();
  return opCounts(loadModel(out));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "edgetag-quantize-"));
  // The served file is int8 QDQ, with fp32 weights where it computes in fp32; these tests quantise
  // from the weight-only model it was built from: every weight nsfwjs's own 8-bit codes.
  const codes = loadModel(NSFW_WEIGHT_ONLY);
  nsfwCodesPath = join(dir, "nsfw.codes.onnx");
  writeFileSync(nsfwCodesPath, saveModel(codes));
  nsfwFp32 = foldWeightDequantize(codes);
  fp32Path = join(dir, "nsfw.fp32.onnx");
  writeFileSync(fp32Path, saveModel(nsfwFp32));
  // The committed model already exports its pooled 1280-d vector as "features" (an Identity of
  // flatten_1), and its manifest names it.
  const manifest = JSON.parse(readFileSync(NSFW_MANIFEST, "utf8"));
  expect(manifest.output.features).toEqual({ name: "features", dim: 1280 });
  featuresFp32Path = fp32Path;
  featuresManifestPath = NSFW_MANIFEST;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("weight-only format = scripts/quantize_weights.py's convention", () => {
  it("re-quantising the folded committed untrained models reproduces them tensor for tensor", () => {
    // Their weights were built on the int8 grid, so the round trip must be exact:
    // same int8 codes, scales, zero points, names, node order and attributes.
    const asObject = (m: ModelProto) =>
      JSON.stringify(onnx.ModelProto.toObject(m, { longs: String, bytes: String }), (k, v) =>
        k === "docString" && v === "" ? undefined : v,
      );
    for (const id of ["mobilenet-v2", "densenet-121"]) {
      const committed = loadModel(builtWeightOnly(id));
      const fp32 = foldWeightDequantize(committed);
      expect(opCounts(fp32).DequantizeLinear ?? 0).toBe(0);
      const { model, weights } = quantizeWeightOnly(fp32, SEL);
      expect(weights.length).toBe(opCounts(committed).DequantizeLinear);
      expect(asObject(model)).toBe(asObject(committed));
    }
  });

  it("the tool's weight-only output agrees with fp32 on real photos (nsfw, both runtimes)", async () => {
    const out = join(dir, "nsfw.wo.onnx");
    const logs: string[] = [];
    const r = await quantizeCommand(
      [
        fp32Path,
        "--manifest",
        NSFW_MANIFEST,
        "--calib",
        PHOTOS,
        "--format",
        "weight-only",
        "--out",
        out,
        "--bench-runs",
        "0",
      ],
      (s) => logs.push(s),
    );
    const ops = opCounts(loadModel(out));
    expect(ops.DequantizeLinear).toBe(55); // 52 Conv + 3 Gemm weights
    expect(ops.QuantizeLinear ?? 0).toBe(0);
    expect(r.output.bytes).toBeLessThan(r.input.bytes * 0.3);
    for (const a of [r.onnxruntime_node, r.onnxruntime_web]) {
      expect(a.images).toBe(9);
      expect(a.top1_agreement).toBe(1);
      expect(a.max_abs_dprob).toBeLessThan(WEIGHT_ONLY_MAX_DP);
    }
    expect(JSON.parse(readFileSync(out.replace(/\.onnx$/, ".report.json"), "utf8")).fidelity.quantization.format).toBe(
      "weight-only",
    );
    expect(logs.join("\n")).toContain("| onnxruntime-web (wasm, 1 thread) | 9 | 100.0% |");
  });
});

describe("QDQ format", () => {
  let report: Report;
  let qdqBytes: Uint8Array;

  beforeAll(async () => {
    const out = join(dir, "nsfw-features.qdq.onnx");
    report = await quantizeCommand(
      [
        featuresFp32Path,
        "--manifest",
        featuresManifestPath,
        "--calib",
        PHOTOS,
        "--out",
        out,
        "--bench-runs",
        "0",
        "--min-reduction",
        "0",
      ],
      () => undefined,
    );
    qdqBytes = new Uint8Array(readFileSync(out));
  });

  it("agrees with fp32 in onnxruntime-node and onnxruntime-web", () => {
    for (const a of [report.onnxruntime_node, report.onnxruntime_web]) {
      expect(a.top1_agreement).toBe(1);
      expect(a.top5_k).toBe(5);
      expect(a.max_abs_dprob).toBeLessThan(QDQ_MAX_DP);
      expect(a.mean_abs_dprob).toBeLessThan(a.max_abs_dprob);
    }
    const f = report.fidelity.quantization as Record<string, unknown>;
    expect(f).toMatchObject({ tool: "models:quantize", format: "qdq", calibration: { images: 9, method: "minmax" } });
    expect(f.top1_agreement).toBe(report.onnxruntime_web.top1_agreement);
  });

  it("ORT fuses every quantised node into an int8 kernel", async () => {
    expect(report.graph.quantize_linear).toBeGreaterThan(0);
    const ops = await optimizedOps(qdqBytes);
    expect(ops.QLinearConv).toBe(52);
    expect(ops.QGemm).toBe(3);
    expect(ops.Conv ?? 0).toBe(0);
  });

  it("keeps the manifest's features output, close to fp32", async () => {
    const outputs = loadModel(qdqBytes).graph?.output?.map((o) => o.name);
    expect(outputs).toEqual(["probabilities", "features"]);
    // Still produced by the fp32 Flatten, not replaced by a dequantised copy.
    expect(loadModel(qdqBytes).graph?.node?.find((n) => n.output?.includes("flatten_1"))?.opType).toBe("Flatten");
    for (const a of [report.onnxruntime_node, report.onnxruntime_web]) {
      // Measured 0.984 (worst photo): the pooled vector carries the int8 error of every layer below it.
      expect(a.features?.min_cosine).toBeGreaterThan(0.97);
    }
  });
});

describe("a model whose weights are already 8-bit (the committed nsfwjs codes)", () => {
  it("QDQ keeps every code, adds activations, and is closer to fp32 than re-quantised weights", async () => {
    const committed = nsfwCodesPath;
    const out = join(dir, "nsfw-keep.qdq.onnx");
    const r = await quantizeCommand(
      [
        committed,
        "--manifest",
        NSFW_MANIFEST,
        "--calib",
        PHOTOS,
        "--out",
        out,
        "--bench-runs",
        "0",
        "--min-reduction",
        "0",
      ],
      () => undefined,
    );
    expect(r.graph.kept_8bit_weights).toBe(55);
    const before = indexGraph(loadModel(committed).graph ?? {}).initializers;
    const after = indexGraph(loadModel(out).graph ?? {}).initializers;
    for (const [name, t] of before) {
      if (!name.endsWith("/W_quantized")) continue;
      expect(Buffer.from(after.get(name)?.rawData ?? []).equals(Buffer.from(t.rawData ?? [])), name).toBe(true);
    }
    // The reference here is the committed model itself (= nsfwjs within 1e-6). Measured 0.035;
    // the same network with re-quantised int8 weights measured 0.093.
    for (const a of [r.onnxruntime_node, r.onnxruntime_web]) {
      expect(a.top1_agreement).toBe(1);
      expect(a.max_abs_dprob).toBeLessThan(0.06);
    }
    // 51 of 52 convs run int8: one depthwise conv has a channel whose folded
    // BatchNorm scale is negative, which ORT's QLinearConv refuses; it stays fp32.
    const ops = await optimizedOps(new Uint8Array(readFileSync(out)));
    expect(ops.QLinearConv).toBe(51);
    expect(ops.Conv).toBe(1);
  });

  it("the served file is built from this weight-only model: its codes, or their float32 values", () => {
    const counts = servedCodesOrFloats(NSFW_QDQ, loadModel(NSFW_WEIGHT_ONLY), "/W_quantized");
    expect(counts).toEqual([27, 28]);
  });

  it("dequantizeModel (the benchmark's fp32 baseline) recovers the fp32 network from the QDQ file", async () => {
    // The file the test above wrote: QDQ around the committed codes, so its fp32 network is nsfwFp32.
    const qdq = new Uint8Array(readFileSync(join(dir, "nsfw-keep.qdq.onnx")));
    const { model, activationPairs } = dequantizeModel(loadModel(qdq));
    // Every activation QuantizeLinear feeds at least one DequantizeLinear.
    expect(activationPairs).toBeGreaterThanOrEqual(
      loadModel(qdq).graph?.node?.filter((n) => n.opType === "QuantizeLinear").length ?? 1,
    );
    const ops = opCounts(model);
    expect(ops.QuantizeLinear ?? 0).toBe(0);
    expect(ops.DequantizeLinear ?? 0).toBe(0);
    const run = async (bytes: Uint8Array) => {
      const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: "disabled" });
      const x = Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => Math.sin(i * 0.37));
      const out = await s.run({ [s.inputNames[0] as string]: new ort.Tensor("float32", x, [1, 224, 224, 3]) });
      await s.release();
      return out.probabilities?.data as Float32Array;
    };
    const want = await run(saveModel(nsfwFp32));
    const got = await run(saveModel(model));
    // Same weights; only the biases went through the int32 grid (scale = input scale × weight
    // scale). Measured 6.6e-4 on this synthetic input.
    const worst = Math.max(...Array.from(got, (v, i) => Math.abs(v - (want[i] as number))));
    expect(worst).toBeLessThan(2e-3);
    // And it is not the quantised model: that one differs by the activation rounding.
    const q = await run(qdq);
    expect(Math.max(...Array.from(q, (v, i) => Math.abs(v - (want[i] as number))))).toBeGreaterThan(worst);
  });

  it("weight-only has nothing to do and says so", async () => {
    const committed = nsfwCodesPath;
    await expect(
      quantizeCommand(
        [
          committed,
          "--manifest",
          NSFW_MANIFEST,
          "--calib",
          PHOTOS,
          "--format",
          "weight-only",
          "--out",
          join(dir, "x.onnx"),
        ],
        () => undefined,
      ),
    ).rejects.toThrow(/already 8-bit/);
  });
});

describe("exclusions are honoured by what onnxruntime actually runs", () => {
  let samples: Sample[];
  beforeAll(async () => {
    const manifest = ModelManifest.parse(JSON.parse(readFileSync(NSFW_MANIFEST, "utf8")));
    samples = (await loadSamples(PHOTOS, manifest)).samples.slice(0, 3);
  });
  // Real ranges matter: ORT only drops a Relu/Clip made redundant by a uint8 Q whose range starts at 0.
  const build = async (sel: Selection) => {
    const manifest = ModelManifest.parse(JSON.parse(readFileSync(NSFW_MANIFEST, "utf8")));
    const plan = planQdq(nsfwFp32, sel, "u8");
    const opts = { activations: "u8", calibMethod: "minmax", percentile: 100 } as const;
    const ranges = await calibrate(nsfwFp32, plan.tensors, samples, manifest, opts);
    return { plan, result: applyQdq(nsfwFp32, plan, ranges, "u8", { perChannel: true }) };
  };
  const convs = () => (nsfwFp32.graph?.node ?? []).filter((n) => n.opType === "Conv");

  it("--exclude-depthwise leaves all 17 depthwise convs fp32 (ORT would otherwise re-quantise them)", async () => {
    const ix = indexGraph(nsfwFp32.graph ?? {});
    const depthwise = convs().filter((n) => isDepthwise(n, ix));
    expect(depthwise.length).toBe(17);
    const { plan, result } = await build({ ...SEL, excludeDepthwise: true });
    expect(plan.skipped.map((s) => s.node).sort()).toEqual(depthwise.map((n) => n.name).sort());
    // Sandwiched between quantised neighbours, each one needs its per-channel DQ guard.
    expect(result.keptFloat.length).toBe(17);
    const ops = await optimizedOps(saveModel(result.model));
    expect(ops.QLinearConv).toBe(52 - 17);
    expect(ops.Conv).toBe(17);
  });

  it("--exclude-node and --exclude-op", async () => {
    const { plan, result } = await build({
      ...SEL,
      excludeNodes: ["block_16_project", "Conv_1"],
      excludeOps: ["Gemm"],
    });
    expect(plan.skipped.map((s) => `${s.node}:${s.reason}`)).toEqual([
      "block_16_project:--exclude-node",
      "Conv_1:--exclude-node",
      "dense_1:--exclude-op",
      "dense_2:--exclude-op",
      "dense_3:--exclude-op",
    ]);
    // Explicit exclusions keep fp32 weights too.
    const inits = new Set(result.model.graph?.initializer?.map((t) => t.name));
    expect(inits.has("Conv_1/W")).toBe(true);
    expect(inits.has("dense_1/W")).toBe(true);
    const ops = await optimizedOps(saveModel(result.model));
    expect(ops.QLinearConv).toBe(50);
    expect(ops.QGemm ?? 0).toBe(0);
  });

  it("--min-reduction keeps short dot products fp32, with int8 weights", async () => {
    const ix = indexGraph(nsfwFp32.graph ?? {});
    const long = convs().filter((n) => reductionSize(n, dimsOf(ix.initializers.get(n.input?.[1] ?? "") ?? {})) >= 128);
    const { result } = await build({ ...SEL, minReduction: 128 });
    expect(
      result.model.graph?.initializer?.filter((t) => t.dataType === DataType.FLOAT && dimsOf(t).length === 4),
    ).toEqual([]);
    const ops = await optimizedOps(saveModel(result.model));
    expect(ops.QLinearConv).toBe(long.length);
  });

  it("--fold-fp32-weights: fp32-compute nodes get fp32 weights, the int8 nodes keep theirs, outputs unchanged", async () => {
    // The served nsfw recipe's shape: depthwise fp32 between int8 neighbours (each behind its private
    // per-channel DQ guard, so its input *is* dequantised), the short-reduction convs fp32 as well.
    const { plan, result } = await build({ ...SEL, minReduction: 128, excludeDepthwise: true });
    const int8 = new Set(plan.nodes.map((n) => n.name));
    const { model, folded } = foldFp32ComputeWeights(result.model, int8);
    const ix = indexGraph(model.graph ?? {});
    const weighted = (model.graph?.node ?? []).filter((n) => ["Conv", "Gemm"].includes(n.opType ?? ""));
    const fromDq = (name: string | undefined) => ix.producer.get(name ?? "")?.opType === "DequantizeLinear";
    const fp32Compute = weighted.filter((n) => !int8.has(n.name ?? ""));
    expect(fp32Compute.length).toBeGreaterThan(10);
    expect(folded).toBe(fp32Compute.length);
    // fp32 nodes that read a dequantised input (an int8 neighbour's output, or the private per-channel
    // DQ guard of applyQdq's keptFloat) get fp32 weights too; the input-based guess that
    // foldFp32ComputeWeights falls back on without the list leaves exactly these behind DQ.
    const dqInput = fp32Compute.filter((n) => fromDq(n.input?.[0])).map((n) => n.name ?? "");
    expect(dqInput).toEqual(expect.arrayContaining(result.keptFloat));
    expect(result.keptFloat.length).toBeGreaterThan(0);
    expect(dqInput.length).toBeGreaterThan(result.keptFloat.length);
    expect(foldFp32ComputeWeights(result.model).folded).toBe(folded - dqInput.length);
    // A weight is dequantised at run time exactly where the node computes in int8.
    for (const n of weighted) expect(fromDq(n.input?.[1]), n.name ?? "").toBe(int8.has(n.name ?? ""));
    const before = await optimizedOps(saveModel(result.model));
    const after = await optimizedOps(saveModel(model));
    expect(after.QLinearConv).toBe(before.QLinearConv);
    expect(after.DequantizeLinear).toBe((before.DequantizeLinear ?? 0) - folded);
    // Same float32 weight values as the DQ computed. Level "basic" keeps onnxruntime-node from
    // choosing other x86 conv kernels for constant fp32 weights (NCHWc), whose different rounding
    // the int8 steps downstream would magnify; what is left is the same arithmetic.
    const input = new ort.Tensor(
      "float32",
      Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => Math.sin(i * 0.01)),
      [1, 224, 224, 3],
    );
    const run = async (m: ModelProto) => {
      const s = await ort.InferenceSession.create(saveModel(m), {
        intraOpNumThreads: 1,
        graphOptimizationLevel: "basic",
      });
      const out = await s.run({ [s.inputNames[0] as string]: input });
      await s.release();
      return out[s.outputNames[0] as string]?.data as Float32Array;
    };
    const [a, b] = [await run(result.model), await run(model)];
    expect(a.length).toBe(5);
    for (let i = 0; i < a.length; i++) expect(Math.abs((a[i] as number) - (b[i] as number))).toBeLessThan(1e-6);
  });

  it("a tensor read by many fp32 nodes is dequantised once per run (DenseNet's concats)", async () => {
    const densenet = foldWeightDequantize(loadModel(DENSENET_WEIGHT_ONLY));
    const plan = planQdq(densenet, SEL, "u8");
    // Structure only: which DQs ORT duplicates does not depend on the ranges.
    const ranges = new Map(plan.tensors.map((t) => [t, { min: 0, max: 4 }]));
    const result = applyQdq(densenet, plan, ranges, "u8", { perChannel: true });
    expect(result.fanOuts).toBe(54);
    const ops = await optimizedOps(saveModel(result.model));
    expect(ops.QLinearConv).toBe(120);
    // Without the fan-out copies ORT's EnsureUniqueDQForNodeUnit leaves 545 DequantizeLinear kernels.
    expect(ops.DequantizeLinear).toBeLessThan(100);
  });

  it("Q/DQ counts follow the plan", async () => {
    const { plan, result } = await build(SEL);
    const ops = opCounts(result.model);
    expect(ops.QuantizeLinear).toBe(plan.tensors.length);
    // One DQ per activation, per weight, per int32 bias.
    expect(ops.DequantizeLinear).toBe(plan.tensors.length + result.weights.length + result.biases.length);
    expect(result.weights.length).toBe(55);
    expect(result.biases.length).toBe(55);
    expect(result.floatBiases).toEqual([]);
  });
});

describe("--bias-correct", () => {
  it("moves each int8 layer's int32 bias so its per-channel mean output matches fp32 on the calibration images", async () => {
    const manifest = ModelManifest.parse(JSON.parse(readFileSync(NSFW_MANIFEST, "utf8")));
    const samples = (await loadSamples(PHOTOS, manifest)).samples;
    const plan = planQdq(nsfwFp32, SEL, "u8");
    // Percentile clipping shifts means more than minmax does: the case the correction is for.
    const opts = { activations: "u8", calibMethod: "percentile", percentile: 99.9 } as const;
    const ranges = await calibrate(nsfwFp32, plan.tensors, samples, manifest, opts);
    const bc = await correctBiases(nsfwFp32, plan, ranges, samples, manifest, {
      activations: "u8",
      perChannel: true,
      block: 1,
    });
    expect(bc.offsets.size).toBe(55);
    const plain = applyQdq(nsfwFp32, plan, ranges, "u8", { perChannel: true }).model;
    const corrected = applyQdq(addBiasOffsets(nsfwFp32, bc.offsets), plan, ranges, "u8", { perChannel: true }).model;
    // Same scales, so the int32 codes compare directly: nearly every layer's bias moved.
    const codes = (m: ModelProto) =>
      new Map(
        (m.graph?.initializer ?? [])
          .filter((t) => t.dataType === DataType.INT32 && t.name?.endsWith("_quantized"))
          .map((t) => [t.name ?? "", readNumbers(t).join(",")]),
      );
    const [a, b] = [codes(plain), codes(corrected)];
    expect(a.size).toBe(55);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a].filter(([k, v]) => b.get(k) !== v).length).toBeGreaterThan(50);
    // Measured independently of correctBiases: |quantised - fp32| per-channel mean of every
    // int8 layer's output, summed over layers.
    const byName = new Map((nsfwFp32.graph?.node ?? []).map((n) => [n.name ?? "", n]));
    const outs = [...bc.offsets.keys()].map((n) => byName.get(n)?.output?.[0] as string);
    const ref = await channelMeans(nsfwFp32, outs, samples, manifest);
    const shift = async (m: ModelProto) => {
      const q = await channelMeans(m, outs, samples, manifest);
      let total = 0;
      for (const o of outs) {
        const r = ref.get(o) as Float64Array;
        total += (q.get(o) as Float64Array).reduce((acc, v, c) => acc + Math.abs(v - (r[c] as number)), 0) / r.length;
      }
      return total;
    };
    const [before, after] = [await shift(plain), await shift(corrected)];
    expect(after).toBeLessThan(before * 0.5);
    const reported = [...bc.error.values()];
    expect(reported.reduce((acc, e) => acc + e.after, 0)).toBeCloseTo(after, 5);
  });

  it("gives a bias-less conv (DenseNet's concatenated conv2) a bias holding the offsets", () => {
    const densenet = foldWeightDequantize(loadModel(DENSENET_WEIGHT_ONLY));
    const name = "/features/denseblock1/denselayer1/conv2/Conv";
    const node = (m: ModelProto) => m.graph?.node?.find((n) => n.name === name);
    expect(node(densenet)?.input?.length).toBe(2);
    const delta = Float32Array.from({ length: 32 }, (_, i) => i / 10);
    const m = addBiasOffsets(densenet, new Map([[name, delta]]));
    const bias = m.graph?.initializer?.find((t) => t.name === node(m)?.input?.[2]);
    expect(Array.from(readNumbers(bias ?? {}))).toEqual(Array.from(delta));
    expect(node(densenet)?.input?.length).toBe(2); // the input model is untouched
  });

  it("is a qdq option, and its block size needs it", () => {
    const base = [fp32Path, "--manifest", NSFW_MANIFEST, "--calib", PHOTOS];
    expect(parseCli(base).biasCorrectBlock).toBe(0);
    expect(parseCli([...base, "--bias-correct"]).biasCorrectBlock).toBe(1);
    expect(parseCli([...base, "--bias-correct", "--bias-correct-block", "3"]).biasCorrectBlock).toBe(3);
    expect(() => parseCli([...base, "--bias-correct-block", "3"])).toThrow(UsageError);
    expect(() => parseCli([...base, "--bias-correct", "--format", "weight-only"])).toThrow(UsageError);
  });
});

describe("--equalize", () => {
  it("rescales DenseNet's batch-normalised conv outputs per channel without changing the network", async () => {
    const committed = loadModel(DENSENET_WEIGHT_ONLY);
    const eq = equalizableConvs(committed);
    // conv0, 58 dense-layer conv2 and 3 transition convs; never a conv1 (it feeds a conv).
    expect(eq.length).toBe(62);
    expect(eq.some((e) => e.node.includes("conv1"))).toBe(false);
    expect(eq[0]).toEqual({ node: "/features/conv0/Conv", tensor: "/features/relu0/Relu_output_0" });
    // A MobileNet's convs all feed convs or adds: nothing to do.
    expect(equalizableConvs(nsfwFp32)).toEqual([]);
    const scales = new Map(
      eq.map((e, k) => [e.node, Float32Array.from({ length: 1024 }, (_, c) => 1 + ((c * 7 + k) % 5) / 2)]),
    );
    for (const [name, s] of scales) {
      const n = committed.graph?.node?.find((x) => x.name === name);
      const w = indexGraph(committed.graph ?? {}).producer.get(n?.input?.[1] ?? "");
      const channels = dimsOf(committed.graph?.initializer?.find((t) => t.name === w?.input?.[0]) ?? {})[0] as number;
      scales.set(name, s.slice(0, channels));
    }
    const m = equalizeChannels(committed, scales);
    // The 8-bit codes are untouched: only per-channel scales, biases and batch-norm parameters move.
    const int8 = (x: ModelProto) =>
      (x.graph?.initializer ?? [])
        .filter((t) => t.dataType === DataType.INT8)
        .map((t) => `${t.name}:${readNumbers(t).join(",")}`)
        .sort();
    expect(int8(m)).toEqual(int8(committed));
    const x = new ort.Tensor(
      "float32",
      Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.01)),
      [1, 3, 224, 224],
    );
    const run = async (model: ModelProto) => {
      const s = await ort.InferenceSession.create(saveModel(model), { intraOpNumThreads: 1 });
      const out = await s.run({ input: x });
      await s.release();
      return out.logits?.data as Float32Array;
    };
    const [a, b] = [await run(committed), await run(m)];
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
    expect(worst).toBeLessThan(1e-3);
    expect(Math.max(...Array.from(a, Math.abs))).toBeGreaterThan(1);
  });

  it("scales each channel up to the tensor's range, never beyond", () => {
    const s = equalizingScales(Float64Array.of(-1, 0, -0.5, 0, 0), Float64Array.of(2, 1, 0.5, 0, 1e-3));
    expect(Array.from(s)).toEqual([1, 2, 2, 1, 16]);
  });
});

describe("quantisation parameters", () => {
  it("follow onnxruntime's compute_scale_zp", () => {
    expect(activationParams({ min: -1, max: 3 }, "u8")).toEqual({ scale: Math.fround(4 / 255), zeroPoint: 64 });
    expect(activationParams({ min: 0.5, max: 6 }, "u8")).toEqual({ scale: Math.fround(6 / 255), zeroPoint: 0 });
    expect(activationParams({ min: -1, max: 3 }, "s8")).toEqual({ scale: Math.fround(3 / 127), zeroPoint: 0 });
    expect(activationParams({ min: 0, max: 0 }, "u8")).toEqual({ scale: 1, zeroPoint: 0 });
  });
});

describe("bad arguments", () => {
  const args = (...extra: string[]) => [fp32Path, "--manifest", NSFW_MANIFEST, "--calib", PHOTOS, ...extra];
  const cases: [string, () => string[], RegExp][] = [
    ["no model", () => ["--manifest", NSFW_MANIFEST, "--calib", PHOTOS], /missing the fp32 model path/],
    [
      "missing file",
      () => [join(dir, "nope.onnx"), "--manifest", NSFW_MANIFEST, "--calib", PHOTOS],
      /model file not found/,
    ],
    ["no manifest", () => [fp32Path, "--calib", PHOTOS], /--manifest .* is required/],
    ["no calib", () => [fp32Path, "--manifest", NSFW_MANIFEST], /--calib <image folder> is required/],
    ["calib not a folder", () => args("--calib", fp32Path), /--calib: not a folder/],
    ["unknown flag", () => args("--fast"), /Unknown option '--fast'/],
    ["bad format", () => args("--format", "qoperator"), /--format must be qdq or weight-only/],
    ["bad activations", () => args("--activations", "u16"), /--activations must be u8 or s8/],
    ["both granularities", () => args("--per-channel", "--per-tensor"), /exclusive/],
    [
      "qdq flag on weight-only",
      () => args("--format", "weight-only", "--activations", "s8"),
      /applies to --format qdq/,
    ],
    ["percentile without method", () => args("--percentile", "99.9"), /needs --calib-method percentile/],
    ["unsupported op type", () => args("--op-types", "Conv,Softmax"), /Softmax is not supported/],
    ["overwrite input", () => args("--out", fp32Path), /would overwrite the input/],
  ];
  it("defaults: qdq, uint8 activations, per-channel, int8 only where the dot product is ≥ 128 long", () => {
    const o = parseCli(args());
    expect(o).toMatchObject({ format: "qdq", activations: "u8", perChannel: true, calibMethod: "minmax" });
    expect(o.selection.minReduction).toBe(128);
    expect(parseCli(args("--format", "weight-only")).selection.minReduction).toBe(0);
    expect(parseCli(args("--min-reduction", "0")).selection.minReduction).toBe(0);
  });

  for (const [name, argv, message] of cases) {
    it(name, () => {
      expect(() => parseCli(argv())).toThrow(UsageError);
      expect(() => parseCli(argv())).toThrow(message);
    });
  }

  it("exclusions that name nothing, a manifest that does not fit, a folder without images", async () => {
    await expect(quantizeCommand(args("--exclude-op", "LSTM"), () => undefined)).rejects.toThrow(
      "--exclude-op LSTM: the model has no LSTM node",
    );
    await expect(quantizeCommand(args("--exclude-node", "nope"), () => undefined)).rejects.toThrow(
      "--exclude-node nope: no node of that name",
    );
    const other = join(ROOT, "models/mobilenet-v2/manifest.json");
    await expect(quantizeCommand([fp32Path, "--manifest", other, "--calib", PHOTOS], () => undefined)).rejects.toThrow(
      "the model has no output logits",
    );
    await expect(
      quantizeCommand(args("--calib", join(ROOT, "test/fixtures/preprocess")), () => undefined),
    ).rejects.toThrow(/no usable image/);
  });

  it("the CLI exits 2 with the message and the usage", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/models-quantize.ts"), fp32Path], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("models:quantize: --manifest <models/<id>/manifest.json> is required");
    expect(r.stderr).toContain("usage: npm run models:quantize");
  });
});

describe("served session config (manifest runtime.sessionConfig)", () => {
  it("mobilenet-v2's makes onnxruntime-web compute exactly its fp32 graph; without it the weights are re-dequantised every run", async () => {
    const dirOf = join(ROOT, "models/mobilenet-v2");
    const manifest = ModelManifest.parse(JSON.parse(readFileSync(join(dirOf, "manifest.json"), "utf8")));
    const config = manifest.runtime?.sessionConfig;
    expect(config).toEqual({ "session.disable_quant_qdq": "1" });
    const int8 = new Uint8Array(readFileSync(join(dirOf, "model.int8.onnx")));
    const fp32 = saveModel(dequantizeModel(loadModel(int8)).model);
    const ortWeb = await import("onnxruntime-web");
    ortWeb.env.wasm.numThreads = 1;
    const x = new ortWeb.Tensor(
      "float32",
      Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.01)),
      [1, 3, 224, 224],
    );
    const run = async (bytes: Uint8Array, extra?: Record<string, string>) => {
      const s = await ortWeb.InferenceSession.create(bytes, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
        ...(extra ? { extra } : {}),
      });
      const out = (await s.run({ [manifest.input.name]: x }))[manifest.output.name]?.data as Float32Array;
      await s.release();
      return Array.from(out);
    };
    const want = await run(fp32);
    expect(await run(int8, config)).toEqual(want); // bit for bit
    expect(await run(int8)).not.toEqual(want); // ORT's per-run dequantisation and fusions round differently
  });
});

describe("the served DenseNet-121 is built from the weight-only file scripts/build_models.py writes", () => {
  it("its QDQ source holds exactly those int8 codes (or, folded, their float32 values)", () => {
    // --equalize rescales channels through their scales only: the codes stay as built.
    const counts = servedCodesOrFloats(DENSENET_QDQ, loadModel(DENSENET_WEIGHT_ONLY), "_quantized");
    // 118 int8 convolutions, and the codes of the three fp32-compute nodes (denseblock1's two short 1x1
    // convolutions and the classifier: not folded, which would add 3 MB to the file and the JS heap).
    expect(counts).toEqual([121, 0]);
  });
});

describe("the served QDQ models are onnxruntime-node's optimised graphs of their QDQ sources (manifest runtime.preoptimized)", () => {
  for (const [id, source, qlinear] of [
    ["densenet-121", DENSENET_QDQ, 118],
    ["mobilenet-v2-nsfw", NSFW_QDQ, 27],
  ] as const) {
    it(`${id}: reproduced byte for byte, fused already, and bit for bit what its source computes`, async () => {
      const manifest = ModelManifest.parse(JSON.parse(readFileSync(join(ROOT, `models/${id}/manifest.json`), "utf8")));
      const sourceBytes = new Uint8Array(readFileSync(source));
      const served = new Uint8Array(readFileSync(join(ROOT, `models/${id}/model.int8.onnx`)));
      expect(manifest.runtime?.graphOptimizationLevel).toBe("disabled");
      expect(join(ROOT, manifest.runtime?.preoptimized?.from ?? "?")).toBe(source);
      expect(manifest.runtime?.preoptimized?.sha256).toBe(sha256Hex(sourceBytes));
      // The optimiser is deterministic, so the recipe reproduces the served file.
      const optimised = await preoptimize(sourceBytes, join(dir, id));
      expect(sha256Hex(optimised)).toBe(manifest.file.sha256);
      expect(sha256Hex(served)).toBe(manifest.file.sha256);
      // The fusions are done: no Q/DQ group is left around a convolution for the worker's session to fuse.
      expect(opCounts(loadModel(served)).QLinearConv).toBe(qlinear);
      expect(opCounts(loadModel(sourceBytes)).QLinearConv ?? 0).toBe(0);
      // What the worker runs (level disabled) is bit for bit what the source gives at level all.
      const { samples } = await loadSamples(PHOTOS, manifest);
      const { maxAbs, values } = await servedDifference(sourceBytes, served, manifest, samples.slice(0, 3));
      expect(values).toBe(3 * (manifest.numClasses + (manifest.output.features?.dim ?? 0)));
      expect(maxAbs).toBe(0);
    });
  }
});

describe("manifest runtime.warmup says which served models run onnxruntime's integer kernels", () => {
  // A served file with QLinearConv (pre-optimised) or activation QuantizeLinear (QDQ, fused at load)
  // runs integer kernels, which the init self-test does not heat; warmUpInt8() does (src/inference/ort.ts).
  // models:install sets the field by the same rule (runsIntegerKernels).
  for (const id of ["mobilenet-v2", "densenet-121", "mobilenet-v2-nsfw"]) {
    it(id, () => {
      const manifest = ModelManifest.parse(JSON.parse(readFileSync(join(ROOT, `models/${id}/manifest.json`), "utf8")));
      const integer = runsIntegerKernels(loadModel(join(ROOT, `models/${id}/model.int8.onnx`)));
      expect(integer).toBe(id !== "mobilenet-v2");
      expect(manifest.runtime?.warmup).toBe(integer ? "int8" : undefined);
    });
  }
});
