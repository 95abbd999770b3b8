/**
 * Adds any ONNX image classifier to edgetag without a code change:
 *
 *   npm run models:import -- zoo/mobilenetv2-12-int8.onnx --id mobilenetv2-zoo-int8 \
 *     --preset imagenet --trained --license Apache-2.0
 *
 * The graph is checked (one float32 image input, batch 1 or symbolic, 3 channels,
 * a size the preprocessing produces, one score per label) and run for real in
 * onnxruntime-node; then models/<id>/ (model.onnx, manifest.json with sha256,
 * parameters and MACs, model.onnx.sha256), the label set, models/SHA256SUMS and
 * src/models/catalog.generated.ts are written and the file goes to local R2.
 * Any mismatch: a message naming what is wrong, exit code 1, nothing written.
 */
import { pathToFileURL } from "node:url";
import { ImportError, parseImportArgs, USAGE } from "./import/args";
import { type ImportResult, importModel } from "./import/run";
import { MODELS_DIR } from "./model-files";

function report(r: ImportResult): string {
  const m = r.manifest;
  const lines = [
    `imported ${m.id} (${m.trained ? "trained" : "UNTRAINED"}) into ${r.dir}`,
    `  file      ${r.modelFile} (${m.file.bytes} bytes, sha256 ${m.file.sha256})`,
    `  r2 key    ${m.file.r2Key}`,
    `  input     ${m.input.name} ${m.input.layout} ${m.input.width}x${m.input.height}`,
    `  output    ${m.output.name} (${m.output.kind}), ${m.numClasses} classes, labels "${m.labels}"`,
    `  features  ${m.output.features ? `${m.output.features.name} (${m.output.features.dim})` : "none"}`,
    `  stats     ${m.stats.parameters.toLocaleString("en-US")} parameters, ${m.stats.macs.toLocaleString("en-US")} MACs`,
    `  quant     ${m.quantization.scheme}`,
    `  catalog   ${r.catalogWritten ? "src/models/catalog.generated.ts regenerated" : "not regenerated (--out-dir is not models/)"}`,
  ];
  if (r.upload === "uploaded") lines.push("  upload    local R2: uploaded");
  if (r.upload === "present") lines.push("  upload    local R2: already there");
  if (r.upload === "skipped") lines.push("  upload    skipped (--no-upload)");
  if (r.upload === "remote")
    lines.push("  upload    run this to put it in your Cloudflare bucket:", `    ${r.remoteCommand}`);
  for (const note of r.notes) lines.push(`  note      ${note}`);
  return lines.join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const options = parseImportArgs(argv, MODELS_DIR);
    if (options === "help") {
      console.log(USAGE);
      return 0;
    }
    console.log(report(await importModel(options)));
    return 0;
  } catch (e) {
    if (!(e instanceof ImportError)) throw e;
    console.error(`models:import: ${e.message}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : e);
      process.exit(1);
    },
  );
}
