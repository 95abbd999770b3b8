/**
 * Which int8 formulation is fast in onnxruntime-web? Builds quantisation
 * variants of one fp32 model with the models:quantize library, and measures
 * each against fp32 in onnxruntime-web (Node, wasm, 1 thread, the worker's
 * session options unless a variant says otherwise):
 *  - agreement with fp32 on the evaluation images (top-1, top-5, max |Δp|);
 *  - latency, all sessions in ONE process, round-robin, so machine load hits
 *    every variant alike. Two figures: the median wall time of a run, and the
 *    sum over graph nodes of each node's fastest kernel time (ORT's profiler).
 *    On a busy machine the wall median drifts with the load; the kernel sum
 *    does not (a preempted kernel shows up as a slow sample, not as the minimum),
 *    but it leaves out the executor's per-node overhead.
 *
 *   npx tsx scripts/quantize-variants.ts <fp32.onnx> --manifest <manifest.json> --calib <folder>
 *       [--eval <folder>] [--variants fp32,weight-only,u8,...] [--rounds 20]
 *
 * Informative only (not part of any test): the numbers depend on the machine.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { ModelManifest } from "../src/models/manifest";
import { toProbabilities } from "../src/pipeline/postprocess";
import { type Agreement, agreement, calibrate, loadSamples, median, type Sample } from "./models-quantize";
import { KernelTimeCapture } from "./onnx/kernel-times";
import {
  type ActivationType,
  applyQdq,
  loadModel,
  planQdq,
  quantizeWeightOnly,
  type Selection,
  saveModel,
} from "./onnx/quant";

type Level = "disabled" | "basic" | "extended" | "all";
interface Spec {
  name: string;
  what: string;
  build: () => Promise<Uint8Array>;
  level?: Level;
}

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    manifest: { type: "string" },
    calib: { type: "string" },
    eval: { type: "string" },
    variants: { type: "string" },
    rounds: { type: "string" },
    baseline: { type: "string" },
  },
});
const fp32Path = positionals[0];
if (!fp32Path || !values.manifest || !values.calib) {
  console.error(
    "usage: tsx scripts/quantize-variants.ts <model.onnx> --manifest <m.json> --calib <dir> [--eval <dir>] [--baseline <fp32.onnx>] [--variants a,b] [--rounds N]",
  );
  process.exit(2);
}
const manifest = ModelManifest.parse(JSON.parse(readFileSync(values.manifest, "utf8")));
const rounds = Number(values.rounds ?? 20);
// The model the variants are built from; normally fp32, but it may already have
// 8-bit weights (e.g. the committed nsfwjs codes), which the variants then keep.
const sourceBytes = new Uint8Array(readFileSync(fp32Path));
const fp32 = loadModel(sourceBytes);
// What everything is compared with: the true fp32 export when the source is not fp32.
const fp32Bytes = values.baseline ? new Uint8Array(readFileSync(values.baseline)) : sourceBytes;
const calib = (await loadSamples(values.calib, manifest)).samples;
const evalSet = values.eval ? (await loadSamples(values.eval, manifest)).samples : calib;

const sel = (o: Partial<Selection> = {}): Selection => ({
  opTypes: ["Conv", "Gemm", "MatMul"],
  excludeOps: [],
  excludeNodes: [],
  excludeDepthwise: false,
  ...o,
});
async function qdq(act: ActivationType, s: Selection, perChannel = true): Promise<Uint8Array> {
  const plan = planQdq(fp32, s, act);
  const opts = { activations: act, calibMethod: "minmax", percentile: 100 } as const;
  const ranges = await calibrate(fp32, plan.tensors, calib, manifest, opts);
  return saveModel(applyQdq(fp32, plan, ranges, act, { perChannel }).model);
}
/** onnxruntime-node's optimised graph, saved: what "offline pre-optimisation" would store in R2. */
async function preoptimised(bytes: Uint8Array, level: "basic" | "extended" | "all"): Promise<Uint8Array> {
  const out = `${process.env.TMPDIR ?? "/tmp"}/edgetag-preopt-${process.pid}-${Math.random().toString(36).slice(2)}.onnx`;
  const s = await ortNode.InferenceSession.create(bytes, {
    graphOptimizationLevel: level,
    intraOpNumThreads: 1,
    optimizedModelFilePath: out,
  });
  await s.release();
  return new Uint8Array(readFileSync(out));
}
const memo = new Map<string, Promise<Uint8Array>>();
const once = (key: string, f: () => Promise<Uint8Array>) => () => {
  if (!memo.has(key)) memo.set(key, f());
  return memo.get(key) as Promise<Uint8Array>;
};
const wo = once("wo", async () => saveModel(quantizeWeightOnly(fp32, sel()).model));
const u8 = once("u8", () => qdq("u8", sel()));
const mr = (k: number) => once(`mr${k}`, () => qdq("u8", sel({ minReduction: k })));

const ALL: Spec[] = [
  { name: "fp32", what: "fp32, served as is", build: async () => fp32Bytes },
  { name: "source", what: "the source model as given", build: async () => sourceBytes },
  { name: "weight-only", what: "int8 weights behind DQ, fp32 compute", build: wo },
  { name: "u8", what: "QDQ U8S8, every Conv/Gemm", build: u8 },
  { name: "s8", what: "QDQ S8S8, every Conv/Gemm", build: once("s8", () => qdq("s8", sel())) },
  {
    name: "u8-nodw",
    what: "QDQ U8S8, depthwise fp32",
    build: once("nodw", () => qdq("u8", sel({ excludeDepthwise: true }))),
  },
  {
    name: "s8-nodw",
    what: "QDQ S8S8, depthwise fp32",
    build: once("s8nodw", () => qdq("s8", sel({ excludeDepthwise: true }))),
  },
  { name: "u8-pertensor", what: "QDQ U8S8, per-tensor weights", build: once("pt", () => qdq("u8", sel(), false)) },
  { name: "u8-mr32", what: "QDQ U8S8, fp32 where reduction < 32", build: mr(32) },
  { name: "u8-mr64", what: "QDQ U8S8, fp32 where reduction < 64", build: mr(64) },
  { name: "u8-mr96", what: "QDQ U8S8, fp32 where reduction < 96", build: mr(96) },
  { name: "u8-mr128", what: "QDQ U8S8, fp32 where reduction < 128", build: mr(128) },
  { name: "u8-mr256", what: "QDQ U8S8, fp32 where reduction < 256", build: mr(256) },
  {
    name: "u8-mr96-nogemm",
    what: "u8-mr96, Gemm fp32",
    build: once("mr96g", () => qdq("u8", sel({ minReduction: 96, excludeOps: ["Gemm"] }))),
  },
  {
    name: "u8-concat",
    what: "QDQ U8S8 + Concat/pools in int8",
    build: once("cat", () =>
      qdq("u8", sel({ opTypes: ["Conv", "Gemm", "MatMul", "Concat", "AveragePool", "MaxPool", "GlobalAveragePool"] })),
    ),
  },
  {
    name: "fp32@extended",
    what: "fp32, graphOptimizationLevel extended",
    build: async () => fp32Bytes,
    level: "extended",
  },
  { name: "fp32@basic", what: "fp32, graphOptimizationLevel basic", build: async () => fp32Bytes, level: "basic" },
  { name: "u8@extended", what: "u8, graphOptimizationLevel extended", build: u8, level: "extended" },
  { name: "u8-mr96@extended", what: "u8-mr96, level extended", build: mr(96), level: "extended" },
  { name: "u8-mr128@extended", what: "u8-mr128, level extended", build: mr(128), level: "extended" },
  {
    name: "fp32-preopt",
    what: "fp32 pre-optimised by onnxruntime-node (extended), served at all",
    build: once("p0", () => preoptimised(fp32Bytes, "extended")),
  },
  {
    name: "u8-mr96-preopt",
    what: "u8-mr96 pre-optimised (extended)",
    build: once("p1", async () => preoptimised(await mr(96)(), "extended")),
  },
  {
    name: "u8-mr128-preopt",
    what: "u8-mr128 pre-optimised (extended)",
    build: once("p2", async () => preoptimised(await mr(128)(), "extended")),
  },
  {
    name: "u8-preopt",
    what: "u8 pre-optimised (extended)",
    build: once("p4", async () => preoptimised(await u8(), "extended")),
  },
  {
    name: "weight-only-preopt",
    what: "weight-only pre-optimised (extended)",
    build: once("p3", async () => preoptimised(await wo(), "extended")),
  },
];
const wanted = values.variants
  ? values.variants.split(",")
  : ["fp32", "weight-only", "u8", "s8", "u8-nodw", "u8-mr96", "u8-mr128"];
const specs = wanted.map((n) => {
  const s = ALL.find((v) => v.name === n);
  if (!s) throw new Error(`unknown variant ${n}; known: ${ALL.map((v) => v.name).join(", ")}`);
  return s;
});
if (specs[0]?.name !== "fp32") specs.unshift(ALL[0] as Spec);

ortWeb.env.wasm.numThreads = 1;
// Not "error": ORT-web prints the profiles through its logger, at the level fixed at initialisation.
ortWeb.env.logLevel = "warning";
const dims =
  manifest.input.layout === "NCHW"
    ? [1, 3, manifest.input.height, manifest.input.width]
    : [1, manifest.input.height, manifest.input.width, 3];
const run = async (s: ortWeb.InferenceSession, x: Float32Array) => {
  const r = await s.run({ [manifest.input.name]: new ortWeb.Tensor("float32", x, dims) }, [manifest.output.name]);
  const t = r[manifest.output.name] as ortWeb.Tensor;
  const p = toProbabilities(
    new Float32Array(t.data as Float32Array),
    [manifest.numClasses],
    manifest.numClasses,
    manifest.output.kind,
  );
  t.dispose();
  return p;
};
const sessionOptions = (spec: Spec, profile: boolean): ortWeb.InferenceSession.SessionOptions => ({
  executionProviders: ["wasm"],
  graphOptimizationLevel: spec.level ?? "all",
  enableProfiling: profile,
});

// Phase 1, agreement: one session at a time (a DenseNet session holds ~100 MB of wasm heap).
const built: { spec: Spec; bytes: Uint8Array }[] = [];
const agreements: Agreement[] = [];
const reference: Float32Array[] = [];
for (const spec of specs) {
  const bytes = await spec.build();
  built.push({ spec, bytes });
  const session = await ortWeb.InferenceSession.create(bytes, sessionOptions(spec, false));
  const pairs = [];
  for (const [i, x] of evalSet.entries()) {
    const p = await run(session, x.tensor);
    if (spec === specs[0]) reference.push(p);
    pairs.push({ fp32: reference[i] as Float32Array, q: p });
  }
  agreements.push(agreement(pairs));
  await session.release();
}

// Phase 2, wall time: every variant loaded (profiler off: it costs per node), run round-robin.
const x = (calib[0] as Sample).tensor;
async function roundRobin(
  profile: boolean,
  n: number,
): Promise<{ sessions: ortWeb.InferenceSession[]; ms: number[][] }> {
  const sessions: ortWeb.InferenceSession[] = [];
  for (const b of built) sessions.push(await ortWeb.InferenceSession.create(b.bytes, sessionOptions(b.spec, profile)));
  for (const s of sessions) await run(s, x); // warm-up
  const ms: number[][] = built.map(() => []);
  for (let r = 0; r < n; r++) {
    for (const [j, s] of sessions.entries()) {
      const t = performance.now();
      await run(s, x);
      (ms[j] as number[]).push(performance.now() - t);
    }
  }
  return { sessions, ms };
}
const timed = await roundRobin(false, rounds);
const wall = timed.ms;
for (const s of timed.sessions) await s.release();
// Phase 3, per-kernel times: the same, with ORT's profiler on.
const { sessions } = await roundRobin(true, Math.max(5, Math.ceil(rounds / 2)));

/**
 * Each session's per-node fastest kernel times, captured from ORT-web's
 * profile output (scripts/onnx/kernel-times.ts) while it ends its profiling;
 * a throwaway session flushes the last lines.
 */
async function kernelSums(all: ortWeb.InferenceSession[]): Promise<{ ms: number; nodes: number }[]> {
  const perSession = all.map(() => new Map<string, number>());
  const capture = new KernelTimeCapture();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    for (const [i, s] of all.entries()) {
      capture.sink = perSession[i];
      s.endProfiling();
      await sleep(200);
      await s.release();
    }
    const flush = await ortWeb.InferenceSession.create(fp32Bytes, {
      executionProviders: ["wasm"],
      enableProfiling: true,
    });
    flush.endProfiling();
    await sleep(300);
    capture.sink = undefined;
    await flush.release();
  } finally {
    capture.stop();
  }
  return perSession.map((m) => {
    let us = 0;
    for (const v of m.values()) us += v;
    return { ms: us / 1000, nodes: m.size };
  });
}
const kernels = await kernelSums(sessions);

const k0 = (kernels[0] as { ms: number }).ms;
const w0 = median(wall[0] as number[]);
console.log(
  `\n${fp32Path}: onnxruntime-web ${ortWeb.env.versions.web} wasm, 1 thread; ${rounds} round-robin runs per variant; agreement vs fp32 on ${evalSet.length} images${values.eval ? ` (${values.eval})` : ""}, calibration on ${calib.length} (${values.calib})\n`,
);
console.log(
  "| variant | what | bytes | nodes | Σ min kernel ms | ratio | wall median ms | ratio | top-1 agree | top-5 overlap | max abs Δp |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const [j, b] of built.entries()) {
  const k = kernels[j] as { ms: number; nodes: number };
  const w = median(wall[j] as number[]);
  const a = agreements[j] as Agreement;
  console.log(
    `| ${b.spec.name} | ${b.spec.what} | ${b.bytes.length} | ${k.nodes} | ${k.ms.toFixed(2)} | ${(k.ms / k0).toFixed(2)} | ${w.toFixed(1)} | ${(w / w0).toFixed(2)} | ${(100 * a.top1_agreement).toFixed(1)}% | ${a.top5_overlap_mean.toFixed(3)} | ${a.max_abs_dprob.toExponential(2)} |`,
  );
}
