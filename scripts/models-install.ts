/**
 * Installs a rebuilt model file (e.g. `npm run models:quantize` output) as a
 * model's served file: copies it to models/<id>/<file name from the manifest>,
 * then updates the manifest's sha256, size and content-addressed R2 key, the
 * .sha256 file and models/SHA256SUMS. With --report, the quantize report's
 * `fidelity.quantization` goes into the manifest too. With
 * --preoptimized-from (the file `npm run models:preoptimize` read, kept in the
 * repository), the manifest's runtime records it and serves the file with
 * graph optimisation disabled; without it, any such record is dropped, since
 * it would describe the previous file. The runtime's `warmup` is set to "int8"
 * exactly when the file runs onnxruntime's integer kernels.
 *
 *   npm run models:install -- <id> <model.onnx> [--report <quantize report.json>] [--preoptimized-from <source.onnx>]
 *
 * Then `npm run models:seed` uploads it locally (or `-- --remote`).
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import ortNode from "onnxruntime-node";
import { ModelManifest } from "../src/models/manifest";
import { jsonText, MODELS_DIR, ROOT, r2KeyFor, sha256Hex, sha256Line, writeSha256Sums } from "./model-files";
import { decodeModel, PREOPTIMIZE_LEVEL, runsIntegerKernels } from "./onnx/model";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { report: { type: "string" }, "preoptimized-from": { type: "string" } },
});
const [id, file] = positionals;
if (!id || !file) {
  console.error(
    "usage: npm run models:install -- <id> <model.onnx> [--report <report.json>] [--preoptimized-from <source.onnx>]",
  );
  process.exit(1);
}
const manifestPath = join(MODELS_DIR, id, "manifest.json");
const manifest = ModelManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
const fileName = manifest.file.r2Key.split("/").pop() as string;
const bytes = new Uint8Array(readFileSync(file));
const sha = sha256Hex(bytes);
const runtime = withWarmup(nextRuntime(manifest, values["preoptimized-from"]), bytes);
copyFileSync(file, join(MODELS_DIR, id, fileName));
writeFileSync(join(MODELS_DIR, id, `${fileName}.sha256`), sha256Line(sha, fileName));

const fidelity = { ...(manifest.fidelity ?? {}) };
if (values.report) {
  const report = JSON.parse(readFileSync(values.report, "utf8")) as { fidelity?: { quantization?: unknown } };
  if (!report.fidelity?.quantization) throw new Error(`${values.report} has no fidelity.quantization`);
  fidelity.quantization = report.fidelity.quantization;
}
const { runtime: _previous, ...rest } = manifest;
const next = ModelManifest.parse({
  ...rest,
  file: { r2Key: r2KeyFor(id, sha, fileName), sha256: sha, bytes: bytes.byteLength },
  ...(runtime ? { runtime } : {}),
  fidelity,
});
writeFileSync(manifestPath, jsonText(next));
await writeSha256Sums(MODELS_DIR);
console.log(`${id}: ${fileName} ${bytes.byteLength} B sha256 ${sha}`);

/**
 * The manifest's runtime block for the new file. With a pre-optimisation
 * source: served with optimisation off, the source recorded. Without one, a
 * record left from a pre-optimised file is dropped (it described that file),
 * and so is the whole block if nothing else was in it.
 */
function nextRuntime(manifest: ModelManifest, from: string | undefined): ModelManifest["runtime"] {
  const previous = manifest.runtime;
  if (from) {
    const path = relative(ROOT, resolve(from));
    if (path.startsWith("..")) throw new Error(`--preoptimized-from must be inside the repository: ${from}`);
    return {
      sessionConfig: previous?.sessionConfig ?? {},
      graphOptimizationLevel: "disabled",
      preoptimized: {
        from: path,
        sha256: sha256Hex(new Uint8Array(readFileSync(from))),
        by: `npm run models:preoptimize (onnxruntime-node ${ortNode.env.versions.node ?? "?"}, graph optimisation level ${PREOPTIMIZE_LEVEL})`,
      },
      why:
        previous?.why ||
        "The graph is onnxruntime-node's optimised one (npm run models:preoptimize): a cold isolate skips the optimiser.",
    };
  }
  if (!previous?.preoptimized) return previous;
  console.log(
    `${manifest.id}: dropped runtime.preoptimized and graphOptimizationLevel (they described the previous file)`,
  );
  if (Object.keys(previous.sessionConfig).length === 0) return undefined;
  console.log(`${manifest.id}: kept runtime.sessionConfig; check that runtime.why still describes it`);
  return { sessionConfig: previous.sessionConfig, why: previous.why };
}

/**
 * `runtime` with `warmup: "int8"` if the file runs integer kernels (the worker
 * then heats them before building its session: warmUpInt8 in
 * src/inference/ort.ts), without it otherwise.
 */
function withWarmup(runtime: ModelManifest["runtime"], file: Uint8Array): ModelManifest["runtime"] {
  const qdqOff = runtime?.sessionConfig["session.disable_quant_qdq"] === "1";
  const integer = !qdqOff && runsIntegerKernels(decodeModel(file));
  if (!integer) {
    if (!runtime?.warmup) return runtime;
    const { warmup: _dropped, ...rest } = runtime;
    return rest;
  }
  return {
    ...(runtime ?? {
      sessionConfig: {},
      why: "The graph runs onnxruntime's integer kernels, warmed up before its first session is built.",
    }),
    warmup: "int8",
  };
}
