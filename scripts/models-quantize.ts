/**
 * Static int8 quantisation of an fp32 ONNX classifier, in Node (no Python).
 *
 *   npm run models:quantize -- <fp32.onnx> --manifest models/<id>/manifest.json --calib <image folder>
 *       [--format qdq|weight-only] [--activations u8|s8] [--per-channel | --per-tensor]
 *       [--op-types Conv,Gemm,...] [--exclude-op Op[,..]] [--exclude-node name[,..]] [--exclude-depthwise]
 *       [--calib-method minmax|percentile] [--percentile 99.999] [--eval <image folder>]
 *       [--equalize] [--bias-correct [--bias-correct-block 1]]
 *       [--out <int8.onnx>] [--report <report.json>] [--bench-runs 7]
 *
 * The input is normally an fp32 export. A model whose weights are already
 * 8-bit behind DequantizeLinear (e.g. a committed model.int8.onnx, or nsfwjs's
 * own uint8 codes) works too for --format qdq: those weights are kept exactly
 * and only the activations (and int32 biases) are added.
 *
 * Calibration images go through the service's own decode + preprocess
 * (src/pipeline) with the manifest's spec, so the ranges are those of the
 * tensors the worker will feed. The fp32 model runs in onnxruntime-node with
 * every tensor to be quantised exposed as an output. The quantised model is
 * then compared with fp32 on the same tensors in onnxruntime-node and in
 * onnxruntime-web (wasm, 1 thread: what the worker serves), and the report's
 * `fidelity` object is shaped for the manifest's `fidelity` field.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { ModelManifest } from "../src/models/manifest";
import { initWebpDecoder } from "../src/pipeline/codecs/webp";
import { decodeImage, decodeOptionsFor } from "../src/pipeline/decode";
import { toProbabilities } from "../src/pipeline/postprocess";
import { preprocess } from "../src/pipeline/preprocess";
import { PREOPTIMIZE_LEVEL, preoptimize } from "./onnx/model";
import {
  type ActivationType,
  addBiasOffsets,
  applyQdq,
  ChannelStats,
  equalizableConvs,
  equalizeChannels,
  equalizingScales,
  exposeTensors,
  foldFp32ComputeWeights,
  loadModel,
  type ModelProto,
  opCounts,
  planQdq,
  pruneToOutputs,
  type QdqPlan,
  quantizeWeightOnly,
  RangeCollector,
  type Selection,
  SUPPORTED_OPS,
  saveModel,
  WEIGHT_OPS,
} from "./onnx/quant";

const ROOT = resolve(import.meta.dirname, "..");
const IMAGE_EXT = new Set([".jpg", ".jpeg", ".png", ".webp"]);
const DEFAULT_OP_TYPES = ["Conv", "Gemm", "MatMul"];
/**
 * Layers corrected per step of --bias-correct. Each step re-runs the
 * calibration images through the network pruned to its last layer: 1 is exact
 * and took 191 s for DenseNet-121's 118 int8 convs on 99 images. Larger blocks
 * are faster but wrong in a densely connected network: every layer in a block
 * also corrects the shift it inherits from the block's earlier layers, which
 * they correct themselves (DenseNet, blocks of 8: the mean shift per channel
 * grew from 6.9e-4 to 1.8e-2).
 */
const DEFAULT_BIAS_BLOCK = 1;
/**
 * Measured in onnxruntime-web 1.30 (wasm, 1 thread): its int8 kernels beat
 * fp32 only on long dot products. Depthwise convs (9) run 3-10x slower in
 * int8 and 1x1 convs with 16-32 input channels ~1.2-1.5x slower, while
 * reductions ≥ 96 run 2-3x faster. With 128, MobileNetV2 runs at ~0.83x fp32
 * instead of 1.2-1.7x with every conv in int8, and DenseNet-121 loses nothing.
 */
const DEFAULT_MIN_REDUCTION = 128;

export class UsageError extends Error {}

const USAGE = `usage: npm run models:quantize -- <fp32.onnx> --manifest <manifest.json> --calib <image folder>
  (a model whose weights are already 8-bit behind DequantizeLinear is accepted by --format qdq: its codes are kept)
  [--format qdq|weight-only]        qdq (default): int8 weights + calibrated Q/DQ on activations;
                                    weight-only: int8 weights behind DequantizeLinear, fp32 compute
  [--activations u8|s8]             qdq activations: uint8 asymmetric (U8S8, default) or int8 symmetric (S8S8;
                                    outside ARM, wasm included, onnxruntime converts S8S8 to uint8 and keeps Relu/Clip apart)
  [--per-channel | --per-tensor]    weight scales (default per output channel; per-tensor measured top-1 22% on
                                    MobileNetV2 and 80% on the nsfw model: BatchNorm-folded channels differ too much)
  [--op-types Op[,..]]              ops to quantise (default ${DEFAULT_OP_TYPES.join(",")}; also: ${SUPPORTED_OPS.filter((o) => !DEFAULT_OP_TYPES.includes(o)).join(",")})
  [--exclude-op Op[,..]] [--exclude-node name[,..]] [--exclude-depthwise]
  [--min-reduction K]               qdq: keep fp32 compute for Conv/Gemm/MatMul whose dot products are shorter
                                    than K (input channels per group x kernel area; default ${DEFAULT_MIN_REDUCTION}, 0 = all int8):
                                    onnxruntime-web's int8 kernels only beat fp32 on long ones
  [--calib-method minmax|percentile] [--percentile 99.999]
  [--eval <image folder>]           evaluate on other images than the calibration set
  [--equalize]                      qdq: rescale the output channels of convs read only by batch norms (DenseNet's
                                    concatenated convs) so each spans its tensor's range; the batch norms undo it
  [--bias-correct] [--bias-correct-block N]
                                    qdq: subtract from each int8 Conv/Gemm's bias the per-channel mean shift of its
                                    output (quantised - fp32) on the calibration images, N layers at a time in graph
                                    order (default ${DEFAULT_BIAS_BLOCK}), each measured with the layers before it corrected
  [--fold-fp32-weights]             qdq: store the weights of fp32-compute nodes as fp32 instead of 8-bit codes
                                    behind DequantizeLinear, which onnxruntime would run on every inference
                                    (bigger file, same values; 0.96x the latency of the served nsfw model)
  [--preoptimize]                   save onnxruntime-node's optimised graph instead of the QDQ graph: faster session
                                    creation, only valid for this onnxruntime version. Prefer writing the QDQ graph and
                                    running npm run models:preoptimize on it, which checks the outputs and lets
                                    models:install record the source (manifest runtime.preoptimized)
  [--out <int8.onnx>] [--report <report.json>] [--bench-runs N (0 = no latency)]`;

export interface CliOptions {
  input: string;
  manifestPath: string;
  calib: string;
  evalDir: string | undefined;
  format: "qdq" | "weight-only";
  activations: ActivationType;
  perChannel: boolean;
  selection: Selection;
  calibMethod: "minmax" | "percentile";
  percentile: number;
  out: string;
  report: string;
  benchRuns: number;
  preoptimize: boolean;
  foldFp32Weights: boolean;
  /** Layers per bias-correction step; 0 = no bias correction. */
  biasCorrectBlock: number;
  equalize: boolean;
}

const list = (values: string[] | undefined): string[] =>
  (values ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);

export function parseCli(argv: string[]): CliOptions {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  const OPTIONS = {
    manifest: { type: "string" },
    calib: { type: "string" },
    eval: { type: "string" },
    format: { type: "string" },
    activations: { type: "string" },
    "per-channel": { type: "boolean" },
    "per-tensor": { type: "boolean" },
    "op-types": { type: "string", multiple: true },
    "exclude-op": { type: "string", multiple: true },
    "exclude-node": { type: "string", multiple: true },
    "exclude-depthwise": { type: "boolean" },
    "min-reduction": { type: "string" },
    "calib-method": { type: "string" },
    percentile: { type: "string" },
    out: { type: "string" },
    report: { type: "string" },
    "bench-runs": { type: "string" },
    preoptimize: { type: "boolean" },
    "fold-fp32-weights": { type: "boolean" },
    "bias-correct": { type: "boolean" },
    equalize: { type: "boolean" },
    "bias-correct-block": { type: "string" },
    help: { type: "boolean" },
  } as const;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const v = parsed.values;
  if (v.help) throw new UsageError("");
  if (parsed.positionals.length !== 1) {
    throw new UsageError(
      parsed.positionals.length === 0
        ? "missing the fp32 model path"
        : `expected one model path, got ${parsed.positionals.length}: ${parsed.positionals.join(" ")}`,
    );
  }
  const input = resolve(parsed.positionals[0] as string);
  if (!existsSync(input) || !statSync(input).isFile()) throw new UsageError(`model file not found: ${input}`);
  if (!v.manifest)
    throw new UsageError("--manifest <models/<id>/manifest.json> is required (preprocessing, tensor names)");
  if (!existsSync(v.manifest)) throw new UsageError(`--manifest: file not found: ${v.manifest}`);
  if (!v.calib) throw new UsageError("--calib <image folder> is required (calibration and the agreement report)");
  for (const [flag, dir] of [
    ["--calib", v.calib],
    ["--eval", v.eval],
  ] as const) {
    if (dir !== undefined && (!existsSync(dir) || !statSync(dir).isDirectory())) {
      throw new UsageError(`${flag}: not a folder: ${dir}`);
    }
  }
  const format = v.format ?? "qdq";
  if (format !== "qdq" && format !== "weight-only") {
    throw new UsageError(`--format must be qdq or weight-only, got ${JSON.stringify(format)}`);
  }
  if (format === "weight-only") {
    for (const flag of ["activations", "calib-method", "percentile", "exclude-depthwise", "min-reduction"] as const) {
      if (v[flag] !== undefined) throw new UsageError(`--${flag} applies to --format qdq only`);
    }
  }
  const activations = v.activations ?? "u8";
  if (activations !== "u8" && activations !== "s8") {
    throw new UsageError(`--activations must be u8 or s8, got ${JSON.stringify(activations)}`);
  }
  if (v["per-channel"] && v["per-tensor"]) throw new UsageError("--per-channel and --per-tensor are exclusive");
  const calibMethod = v["calib-method"] ?? "minmax";
  if (calibMethod !== "minmax" && calibMethod !== "percentile") {
    throw new UsageError(`--calib-method must be minmax or percentile, got ${JSON.stringify(calibMethod)}`);
  }
  const percentile = v.percentile === undefined ? 99.999 : Number(v.percentile);
  if (!(percentile > 50 && percentile <= 100))
    throw new UsageError(`--percentile must be in (50, 100], got ${v.percentile}`);
  if (v.percentile !== undefined && calibMethod !== "percentile") {
    throw new UsageError("--percentile needs --calib-method percentile");
  }
  if (format === "weight-only" && (v["bias-correct"] || v["bias-correct-block"] !== undefined)) {
    throw new UsageError("--bias-correct applies to --format qdq only");
  }
  if (format === "weight-only" && v.equalize) throw new UsageError("--equalize applies to --format qdq only");
  if (v["bias-correct-block"] !== undefined && !v["bias-correct"]) {
    throw new UsageError("--bias-correct-block needs --bias-correct");
  }
  const biasBlock = v["bias-correct-block"] === undefined ? DEFAULT_BIAS_BLOCK : Number(v["bias-correct-block"]);
  if (!Number.isInteger(biasBlock) || biasBlock < 1) {
    throw new UsageError(`--bias-correct-block must be an integer ≥ 1, got ${v["bias-correct-block"]}`);
  }
  const benchRuns = v["bench-runs"] === undefined ? 7 : Number(v["bench-runs"]);
  if (!Number.isInteger(benchRuns) || benchRuns < 0) throw new UsageError(`--bench-runs must be an integer ≥ 0`);
  const minReduction =
    v["min-reduction"] === undefined ? (format === "qdq" ? DEFAULT_MIN_REDUCTION : 0) : Number(v["min-reduction"]);
  if (!Number.isInteger(minReduction) || minReduction < 0) {
    throw new UsageError(`--min-reduction must be an integer ≥ 0, got ${v["min-reduction"]}`);
  }
  const opTypes = v["op-types"] ? list(v["op-types"]) : DEFAULT_OP_TYPES;
  for (const op of opTypes) {
    if (!SUPPORTED_OPS.includes(op)) {
      throw new UsageError(`--op-types: ${op} is not supported; supported: ${SUPPORTED_OPS.join(", ")}`);
    }
  }
  if (format === "weight-only" && !opTypes.some((o) => (WEIGHT_OPS as readonly string[]).includes(o))) {
    throw new UsageError("--format weight-only needs at least one of Conv, Gemm, MatMul in --op-types");
  }
  const out = resolve(v.out ?? defaultOut(input));
  if (out === input) throw new UsageError(`--out would overwrite the input model ${input}`);
  return {
    input,
    manifestPath: resolve(v.manifest),
    calib: resolve(v.calib),
    evalDir: v.eval === undefined ? undefined : resolve(v.eval),
    format,
    activations,
    perChannel: !v["per-tensor"],
    selection: {
      opTypes,
      excludeOps: list(v["exclude-op"]),
      excludeNodes: list(v["exclude-node"]),
      excludeDepthwise: v["exclude-depthwise"] ?? false,
      minReduction,
    },
    calibMethod,
    percentile,
    out,
    report: resolve(v.report ?? `${out.replace(/\.onnx$/, "")}.report.json`),
    benchRuns,
    preoptimize: v.preoptimize ?? false,
    foldFp32Weights: v["fold-fp32-weights"] ?? false,
    biasCorrectBlock: v["bias-correct"] ? biasBlock : 0,
    equalize: v.equalize ?? false,
  };
}

function defaultOut(input: string): string {
  const name = basename(input);
  const stem = name.replace(/\.onnx$/, "").replace(/\.fp32$/, "");
  return join(dirname(input), `${stem}.int8.onnx`);
}

/** Exclusions that name nothing are almost always typos: refuse them. */
function checkExclusions(model: ModelProto, sel: Selection): void {
  const nodes = model.graph?.node ?? [];
  const ops = new Set(nodes.map((n) => n.opType));
  for (const op of sel.excludeOps) {
    if (!ops.has(op)) throw new UsageError(`--exclude-op ${op}: the model has no ${op} node`);
  }
  const names = new Set(nodes.map((n) => n.name));
  for (const name of sel.excludeNodes) {
    if (!names.has(name)) throw new UsageError(`--exclude-node ${name}: no node of that name in the model`);
  }
}

// ---------------------------------------------------------------- images

export interface Sample {
  file: string;
  tensor: Float32Array;
}

let webpReady = false;
async function ensureWebp(): Promise<void> {
  if (webpReady) return;
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(require.resolve("@jsquash/webp/codec/dec/webp_dec.wasm"));
  // Node may compile wasm from bytes (workerd may not, hence the cast: the project compiles against Workers types).
  const compile = (WebAssembly as unknown as { compile(b: Uint8Array): Promise<WebAssembly.Module> }).compile;
  await initWebpDecoder(await compile(new Uint8Array(wasm)));
  webpReady = true;
}

/** Decodes and preprocesses every image in `dir` exactly as the worker does for this manifest. */
export async function loadSamples(
  dir: string,
  manifest: ModelManifest,
): Promise<{ samples: Sample[]; skipped: { file: string; error: string }[] }> {
  await ensureWebp();
  const files = readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort();
  const samples: Sample[] = [];
  const skipped: { file: string; error: string }[] = [];
  for (const file of files) {
    try {
      const img = await decodeImage(
        new Uint8Array(readFileSync(join(dir, file))),
        decodeOptionsFor(manifest.preprocess),
      );
      samples.push({ file, tensor: preprocess(img, manifest.preprocess, manifest.input) });
    } catch (e) {
      skipped.push({ file, error: e instanceof Error ? e.message : String(e) });
    }
  }
  if (samples.length === 0) {
    throw new UsageError(`no usable image (jpg, png, webp) in ${dir}${skipped.length ? `: ${skipped[0]?.error}` : ""}`);
  }
  return { samples, skipped };
}

function inputDims(manifest: ModelManifest): number[] {
  const { width: w, height: h, layout } = manifest.input;
  return layout === "NCHW" ? [1, 3, h, w] : [1, h, w, 3];
}

// ---------------------------------------------------------------- runtimes

export interface Runner {
  name: string;
  run(x: Float32Array, outputs: readonly string[]): Promise<Record<string, Float32Array>>;
  release(): Promise<void>;
}

export async function nodeRunner(bytes: Uint8Array, manifest: ModelManifest): Promise<Runner> {
  const s = await ortNode.InferenceSession.create(bytes, { graphOptimizationLevel: "all", intraOpNumThreads: 1 });
  const dims = inputDims(manifest);
  return {
    name: "onnxruntime-node",
    async run(x, outputs) {
      const r = await s.run({ [manifest.input.name]: new ortNode.Tensor("float32", x, dims) }, [...outputs]);
      return Object.fromEntries(outputs.map((o) => [o, new Float32Array(r[o]?.data as Float32Array)]));
    },
    release: () => s.release(),
  };
}

let webInit = false;
export async function webRunner(
  bytes: Uint8Array,
  manifest: ModelManifest,
  level: "disabled" | "basic" | "extended" | "all" = "all",
): Promise<Runner> {
  if (!webInit) {
    ortWeb.env.wasm.numThreads = 1;
    ortWeb.env.wasm.proxy = false;
    ortWeb.env.logLevel = "error";
    webInit = true;
  }
  // The worker's session options (src/inference/ort.ts).
  const s = await ortWeb.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: level,
  });
  const dims = inputDims(manifest);
  return {
    name: "onnxruntime-web",
    async run(x, outputs) {
      const r = await s.run({ [manifest.input.name]: new ortWeb.Tensor("float32", x, dims) }, [...outputs]);
      const out: Record<string, Float32Array> = {};
      for (const o of outputs) {
        const t = r[o];
        out[o] = new Float32Array(t?.data as Float32Array);
        t?.dispose();
      }
      return out;
    },
    release: () => s.release(),
  };
}

// ---------------------------------------------------------------- calibration

export async function calibrate(
  fp32: ModelProto,
  tensors: readonly string[],
  samples: readonly Sample[],
  manifest: ModelManifest,
  opts: Pick<CliOptions, "activations" | "calibMethod" | "percentile">,
): Promise<Map<string, { min: number; max: number }>> {
  const exposed = exposeTensors(fp32, tensors);
  const session = await ortNode.InferenceSession.create(saveModel(exposed), {
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
  });
  const collector = new RangeCollector(opts.activations === "s8");
  // A graph input cannot be requested as an output: its values are the sample itself.
  const inputs = new Set((fp32.graph?.input ?? []).map((i) => i.name));
  const produced = tensors.filter((t) => !inputs.has(t));
  const dims = inputDims(manifest);
  // Reads ORT's output buffers in place: DenseNet exposes ~60 MB of activations per image.
  const pass = async (add: (name: string, data: Float32Array) => void) => {
    for (const s of samples) {
      const r = await session.run({ [manifest.input.name]: new ortNode.Tensor("float32", s.tensor, dims) }, produced);
      for (const t of tensors) add(t, inputs.has(t) ? s.tensor : (r[t]?.data as Float32Array));
    }
  };
  try {
    await pass((t, d) => collector.addMinMax(t, d));
    if (opts.calibMethod === "minmax") return collector.ranges;
    await pass((t, d) => collector.addHistogram(t, d));
    return collector.percentileRanges(opts.percentile);
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------- equalisation and bias correction

/** Per-channel statistics of `outputs` over `samples`, in onnxruntime-node (the model pruned to what they need). */
export async function channelStats(
  model: ModelProto,
  outputs: readonly string[],
  samples: readonly Sample[],
  manifest: ModelManifest,
): Promise<ChannelStats> {
  const session = await ortNode.InferenceSession.create(saveModel(pruneToOutputs(model, outputs)), {
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
  });
  const means = new ChannelStats();
  const dims = inputDims(manifest);
  try {
    for (const s of samples) {
      const r = await session.run({ [manifest.input.name]: new ortNode.Tensor("float32", s.tensor, dims) }, [
        ...outputs,
      ]);
      for (const o of outputs) {
        const t = r[o] as ortNode.Tensor;
        means.add(o, t.data as Float32Array, t.dims);
      }
    }
  } finally {
    await session.release();
  }
  return means;
}

/** Per-channel means of `outputs` over `samples`. */
export async function channelMeans(
  model: ModelProto,
  outputs: readonly string[],
  samples: readonly Sample[],
  manifest: ModelManifest,
): Promise<Map<string, Float64Array>> {
  const means = await channelStats(model, outputs, samples, manifest);
  return new Map(outputs.map((o) => [o, means.mean(o)]));
}

export interface BiasCorrection {
  /** Node name → the offset added to its float bias, per output channel. */
  offsets: Map<string, Float32Array>;
  /** Node name → mean over channels of |per-channel mean error| before correction (as first measured) and after. */
  error: Map<string, { before: number; after: number }>;
}

/** Mean over channels of |quantised mean - fp32 mean|. */
const meanAbsShift = (q: Float64Array, ref: Float64Array) =>
  q.reduce((a, v, c) => a + Math.abs(v - (ref[c] as number)), 0) / q.length;

/**
 * Empirical bias correction. Int8 rounding and (percentile/MSE) clipping of a
 * layer's input shift the mean of its output; the next layers, concatenations
 * and batch norms carry the shift on, and in a network with near-tie logits it
 * flips classes. For each int8 Conv/Gemm, in graph order, the shift per output
 * channel (quantised - fp32, over all calibration images and positions) is
 * measured with every earlier layer already corrected, and subtracted from its
 * bias before the bias is quantised to int32. The scales stay those of
 * `ranges`. Layers are measured `block` at a time: within a block the later
 * layers still see the earlier ones uncorrected (see DEFAULT_BIAS_BLOCK). The
 * quantised model here is the fake-quantised one (the measured outputs are graph
 * outputs, so ORT keeps those convs in fp32 between their Q/DQ), which the int8
 * kernels match to rounding.
 */
export async function correctBiases(
  fp32: ModelProto,
  plan: QdqPlan,
  ranges: ReadonlyMap<string, { min: number; max: number }>,
  samples: readonly Sample[],
  manifest: ModelManifest,
  opts: { activations: ActivationType; perChannel: boolean; block: number },
  log: (s: string) => void = () => {},
): Promise<BiasCorrection> {
  const byName = new Map((fp32.graph?.node ?? []).map((n) => [n.name ?? "", n]));
  const layers = plan.nodes
    .filter((n) => n.op === "Conv" || n.op === "Gemm")
    .map((n) => ({ name: n.name, out: byName.get(n.name)?.output?.[0] as string }));
  const quantize = (offsets: ReadonlyMap<string, Float32Array>) =>
    applyQdq(addBiasOffsets(fp32, offsets), plan, ranges, opts.activations, { perChannel: opts.perChannel }).model;
  const outs = layers.map((l) => l.out);
  const ref = await channelMeans(fp32, outs, samples, manifest);
  const offsets = new Map<string, Float32Array>();
  const error = new Map<string, { before: number; after: number }>();
  for (let i = 0; i < layers.length; i += opts.block) {
    const block = layers.slice(i, i + opts.block);
    const q = await channelMeans(
      quantize(offsets),
      block.map((l) => l.out),
      samples,
      manifest,
    );
    for (const l of block) {
      const qm = q.get(l.out) as Float64Array;
      const rm = ref.get(l.out) as Float64Array;
      offsets.set(
        l.name,
        Float32Array.from(qm, (v, c) => (rm[c] as number) - v),
      );
      error.set(l.name, { before: meanAbsShift(qm, rm), after: Number.NaN });
    }
    const done = i + block.length;
    if (done === layers.length || Math.floor(done / 20) > Math.floor(i / 20)) {
      log(`  bias correction: ${done} of ${layers.length} layers`);
    }
  }
  const after = await channelMeans(quantize(offsets), outs, samples, manifest);
  for (const l of layers) {
    const e = error.get(l.name) as { before: number; after: number };
    e.after = meanAbsShift(after.get(l.out) as Float64Array, ref.get(l.out) as Float64Array);
  }
  return { offsets, error };
}

// ---------------------------------------------------------------- agreement

export interface Agreement {
  images: number;
  top1_agreement: number;
  top5_k: number;
  top5_overlap_mean: number;
  top5_at_least_4: number;
  max_abs_dprob: number;
  mean_abs_dprob: number;
  /**
   * Images whose top-1 changed, and for the worst of them how far apart the
   * two classes were in fp32 (p[fp32 top-1] - p[quantised top-1]): a flip
   * between classes fp32 itself can barely tell apart is a near-tie, not a
   * broken model.
   */
  top1_flips: number;
  top1_flip_max_fp32_margin: number;
  /** The manifest's features output, fp32 vs quantised (worst image). */
  features?: { min_cosine: number; max_abs_diff: number };
}

const topIndices = (p: Float32Array, k: number): number[] =>
  Array.from(p.keys())
    .sort((a, b) => (p[b] as number) - (p[a] as number) || a - b)
    .slice(0, k);

export function agreement(
  pairs: { fp32: Float32Array; q: Float32Array; f32Features?: Float32Array; qFeatures?: Float32Array }[],
): Agreement {
  const classes = pairs[0]?.fp32.length ?? 0;
  const k = Math.min(5, classes);
  const atLeast = Math.min(4, k);
  let top1 = 0;
  let flipMargin = 0;
  let overlapSum = 0;
  let ge4 = 0;
  let maxAbs = 0;
  let sumAbs = 0;
  let minCos = 1;
  let maxFeat = 0;
  let haveFeatures = false;
  for (const { fp32, q, f32Features, qFeatures } of pairs) {
    const a = topIndices(fp32, k);
    const b = topIndices(q, k);
    if (a[0] === b[0]) top1++;
    else flipMargin = Math.max(flipMargin, (fp32[a[0] as number] as number) - (fp32[b[0] as number] as number));
    const overlap = a.filter((i) => b.includes(i)).length;
    overlapSum += overlap / k;
    if (overlap >= atLeast) ge4++;
    for (let i = 0; i < classes; i++) {
      const d = Math.abs((fp32[i] as number) - (q[i] as number));
      maxAbs = Math.max(maxAbs, d);
      sumAbs += d;
    }
    if (f32Features && qFeatures) {
      haveFeatures = true;
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let i = 0; i < f32Features.length; i++) {
        const x = f32Features[i] as number;
        const y = qFeatures[i] as number;
        dot += x * y;
        na += x * x;
        nb += y * y;
        maxFeat = Math.max(maxFeat, Math.abs(x - y));
      }
      minCos = Math.min(minCos, na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : na === nb ? 1 : 0);
    }
  }
  const n = pairs.length;
  const result: Agreement = {
    images: n,
    top1_agreement: top1 / n,
    top5_k: k,
    top5_overlap_mean: overlapSum / n,
    top5_at_least_4: ge4 / n,
    max_abs_dprob: maxAbs,
    mean_abs_dprob: sumAbs / (n * classes),
    top1_flips: n - top1,
    top1_flip_max_fp32_margin: flipMargin,
  };
  if (haveFeatures) result.features = { min_cosine: minCos, max_abs_diff: maxFeat };
  return result;
}

async function compare(
  make: (bytes: Uint8Array, manifest: ModelManifest) => Promise<Runner>,
  fp32Bytes: Uint8Array,
  qBytes: Uint8Array,
  samples: readonly Sample[],
  manifest: ModelManifest,
  benchRuns: number,
): Promise<{
  agreement: Agreement;
  latency?: { input_ms: number; quantized_ms: number; ratio: number; runs: number };
}> {
  const a = await make(fp32Bytes, manifest);
  const b = await make(qBytes, manifest);
  try {
    const outs = [manifest.output.name, ...(manifest.output.features ? [manifest.output.features.name] : [])];
    const probs = (r: Record<string, Float32Array>) =>
      toProbabilities(
        r[manifest.output.name] as Float32Array,
        [manifest.numClasses],
        manifest.numClasses,
        manifest.output.kind,
      );
    const pairs = [];
    for (const s of samples) {
      const ra = await a.run(s.tensor, outs);
      const rb = await b.run(s.tensor, outs);
      const feat = manifest.output.features?.name;
      pairs.push({
        fp32: probs(ra),
        q: probs(rb),
        ...(feat ? { f32Features: ra[feat], qFeatures: rb[feat] } : {}),
      });
    }
    const result: Awaited<ReturnType<typeof compare>> = { agreement: agreement(pairs) };
    if (benchRuns > 0) {
      // Warm both, then alternate so drift (thermal, other processes) hits both alike.
      const x = (samples[0] as Sample).tensor;
      const only = [manifest.output.name];
      for (let i = 0; i < 2; i++) {
        await a.run(x, only);
        await b.run(x, only);
      }
      const ta: number[] = [];
      const tb: number[] = [];
      for (let i = 0; i < benchRuns; i++) {
        let t = performance.now();
        await a.run(x, only);
        ta.push(performance.now() - t);
        t = performance.now();
        await b.run(x, only);
        tb.push(performance.now() - t);
      }
      const fp32Ms = median(ta);
      const qMs = median(tb);
      result.latency = { input_ms: fp32Ms, quantized_ms: qMs, ratio: qMs / fp32Ms, runs: benchRuns };
    }
    return result;
  } finally {
    await a.release();
    await b.release();
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

// ---------------------------------------------------------------- main

export interface Report {
  tool: "models:quantize";
  input: { file: string; bytes: number; sha256: string };
  output: { file: string; bytes: number; sha256: string };
  options: Record<string, unknown>;
  graph: {
    quantized_nodes: { name: string; op: string }[];
    excluded: { node: string; op: string; reason: string }[];
    ops: Record<string, number>;
    quantize_linear: number;
    dequantize_linear: number;
    float_biases: { node: string; reason: string }[];
    max_weight_abs_error: number;
    /** Weights already 8-bit in the input (behind their own DQ), left unchanged. */
    kept_8bit_weights: number;
    fp32_weights_folded: number;
    equalized?: { convs: number; median_scale: number; max_scale: number };
    bias_correction?: {
      layers: number;
      block: number;
      mean_abs_shift_before: number;
      mean_abs_shift_after: number;
      seconds: number;
      /** Node → [mean |per-channel shift| as first measured, after all layers are corrected]. */
      shift_by_layer: Record<string, [number, number]>;
    };
  };
  calibration: { images: number; source: string; skipped: { file: string; error: string }[] };
  onnxruntime_node: Agreement;
  onnxruntime_web: Agreement;
  latency_web?: { input_ms: number; quantized_ms: number; ratio: number; runs: number };
  fidelity: Record<string, unknown>;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const rel = (p: string) => (p.startsWith(ROOT) ? relative(ROOT, p) : p);

export async function quantizeCommand(argv: string[], log: (s: string) => void = console.log): Promise<Report> {
  const opts = parseCli(argv);
  let manifest: ModelManifest;
  try {
    manifest = ModelManifest.parse(JSON.parse(readFileSync(opts.manifestPath, "utf8")));
  } catch (e) {
    throw new UsageError(
      `--manifest ${opts.manifestPath} is not a valid model manifest: ${e instanceof Error ? e.message : e}`,
    );
  }
  // "fp32" below: the input model, the reference of every comparison (it may already have 8-bit weights).
  const fp32Bytes = new Uint8Array(readFileSync(opts.input));
  const fp32 = loadModel(fp32Bytes);
  const g = fp32.graph;
  const inputs = (g?.input ?? []).map((i) => i.name);
  const outputs = (g?.output ?? []).map((o) => o.name);
  if (!inputs.includes(manifest.input.name)) {
    throw new UsageError(
      `the model has no input ${manifest.input.name} (manifest input.name); inputs: ${inputs.join(", ")}`,
    );
  }
  for (const name of [manifest.output.name, manifest.output.features?.name]) {
    if (name && !outputs.includes(name)) {
      throw new UsageError(`the model has no output ${name} (named by the manifest); outputs: ${outputs.join(", ")}`);
    }
  }
  checkExclusions(fp32, opts.selection);

  const calib = await loadSamples(opts.calib, manifest);
  const evalSet = opts.evalDir ? await loadSamples(opts.evalDir, manifest) : calib;
  for (const s of [...calib.skipped, ...(evalSet === calib ? [] : evalSet.skipped)]) {
    log(`warning: skipped ${s.file}: ${s.error}`);
  }

  let quantized: ModelProto;
  let excluded: Report["graph"]["excluded"];
  let floatBiases: Report["graph"]["float_biases"] = [];
  let weightErr = 0;
  let keptWeights = 0;
  let foldedWeights = 0;
  let biasCorrection: Report["graph"]["bias_correction"];
  let equalized: Report["graph"]["equalized"];
  let quantizedNodes: { name: string; op: string }[];
  if (opts.format === "weight-only") {
    let r: ReturnType<typeof quantizeWeightOnly>;
    try {
      r = quantizeWeightOnly(fp32, opts.selection, { perChannel: opts.perChannel });
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
    quantized = r.model;
    quantizedNodes = r.weights.map((w) => ({ name: w.node, op: nodeOp(fp32, w.node) }));
    weightErr = Math.max(...r.weights.map((w) => w.maxAbsError));
    excluded = r.skipped;
  } else {
    if (opts.activations === "s8") {
      log(
        "note: outside ARM (wasm included) onnxruntime converts int8 activations to uint8 before fusing, and their symmetric range keeps every Relu/Clip as a separate DQ→Clip→Q step",
      );
    }
    const plan = planQdq(fp32, opts.selection, opts.activations);
    if (plan.nodes.length === 0) throw new UsageError("nothing to quantise: every candidate node is excluded");
    // The function is unchanged, so the input model stays the reference of every comparison.
    let base = fp32;
    if (opts.equalize) {
      const planned = new Set(plan.tensors);
      const eq = equalizableConvs(fp32).filter((e) => planned.has(e.tensor));
      const stats = await channelStats(
        fp32,
        eq.map((e) => e.tensor),
        calib.samples,
        manifest,
      );
      const scales = new Map(
        eq.map((e) => {
          const r = stats.range(e.tensor);
          return [e.node, equalizingScales(r.min, r.max)];
        }),
      );
      base = equalizeChannels(fp32, scales);
      const all = [...scales.values()].flatMap((v) => Array.from(v));
      equalized = { convs: scales.size, median_scale: median(all), max_scale: Math.max(...all) };
      log(
        `equalised the output channels of ${scales.size} convs (channel scale median ${equalized.median_scale.toFixed(2)}, max ${equalized.max_scale.toFixed(1)})`,
      );
    }
    log(
      `calibrating ${plan.tensors.length} activation tensors on ${calib.samples.length} images (${opts.calibMethod})…`,
    );
    const ranges = await calibrate(base, plan.tensors, calib.samples, manifest, opts);
    let source = base;
    if (opts.biasCorrectBlock > 0) {
      const t0 = performance.now();
      const bc = await correctBiases(
        base,
        plan,
        ranges,
        calib.samples,
        manifest,
        { activations: opts.activations, perChannel: opts.perChannel, block: opts.biasCorrectBlock },
        log,
      );
      source = addBiasOffsets(base, bc.offsets);
      const errs = [...bc.error.values()];
      const avg = (f: (e: { before: number; after: number }) => number) =>
        errs.reduce((a, e) => a + f(e), 0) / errs.length;
      biasCorrection = {
        layers: bc.offsets.size,
        block: opts.biasCorrectBlock,
        mean_abs_shift_before: avg((e) => e.before),
        mean_abs_shift_after: avg((e) => e.after),
        seconds: (performance.now() - t0) / 1000,
        shift_by_layer: Object.fromEntries([...bc.error].map(([k, e]) => [k, [e.before, e.after]])),
      };
      log(
        `bias correction: ${bc.offsets.size} layers, mean |per-channel output shift| ${biasCorrection.mean_abs_shift_before.toExponential(2)} → ${biasCorrection.mean_abs_shift_after.toExponential(2)} (${biasCorrection.seconds.toFixed(0)} s)`,
      );
    }
    const r = applyQdq(source, plan, ranges, opts.activations, { perChannel: opts.perChannel });
    quantized = r.model;
    if (opts.foldFp32Weights) {
      const f = foldFp32ComputeWeights(quantized, new Set(plan.nodes.map((n) => n.name)));
      quantized = f.model;
      foldedWeights = f.folded;
      log(`stored ${f.folded} weight tensors of fp32-compute nodes as fp32`);
    }
    quantizedNodes = plan.nodes;
    excluded = plan.skipped;
    floatBiases = r.floatBiases;
    weightErr = Math.max(0, ...r.weights.map((w) => w.maxAbsError));
    keptWeights = r.weights.filter((w) => w.kept).length;
  }
  let qBytes = saveModel(quantized);
  if (opts.preoptimize) qBytes = await preoptimize(qBytes, opts.out);
  writeFileSync(opts.out, qBytes);
  log(`wrote ${rel(opts.out)} (${qBytes.length} bytes${opts.preoptimize ? ", pre-optimised" : ""})`);

  log(`evaluating fp32 vs quantised on ${evalSet.samples.length} images (onnxruntime-node, onnxruntime-web)…`);
  const onNode = await compare(nodeRunner, fp32Bytes, qBytes, evalSet.samples, manifest, 0);
  const onWeb = await compare(webRunner, fp32Bytes, qBytes, evalSet.samples, manifest, opts.benchRuns);

  const ops = opCounts(loadModel(qBytes));
  const options = {
    format: opts.format,
    ...(opts.format === "qdq"
      ? {
          activations: opts.activations,
          calib_method: opts.calibMethod,
          ...(opts.calibMethod === "percentile" ? { percentile: opts.percentile } : {}),
        }
      : {}),
    weights: opts.perChannel ? "per-channel" : "per-tensor",
    op_types: opts.selection.opTypes,
    exclude_op: opts.selection.excludeOps,
    exclude_node: opts.selection.excludeNodes,
    exclude_depthwise: opts.selection.excludeDepthwise,
    min_reduction: opts.selection.minReduction,
    preoptimize: opts.preoptimize,
    fold_fp32_weights: opts.foldFp32Weights,
    bias_correct_block: opts.biasCorrectBlock,
    equalize: opts.equalize,
  };
  const evalSource = opts.evalDir ? rel(opts.evalDir) : "the calibration images";
  const report: Report = {
    tool: "models:quantize",
    input: { file: rel(opts.input), bytes: fp32Bytes.length, sha256: sha256(fp32Bytes) },
    output: { file: rel(opts.out), bytes: qBytes.length, sha256: sha256(qBytes) },
    options,
    graph: {
      quantized_nodes: quantizedNodes,
      excluded,
      ops,
      quantize_linear: ops.QuantizeLinear ?? 0,
      dequantize_linear: ops.DequantizeLinear ?? 0,
      float_biases: floatBiases,
      max_weight_abs_error: weightErr,
      kept_8bit_weights: keptWeights,
      fp32_weights_folded: foldedWeights,
      ...(biasCorrection ? { bias_correction: biasCorrection } : {}),
      ...(equalized ? { equalized } : {}),
    },
    calibration: { images: calib.samples.length, source: rel(opts.calib), skipped: calib.skipped },
    onnxruntime_node: onNode.agreement,
    onnxruntime_web: onWeb.agreement,
    ...(onWeb.latency ? { latency_web: onWeb.latency } : {}),
    fidelity: {
      quantization: {
        tool: "models:quantize",
        format: opts.format,
        weights:
          keptWeights === quantizedNodes.filter((n) => (WEIGHT_OPS as readonly string[]).includes(n.op)).length
            ? "8-bit codes of the input model, unchanged"
            : `int8 symmetric ${opts.perChannel ? "per-output-channel" : "per-tensor"}${keptWeights ? ` (${keptWeights} already 8-bit in the input, unchanged)` : ""}`,
        activations:
          opts.format === "qdq"
            ? opts.activations === "u8"
              ? "uint8 asymmetric (calibrated)"
              : "int8 symmetric (calibrated)"
            : "fp32",
        ...(opts.format === "qdq" ? { bias: floatBiases.length ? "int32 (some fp32)" : "int32" } : {}),
        quantized_nodes: quantizedNodes.length,
        ...(opts.format === "qdq" ? { min_reduction: opts.selection.minReduction } : {}),
        ...(opts.preoptimize ? { preoptimized: `onnxruntime-node 1.30 graph, level ${PREOPTIMIZE_LEVEL}` } : {}),
        ...(foldedWeights ? { fp32_weights_of_fp32_compute_nodes: foldedWeights } : {}),
        ...(biasCorrection
          ? {
              bias_correction: `empirical, per output channel, on the calibration images (${biasCorrection.layers} layers)`,
            }
          : {}),
        fp32_compute_nodes: excludedSummary(excluded),
        calibration:
          opts.format === "qdq"
            ? {
                images: calib.samples.length,
                source: rel(opts.calib),
                method: opts.calibMethod === "minmax" ? "minmax" : `percentile ${opts.percentile}`,
              }
            : "none needed (weights only)",
        evaluated_on: { images: evalSet.samples.length, source: evalSource },
        reference: keptWeights ? "the input model (its 8-bit weights, fp32 activations)" : "the fp32 input model",
        runtime: `onnxruntime-web ${ortWeb.env.versions.web ?? "?"} (wasm, 1 thread, graphOptimizationLevel all)`,
        ...onWeb.agreement,
        onnxruntime_node: onNode.agreement,
        bytes: { input: fp32Bytes.length, quantized: qBytes.length },
      },
    },
  };
  writeFileSync(opts.report, `${JSON.stringify(report, null, 2)}\n`);
  log(markdown(report));
  log(`report: ${rel(opts.report)}`);
  return report;
}

function nodeOp(model: ModelProto, name: string): string {
  return model.graph?.node?.find((n) => n.name === name)?.opType ?? "";
}

/** Excluded nodes per reason; explicitly excluded ones by name (the full list is in the report's graph section). */
function excludedSummary(excluded: Report["graph"]["excluded"]): Record<string, number | string[]> {
  const out: Record<string, number | string[]> = {};
  for (const e of excluded) {
    if (e.reason === "--exclude-node") {
      out[e.reason] = [...((out[e.reason] as string[] | undefined) ?? []), e.node];
      continue;
    }
    const key = e.reason.startsWith("reduction ") ? e.reason.replace(/^reduction \d+ < /, "") : e.reason;
    out[key] = ((out[key] as number | undefined) ?? 0) + 1;
  }
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function markdown(r: Report): string {
  const row = (name: string, a: Agreement) =>
    `| ${name} | ${a.images} | ${pct(a.top1_agreement)} | ${a.top1_flips} (${a.top1_flip_max_fp32_margin.toExponential(1)}) | ${a.top5_overlap_mean.toFixed(3)} | ${pct(a.top5_at_least_4)} | ${a.max_abs_dprob.toExponential(2)} | ${a.mean_abs_dprob.toExponential(2)} |${a.features ? ` ${a.features.min_cosine.toFixed(5)} |` : ""}`;
  const feat = r.onnxruntime_web.features ? " features min cos |" : "";
  const lines = [
    `### ${r.output.file} (${r.options.format}${r.options.activations ? `, ${r.options.activations}` : ""})`,
    "",
    `| runtime | images | top-1 agreement | flips (max fp32 margin) | top-${r.onnxruntime_web.top5_k} overlap (mean) | top-${r.onnxruntime_web.top5_k} ≥${Math.min(4, r.onnxruntime_web.top5_k)} | max abs Δp | mean abs Δp |${feat}`,
    `|---|---|---|---|---|---|---|---|${feat ? "---|" : ""}`,
    row("onnxruntime-node", r.onnxruntime_node),
    row("onnxruntime-web (wasm, 1 thread)", r.onnxruntime_web),
    "",
    `| file | bytes |`,
    `|---|---|`,
    `| input ${r.input.file} | ${r.input.bytes} |`,
    `| quantised ${r.output.file} | ${r.output.bytes} (${((100 * r.output.bytes) / r.input.bytes).toFixed(1)}%) |`,
    "",
    `quantised nodes: ${r.graph.quantized_nodes.length}, excluded: ${r.graph.excluded.length}, QuantizeLinear: ${r.graph.quantize_linear}, DequantizeLinear: ${r.graph.dequantize_linear}`,
  ];
  if (r.latency_web) {
    const l = r.latency_web;
    lines.push(
      `onnxruntime-web latency (median of ${l.runs}, informative): input ${l.input_ms.toFixed(1)} ms, quantised ${l.quantized_ms.toFixed(1)} ms, ratio ${l.ratio.toFixed(2)}`,
    );
  }
  return lines.join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  quantizeCommand(process.argv.slice(2)).catch((e: unknown) => {
    if (e instanceof UsageError) {
      if (e.message) console.error(`models:quantize: ${e.message}`);
      console.error(USAGE);
      process.exit(2);
    }
    console.error(e);
    process.exit(1);
  });
}
