/**
 * Copies measured fidelity figures into the manifests, so GET /v1/models/:id
 * shows users what they are getting. The figures come from test runs, never
 * from this script:
 *
 *   test-results/parity/parity-<id>.json            test/workerd/parity.test.ts (worker vs reference, photo set)
 *   test-results/parity/nsfwjs-<id>.json            test/node/nsfw-fidelity.test.ts (served model vs nsfwjs itself)
 *   test-results/quantize/<id>.json                 npm run models:quantize --report (when its output is the served file)
 *
 * Usage: npm test (or the two test files), then `npm run models:fidelity`.
 * Manifests are rewritten only where a report exists; the model files and
 * their sha256 are untouched.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ModelManifest } from "../src/models/manifest";
import { writeSha256Sums } from "./model-files";

const ROOT = resolve(import.meta.dirname, "..");
const PARITY = join(ROOT, "test-results", "parity");

function readJson(path: string): Record<string, unknown> | undefined {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>) : undefined;
}

const round = (v: unknown) => (typeof v === "number" ? Number(v.toPrecision(3)) : v);

for (const id of readdirSync(join(ROOT, "models"))) {
  const manifestPath = join(ROOT, "models", id, "manifest.json");
  if (!existsSync(manifestPath)) continue;
  const manifest = ModelManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
  const fidelity: Record<string, unknown> = { ...(manifest.fidelity ?? {}) };
  let changed = false;

  const parity = readJson(join(PARITY, `parity-${id}.json`));
  if (parity) {
    fidelity.pipeline_parity = {
      what: "the worker in workerd (decode, preprocess, infer) vs an independent reference: PIL decode (byte-identical to the worker's full-resolution decode), literal torchvision Resize(256)+CenterCrop(224)+Normalize (or nsfwjs's TF.js resize for NHWC models), onnxruntime-node",
      test: "test/workerd/parity.test.ts",
      photos: parity.photos,
      top1_agreement: parity.top1_agreement,
      top5_overlap_min: parity.top5_overlap_min,
      top5_overlap_mean: parity.top5_overlap_mean,
      max_abs_dprob_top5: round(parity.max_abs_dprob_top5),
      median_abs_dprob_top5: round(parity.median_abs_dprob_top5),
    };
    changed = true;
  }
  const quantize = readJson(join(ROOT, "test-results", "quantize", `${id}.json`)) as
    | { output?: { sha256?: string }; fidelity?: { quantization?: unknown } }
    | undefined;
  // Only a report about the very file this manifest serves.
  if (quantize?.fidelity?.quantization && quantize.output?.sha256 === manifest.file.sha256) {
    fidelity.quantization = quantize.fidelity.quantization;
    changed = true;
  }
  const original = readJson(join(PARITY, `nsfwjs-${id}.json`));
  if (original) {
    fidelity.reference_implementation = {
      test: "test/node/nsfw-fidelity.test.ts",
      ...Object.fromEntries(Object.entries(original).map(([k, v]) => [k, round(v)])),
    };
    changed = true;
  }
  if (!changed) continue;
  const next = ModelManifest.parse({ ...manifest, fidelity });
  writeFileSync(manifestPath, `${JSON.stringify(next, null, 2)}\n`);
  console.log(`${id}: fidelity ${Object.keys(fidelity).join(", ")}`);
}
// Manifests are listed in SHA256SUMS too.
await writeSha256Sums(join(ROOT, "models"));
