/**
 * Saves onnxruntime-node's optimised graph of a model (level all without the
 * x86-only NchwcTransformer: `preoptimize` in scripts/onnx/model.ts), for
 * serving with graph optimisation disabled: a cold isolate then skips the
 * fusions (for a QDQ model, every Q/DQ group into a QLinearConv) that it would
 * otherwise redo on every session build. DenseNet-121 int8 in workerd: session
 * creation ~180 against ~350 ms.
 *
 *   npm run models:preoptimize -- <model.onnx> --manifest <models/<id>/manifest.json> --out <out.onnx> [--images <dir>]
 *
 * Before writing, it checks in onnxruntime-web (the worker's runtime) that
 * the optimised graph at level "disabled" returns bit for bit what the input
 * returns at level "all", on every output, for each image in --images
 * (default test/fixtures/photos), preprocessed as the worker does. Anything
 * else is an error: the served file must compute what was measured.
 *
 * The result is tied to this onnxruntime version's optimiser; re-run it when
 * onnxruntime is upgraded. Then `npm run models:install -- <id> <out.onnx> --preoptimized-from <model.onnx>`
 * records the source and sets the manifest's runtime.graphOptimizationLevel.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ModelManifest } from "../src/models/manifest";
import { ROOT, sha256Hex } from "./model-files";
import { loadSamples, UsageError, webRunner } from "./models-quantize";
import { preoptimize } from "./onnx/model";

/**
 * Largest |difference| between `source` at level all and `optimised` at level
 * disabled in onnxruntime-web, over every output and sample, and how many
 * values were compared.
 */
export async function servedDifference(
  source: Uint8Array,
  optimised: Uint8Array,
  manifest: ModelManifest,
  samples: readonly { tensor: Float32Array }[],
): Promise<{ maxAbs: number; values: number }> {
  const outputs = [manifest.output.name, ...(manifest.output.features ? [manifest.output.features.name] : [])];
  const a = await webRunner(source, manifest, "all");
  const b = await webRunner(optimised, manifest, "disabled");
  let maxAbs = 0;
  let values = 0;
  try {
    for (const s of samples) {
      const ra = await a.run(s.tensor, outputs);
      const rb = await b.run(s.tensor, outputs);
      for (const o of outputs) {
        const x = ra[o] as Float32Array;
        const y = rb[o] as Float32Array;
        if (x.length !== y.length) throw new Error(`output ${o}: ${x.length} against ${y.length} values`);
        for (let i = 0; i < x.length; i++) {
          const d = Math.abs((x[i] as number) - (y[i] as number));
          // NaN compares false: count it as a difference.
          maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(maxAbs, d);
        }
        values += x.length;
      }
    }
  } finally {
    await a.release();
    await b.release();
  }
  return { maxAbs, values };
}

export async function preoptimizeCommand(argv: string[], log: (s: string) => void = console.log): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { manifest: { type: "string" }, out: { type: "string" }, images: { type: "string" } },
  });
  const input = positionals[0];
  if (!input || !values.manifest || !values.out) {
    throw new UsageError(
      "usage: npm run models:preoptimize -- <model.onnx> --manifest <models/<id>/manifest.json> --out <out.onnx> [--images <dir>]",
    );
  }
  const manifest = ModelManifest.parse(JSON.parse(readFileSync(values.manifest, "utf8")));
  const source = new Uint8Array(readFileSync(input));
  const optimised = await preoptimize(source, values.out);
  const { samples } = await loadSamples(values.images ?? join(ROOT, "test/fixtures/photos"), manifest);
  const { maxAbs, values: n } = await servedDifference(source, optimised, manifest, samples);
  if (maxAbs !== 0) {
    throw new Error(`the optimised graph differs from ${input} in onnxruntime-web by up to ${maxAbs}: not written`);
  }
  writeFileSync(values.out, optimised);
  log(
    `wrote ${values.out} (${optimised.length} bytes, sha256 ${sha256Hex(optimised)}) from ${input} (sha256 ${sha256Hex(source)}); ` +
      `onnxruntime-web at level disabled matches the source at level all bit for bit (${samples.length} images, ${n} values)`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  preoptimizeCommand(process.argv.slice(2)).catch((e) => {
    console.error(`models:preoptimize: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  });
}
