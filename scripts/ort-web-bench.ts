/**
 * Latency of several models against a reference in onnxruntime-web (wasm,
 * 1 thread, the worker's session options), all sessions in ONE process and
 * run round-robin so machine load hits each alike: median wall time per run
 * and its ratio to the reference (the first model).
 *
 *   npx tsx scripts/ort-web-bench.ts <reference.onnx> <a.onnx> [b.onnx ...] [--rounds 25] [--out bench.json]
 *
 * Informative only.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web";
import { loadModel, syntheticImageInput } from "./onnx/quant";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { rounds: { type: "string" }, out: { type: "string" } },
});
if (positionals.length < 2) {
  console.error(
    "usage: tsx scripts/ort-web-bench.ts <reference.onnx> <a.onnx> [b.onnx ...] [--rounds 25] [--out f.json]",
  );
  process.exit(2);
}
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";
const rounds = Number(values.rounds ?? 25);
// The input shape from the reference model's graph (NCHW torchvision exports, NHWC nsfwjs).
const { dims, data: x } = syntheticImageInput(loadModel(positionals[0] as string));
const sessions: ort.InferenceSession[] = [];
for (const p of positionals) {
  sessions.push(
    await ort.InferenceSession.create(new Uint8Array(readFileSync(p)), {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    }),
  );
}
const run = async (s: ort.InferenceSession) => {
  const r = await s.run({ [s.inputNames[0] as string]: new ort.Tensor("float32", x, dims) });
  for (const t of Object.values(r)) t.dispose();
};
for (let w = 0; w < 2; w++) for (const s of sessions) await run(s);
const ms: number[][] = sessions.map(() => []);
for (let r = 0; r < rounds; r++) {
  for (const [i, s] of sessions.entries()) {
    const t = performance.now();
    await run(s);
    (ms[i] as number[]).push(performance.now() - t);
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const ref = median(ms[0] as number[]);
const out = positionals.map((p, i) => ({
  model: p,
  median_ms: median(ms[i] as number[]),
  ratio: median(ms[i] as number[]) / ref,
}));
for (const o of out) console.log(`${o.model}\t${o.median_ms.toFixed(1)} ms\t${o.ratio.toFixed(3)}`);
if (values.out) writeFileSync(values.out, `${JSON.stringify({ rounds, results: out }, null, 1)}\n`);
for (const s of sessions) await s.release();
