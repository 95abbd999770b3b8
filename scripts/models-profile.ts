/**
 * Per-layer kernel times in onnxruntime-web (wasm, 1 thread, the worker's
 * session options), from ORT's own profiler: which precision each
 * Conv/Gemm/MatMul runs fastest in. This is how the served nsfw model's int8
 * set was chosen (see its manifest's quantization.scheme): ORT-web's int8
 * kernels beat fp32 on some layers and lose badly on others (the depthwise
 * convolutions, the wide early layers), so a rule such as a minimum dot-product
 * length is only a proxy.
 *
 *   npm run models:profile -- <fp32 or weight-only.onnx> [<quantised.onnx> ...] [--runs 10] [--out times.json]
 *
 * The first model names the layers. Each later model's nodes are credited to
 * the layer whose name prefixes theirs (ORT renames what it fuses, e.g.
 * block_2_project -> block_2_project_token_2); QuantizeLinear,
 * DequantizeLinear and Transpose nodes go to "glue", the price of switching
 * between precisions and layouts. Per node, the fastest of --runs runs after a
 * warm-up run. To see what int8 costs per layer, profile an everything-int8
 * build (`npm run models:quantize -- ... --min-reduction 0`). Informative only:
 * kernel times drift with machine load, so compare models within one run.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web";
import { KernelTimeCapture } from "./onnx/kernel-times";
import { loadModel, syntheticImageInput, WEIGHT_OPS } from "./onnx/quant";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { runs: { type: "string" }, out: { type: "string" } },
});
if (positionals.length === 0) {
  console.error("usage: npm run models:profile -- <fp32.onnx> [<quantised.onnx> ...] [--runs 10] [--out times.json]");
  process.exit(2);
}
const runs = Number(values.runs ?? 10);
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a positive integer");

ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
// Not "error": ORT-web prints its profile through its logger, at the level fixed at initialisation.
ort.env.logLevel = "warning";

const first = loadModel(positionals[0] as string);
const graph = first.graph ?? {};
const order = (graph.node ?? [])
  .filter((n) => (WEIGHT_OPS as readonly string[]).includes(n.opType ?? ""))
  .map((n) => n.name ?? "");
const layers = [...order].sort((a, b) => b.length - a.length); // longest prefix wins
const { dims, data: x } = syntheticImageInput(first);

function layerOf(node: string): string {
  if (/QuantizeLinear|DequantizeLinear|^Transpose|W_dequantized|\/nchw$/.test(node)) return "glue";
  return layers.find((l) => node === l || node.startsWith(`${l}_`)) ?? "other";
}

const perModel: Record<string, Record<string, number>> = {};
const capture = new KernelTimeCapture();
try {
  // The extra session at the end only flushes the previous one's profile lines.
  for (const path of [...positionals, positionals[0] as string]) {
    const flushOnly = path in perModel;
    const s = await ort.InferenceSession.create(new Uint8Array(readFileSync(path)), {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      enableProfiling: true,
    });
    const times = new Map<string, number>();
    capture.sink = flushOnly ? undefined : times;
    for (let r = 0; r < (flushOnly ? 1 : runs + 1); r++) {
      await s.run({ [s.inputNames[0] as string]: new ort.Tensor("float32", x, dims) });
    }
    s.endProfiling();
    await new Promise((r) => setTimeout(r, 300));
    await s.release();
    if (!flushOnly) perModel[path] = Object.fromEntries(times);
  }
} finally {
  capture.stop();
}

const byLayer = Object.fromEntries(
  Object.entries(perModel).map(([path, nodes]) => {
    const sums: Record<string, number> = {};
    for (const [node, us] of Object.entries(nodes)) {
      const l = layerOf(node);
      sums[l] = (sums[l] ?? 0) + us;
    }
    return [path, sums];
  }),
);
const paths = Object.keys(byLayer);
const rows = [...order, "glue", "other"];
console.log(`| layer | ${paths.map((p) => `${p.split("/").slice(-2).join("/")} µs`).join(" | ")} |`);
console.log(`|---|${paths.map(() => "---:").join("|")}|`);
for (const l of rows) {
  const cells = paths.map((p) => byLayer[p]?.[l]);
  if (cells.every((c) => c === undefined)) continue;
  const best = Math.min(...cells.map((c) => c ?? Number.POSITIVE_INFINITY));
  console.log(
    `| ${l} | ${cells.map((c) => (c === undefined ? "" : c === best && paths.length > 1 ? `**${c}**` : `${c}`)).join(" | ")} |`,
  );
}
const totals = paths.map((p) => Object.values(byLayer[p] ?? {}).reduce((a, b) => a + b, 0));
console.log(`| Σ | ${totals.map((t) => `${(t / 1000).toFixed(2)} ms`).join(" | ")} |`);
if (values.out) writeFileSync(values.out, `${JSON.stringify({ perNode: perModel, byLayer }, null, 1)}\n`);
