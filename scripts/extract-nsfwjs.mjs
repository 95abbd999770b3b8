// Extract nsfwjs's bundled MobileNetV2 (TF.js layers format) from the UMD
// .min.js wrappers it ships, into a plain model.json + weights.bin pair.
// Usage: node scripts/extract-nsfwjs.mjs [outDir=build/nsfwjs/mobilenet_v2]
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import vm from "node:vm";

const require = createRequire(import.meta.url);
// "nsfwjs/package.json" is not exported; resolve the CJS entry and walk up from dist/cjs.
const pkgDir = path.resolve(path.dirname(require.resolve("nsfwjs")), "../..");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const modelDir = path.join(pkgDir, "dist/models/mobilenet_v2");
const outDir = process.argv[2] ?? "build/nsfwjs/mobilenet_v2";

/** Evaluate a browserify UMD bundle in a sandbox with a CommonJS `module`, return its export. */
function evalUmd(file) {
  const module = { exports: {} };
  vm.runInNewContext(fs.readFileSync(file, "utf8"), { module, exports: module.exports });
  return module.exports;
}

const modelJson = evalUmd(path.join(modelDir, "model.min.js"));
const shard = evalUmd(path.join(modelDir, "group1-shard1of1.min.js")); // base64 string
const paths = modelJson.weightsManifest.flatMap((g) => g.paths);
if (paths.length !== 1) throw new Error(`expected one weight shard, got ${paths.join(",")}`);
const weights = Buffer.from(shard, "base64");
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(
  path.join(outDir, "model.json"),
  JSON.stringify({ ...modelJson, nsfwjsVersion: pkg.version }, null, 1),
);
fs.writeFileSync(path.join(outDir, "weights.bin"), weights);
console.log(`nsfwjs@${pkg.version}: ${weights.length} weight bytes -> ${outDir}`);
