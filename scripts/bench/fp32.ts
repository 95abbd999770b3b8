/**
 * fp32 twins of the committed int8 models, derived in JS.
 *
 * The served models (models/<id>/model.int8.onnx) keep every weight as an int8
 * or uint8 initializer behind a DequantizeLinear node, and QDQ models also put
 * QuantizeLinear→DequantizeLinear pairs on activations. scripts/onnx/quant.ts's
 * dequantizeModel removes the activation pairs and folds each weight
 * DequantizeLinear into a float initializer holding (q - zero_point) * scale:
 * exactly the fp32 graph ORT computes for a weight-only model after folding
 * (float32 arithmetic, same as ORT's DequantizeLinear kernel), and for a QDQ
 * model the fp32 network it was quantised from, with the same weights. That
 * is the fair fp32 baseline for "int8 as served vs fp32". The build's own fp32
 * exports (build/, gitignored) are not needed, so the benchmark runs on a
 * fresh clone.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { dequantizeModel, loadModel, opCounts, saveModel } from "../onnx/quant";

/** Returns the fp32 model bytes, how many DequantizeLinear nodes were folded and how many activation pairs removed. */
export function dequantizeWeights(int8Model: Uint8Array): { bytes: Uint8Array; folded: number; pairs: number } {
  const model = loadModel(int8Model);
  const before = opCounts(model).DequantizeLinear ?? 0;
  const { model: fp32, activationPairs } = dequantizeModel(model);
  return { bytes: saveModel(fp32), folded: before - activationPairs, pairs: activationPairs };
}

/**
 * The fp32 twin of `int8Path`, cached at `cacheDir/<sha256 of the int8 file>.fp32.onnx`
 * (the key changes whenever the int8 model does). With `expectSha256`, the
 * file must be exactly that one (a manifest's pre-optimisation source).
 */
export function fp32Twin(
  int8Path: string,
  cacheDir: string,
  expectSha256?: string,
): { path: string; folded: number | "cached"; pairs?: number } {
  const src = readFileSync(int8Path);
  const full = createHash("sha256").update(src).digest("hex");
  if (expectSha256 && full !== expectSha256) {
    throw new Error(`${int8Path}: sha256 ${full}, but the manifest names ${expectSha256}`);
  }
  const sha = full.slice(0, 16);
  const path = `${cacheDir}/v2-${sha}.fp32.onnx`;
  if (existsSync(path)) return { path, folded: "cached" };
  const { bytes, folded, pairs } = dequantizeWeights(new Uint8Array(src));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return { path, folded, pairs };
}
