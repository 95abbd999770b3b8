/**
 * Installs a rebuilt model file (e.g. `npm run models:quantize` output) as a
 * model's served file: copies it to models/<id>/<file name from the manifest>,
 * then updates the manifest's sha256, size and content-addressed R2 key, the
 * .sha256 file and models/SHA256SUMS. With --report, the quantize report's
 * `fidelity.quantization` goes into the manifest too.
 *
 *   npm run models:install -- <id> <model.onnx> [--report <quantize report.json>]
 *
 * Then `npm run models:seed` uploads it locally (or `-- --remote`).
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ModelManifest } from "../src/models/manifest";
import { jsonText, MODELS_DIR, r2KeyFor, sha256Hex, sha256Line, writeSha256Sums } from "./model-files";

const { positionals, values } = parseArgs({ allowPositionals: true, options: { report: { type: "string" } } });
const [id, file] = positionals;
if (!id || !file) {
  console.error("usage: npm run models:install -- <id> <model.onnx> [--report <report.json>]");
  process.exit(1);
}
const manifestPath = join(MODELS_DIR, id, "manifest.json");
const manifest = ModelManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
const fileName = manifest.file.r2Key.split("/").pop() as string;
const bytes = new Uint8Array(readFileSync(file));
const sha = sha256Hex(bytes);
copyFileSync(file, join(MODELS_DIR, id, fileName));
writeFileSync(join(MODELS_DIR, id, `${fileName}.sha256`), sha256Line(sha, fileName));

const fidelity = { ...(manifest.fidelity ?? {}) };
if (values.report) {
  const report = JSON.parse(readFileSync(values.report, "utf8")) as { fidelity?: { quantization?: unknown } };
  if (!report.fidelity?.quantization) throw new Error(`${values.report} has no fidelity.quantization`);
  fidelity.quantization = report.fidelity.quantization;
}
const next = ModelManifest.parse({
  ...manifest,
  file: { r2Key: r2KeyFor(id, sha, fileName), sha256: sha, bytes: bytes.byteLength },
  fidelity,
});
writeFileSync(manifestPath, jsonText(next));
await writeSha256Sums(MODELS_DIR);
console.log(`${id}: ${fileName} ${bytes.byteLength} B sha256 ${sha}`);
