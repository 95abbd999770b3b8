/**
 * The peer: TF.js's WASM backend running nsfwjs 4.4.0's own MobileNetV2 vs our
 * served mobilenet-v2-nsfw (the same trained weights, converted) on
 * onnxruntime-web, both in this Node process, one thread, SIMD, alternating on
 * the identical input tensor. The outputs are compared too, so a mismatch in
 * what is being run would show.
 */
import { type BenchContext, iterations } from "../context";
import { ortWebRunner, tfjsWasmNsfwRunner } from "../runtimes";
import { alternate, round2, summarize } from "../stats";

export async function peerSection(ctx: BenchContext): Promise<void> {
  const m = ctx.model("mobilenet-v2-nsfw");
  const ours = await ortWebRunner(m.int8Bytes, m.io, m.manifest.runtime);
  const tfjs = await tfjsWasmNsfwRunner();
  const a = await ours.infer(m.input);
  const b = await tfjs.infer(m.input);
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) maxAbs = Math.max(maxAbs, Math.abs((a[i] as number) - (b[i] as number)));

  const samples = await alternate(
    [
      { name: "ORT-web int8 (ours)", run: () => ours.run(m.input) },
      { name: "TF.js WASM (nsfwjs)", run: () => tfjs.run(m.input) },
    ],
    iterations(ctx.settings, { warmup: 5, iterations: 30 }),
  );
  const ortS = summarize(samples["ORT-web int8 (ours)"] ?? []);
  const tfS = summarize(samples["TF.js WASM (nsfwjs)"] ?? []);
  ctx.raw.peer = { samples, ours: ortS, tfjs: tfS, tfjsBackend: tfjs.backend, tfjsSimd: tfjs.simd, maxAbsDiff: maxAbs };

  const sec = "peer: nsfw MobileNetV2";
  ctx.add({ section: sec, name: "ours: ORT-web int8 in Node p50", value: round2(ortS.median), unit: "ms" });
  ctx.add({
    section: sec,
    name: `TF.js WASM (${tfjs.simd ? "SIMD" : "no SIMD"}, 1 thread) p50`,
    value: round2(tfS.median),
    unit: "ms",
  });
  ctx.add({
    section: sec,
    name: "speed-up vs TF.js WASM (p50 ratio)",
    value: round2(tfS.median / ortS.median),
    unit: "x",
    target: { op: ">=", value: 2 },
    note: `same weights: outputs differ by ≤ ${maxAbs.toExponential(1)}`,
  });
  const wd = ctx.shared["workerdInfer:mobilenet-v2-nsfw"];
  if (wd !== undefined && Number.isFinite(wd)) {
    ctx.add({
      section: sec,
      name: "speed-up vs TF.js WASM, ours in workerd (infer section p50)",
      value: round2(tfS.median / wd),
      unit: "x",
      note: "not alternated with TF.js",
    });
  }
  await ours.release();
  await tfjs.release();
}
