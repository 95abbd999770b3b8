#!/usr/bin/env node
// Verifies the committed models against their manifests and measures what the
// int8 weight-only quantisation costs relative to the fp32 export.
//
//   node scripts/verify-models.mjs            # every models/*/manifest.json
//   node scripts/verify-models.mjs densenet-121
//
// Per model:
//   * sha256 and byte size of models/<id>/model.int8.onnx vs the manifest
//     (exit code 1 on mismatch: the manifest is what the Worker trusts);
//   * runs the int8 model and, when build/models/<id>/model.fp32.onnx exists
//     (it is gitignored; `python3 scripts/build_models.py` recreates it), the
//     fp32 model on N deterministic synthetic inputs with one intra-op thread;
//   * prints top-1 agreement, top-5 overlap, max |p_int8 - p_fp32|, median
//     latencies, and the int8 top-1/top-2 softmax margins and top-5/top-6
//     logit gaps (small gaps = top-5 comparisons that flip on tiny changes).
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const N = 32;
const SIZE = 224;
const WARMUP = 2;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Input i: an 8-bit RGB image (values rounded like a decoded file) that is a
 * smooth random colour field (kind 0), a linear gradient (1) or soft blobs (2),
 * normalised with the manifest's preprocess constants into NCHW float32.
 */
function syntheticInput(i, pre, layout) {
  const rnd = mulberry32(1000 + i);
  const kind = i % 3;
  const rgb = new Float64Array(SIZE * SIZE * 3);
  if (kind === 0) {
    const g = 3 + Math.floor(rnd() * 6);
    const grid = Array.from({ length: (g + 1) * (g + 1) * 3 }, rnd);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) {
        const fx = (x / (SIZE - 1)) * g;
        const fy = (y / (SIZE - 1)) * g;
        const x0 = Math.min(Math.floor(fx), g - 1);
        const y0 = Math.min(Math.floor(fy), g - 1);
        const tx = fx - x0;
        const ty = fy - y0;
        for (let c = 0; c < 3; c++) {
          const at = (yy, xx) => grid[(yy * (g + 1) + xx) * 3 + c];
          rgb[(y * SIZE + x) * 3 + c] =
            (at(y0, x0) * (1 - tx) + at(y0, x0 + 1) * tx) * (1 - ty) +
            (at(y0 + 1, x0) * (1 - tx) + at(y0 + 1, x0 + 1) * tx) * ty;
        }
      }
  } else if (kind === 1) {
    const ang = rnd() * 2 * Math.PI;
    const c0 = [rnd(), rnd(), rnd()];
    const c1 = [rnd(), rnd(), rnd()];
    const ca = Math.cos(ang);
    const sa = Math.sin(ang);
    const lo = Math.min(0, ca) + Math.min(0, sa);
    const hi = Math.max(0, ca) + Math.max(0, sa);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) {
        const t = ((ca * x + sa * y) / (SIZE - 1) - lo) / (hi - lo);
        for (let c = 0; c < 3; c++) rgb[(y * SIZE + x) * 3 + c] = c0[c] * (1 - t) + c1[c] * t;
      }
  } else {
    const bg = [rnd(), rnd(), rnd()];
    for (let p = 0; p < SIZE * SIZE; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = bg[c];
    const blobs = 2 + Math.floor(rnd() * 4);
    for (let b = 0; b < blobs; b++) {
      const cx = rnd();
      const cy = rnd();
      const sig = 0.05 + 0.2 * rnd();
      const col = [rnd(), rnd(), rnd()];
      for (let y = 0; y < SIZE; y++)
        for (let x = 0; x < SIZE; x++) {
          const dx = x / (SIZE - 1) - cx;
          const dy = y / (SIZE - 1) - cy;
          const w = Math.exp(-(dx * dx + dy * dy) / (2 * sig * sig));
          for (let c = 0; c < 3; c++) {
            const k = (y * SIZE + x) * 3 + c;
            rgb[k] = rgb[k] * (1 - w) + col[c] * w;
          }
        }
    }
  }
  const out = new Float32Array(3 * SIZE * SIZE);
  for (let p = 0; p < SIZE * SIZE; p++)
    for (let c = 0; c < 3; c++) {
      const byte = Math.round(Math.min(1, Math.max(0, rgb[p * 3 + c])) * 255);
      out[layout === "NHWC" ? p * 3 + c : c * SIZE * SIZE + p] = (byte * pre.rescale - pre.mean[c]) / pre.std[c];
    }
  return out;
}

function softmax(logits) {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  const e = logits.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function topk(arr, k) {
  return Array.from(arr.keys())
    .sort((a, b) => arr[b] - arr[a] || a - b)
    .slice(0, k);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const quantiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.round(p * (s.length - 1)))];
  return `min ${q(0).toFixed(4)}  p10 ${q(0.1).toFixed(4)}  median ${q(0.5).toFixed(4)}  p90 ${q(0.9).toFixed(4)}  max ${q(1).toFixed(4)}`;
};

async function runAll(path, manifest, inputs, extra) {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    ...(extra ? { extra } : {}),
  });
  const outputs = [];
  const times = [];
  for (let i = 0; i < inputs.length + WARMUP; i++) {
    const x = inputs[i % inputs.length];
    const feeds = {
      [manifest.input.name]: new ort.Tensor(
        "float32",
        x,
        manifest.input.layout === "NHWC"
          ? [1, manifest.input.height, manifest.input.width, 3]
          : [1, 3, manifest.input.height, manifest.input.width],
      ),
    };
    const t0 = performance.now();
    const r = await session.run(feeds);
    const dt = performance.now() - t0;
    if (i < WARMUP) continue;
    times.push(dt);
    const out = r[manifest.output.name];
    if (out.dims.length !== 2 || out.dims[1] !== manifest.numClasses)
      throw new Error(`${path}: output dims ${out.dims} != [1, ${manifest.numClasses}]`);
    outputs.push(Float32Array.from(out.data));
  }
  await session.release();
  return { outputs, medianMs: median(times) };
}

async function verify(id) {
  const dir = join(ROOT, "models", id);
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const file = join(dir, "model.int8.onnx");
  let ok = true;
  console.log(`\n== ${id} (${manifest.version}, trained=${manifest.trained})`);
  const bytes = readFileSync(file);
  const sha = createHash("sha256").update(bytes).digest("hex");
  const shaOk = sha === manifest.file.sha256;
  const sizeOk = bytes.length === manifest.file.bytes;
  const keyOk = manifest.file.r2Key === `models/${id}/${sha.slice(0, 16)}/model.int8.onnx`;
  console.log(`sha256  ${sha} ${shaOk ? "OK" : `MISMATCH (manifest ${manifest.file.sha256})`}`);
  console.log(`bytes   ${bytes.length} ${sizeOk ? "OK" : `MISMATCH (manifest ${manifest.file.bytes})`}`);
  console.log(`r2Key   ${manifest.file.r2Key} ${keyOk ? "OK" : "MISMATCH (not content-addressed by this sha)"}`);
  if (manifest.id !== id) {
    console.log(`id      ${manifest.id} MISMATCH (directory ${id})`);
    ok = false;
  }
  ok &&= shaOk && sizeOk && keyOk;
  if (!ok) return false;

  const inputs = Array.from({ length: N }, (_, i) => syntheticInput(i, manifest.preprocess, manifest.input.layout));
  const q = await runAll(file, manifest, inputs);
  // Same model with ORT's QDQ handling disabled, which lets constant folding
  // turn DequantizeLinear(int8 initializer) into an fp32 initializer.
  const qf = await runAll(file, manifest, inputs, { session: { disable_quant_qdq: "1" } });
  const fp32Path = join(ROOT, "build", "models", id, "model.fp32.onnx");
  const f = existsSync(fp32Path) ? await runAll(fp32Path, manifest, inputs) : undefined;

  const margins = [];
  const gaps56 = [];
  const top1s = new Set();
  let agree1 = 0;
  let overlap5 = 0;
  let sameSet5 = 0;
  let sameOrder5 = 0;
  let maxDp = 0;
  let maxDl = 0;
  for (let i = 0; i < N; i++) {
    const pq = softmax(Array.from(q.outputs[i]));
    const t = topk(pq, 6);
    top1s.add(t[0]);
    margins.push(pq[t[0]] - pq[t[1]]);
    gaps56.push(q.outputs[i][t[4]] - q.outputs[i][t[5]]);
    for (let c = 0; c < q.outputs[i].length; c++) maxDl = Math.max(maxDl, Math.abs(q.outputs[i][c] - qf.outputs[i][c]));
    if (!f) continue;
    const pf = softmax(Array.from(f.outputs[i]));
    const tf = topk(pf, 5);
    const tq = t.slice(0, 5);
    if (tq[0] === tf[0]) agree1++;
    const inter = tq.filter((c) => tf.includes(c)).length;
    overlap5 += inter;
    if (inter === 5) sameSet5++;
    if (tq.every((c, k) => c === tf[k])) sameOrder5++;
    for (let c = 0; c < pq.length; c++) maxDp = Math.max(maxDp, Math.abs(pq[c] - pf[c]));
  }
  console.log(`inputs  ${N} synthetic 224x224 (8-bit, normalised per manifest); distinct int8 top-1: ${top1s.size}`);
  if (f) {
    console.log(
      `int8 vs fp32: top-1 agreement ${agree1}/${N}; mean top-5 overlap ${(overlap5 / N).toFixed(2)}/5; ` +
        `identical top-5 set ${sameSet5}/${N}, identical top-5 order ${sameOrder5}/${N}; max |dp| ${maxDp.toExponential(3)}`,
    );
  } else {
    console.log(`fp32 model not found at ${fp32Path} (run scripts/build_models.py); skipping comparison`);
  }
  console.log(`int8 vs int8 with DQ constant-folded: max |dlogit| ${maxDl.toExponential(3)}`);
  console.log(`int8 top1-top2 softmax margin:  ${quantiles(margins)}`);
  console.log(`int8 top5-top6 logit gap:       ${quantiles(gaps56)}`);
  console.log(
    `median latency (1 thread): int8 ${q.medianMs.toFixed(1)} ms; int8 DQ-folded (disable_quant_qdq=1) ` +
      `${qf.medianMs.toFixed(1)} ms${f ? `; fp32 ${f.medianMs.toFixed(1)} ms` : ""}`,
  );
  return true;
}

const wanted = process.argv.slice(2);
const ids = readdirSync(join(ROOT, "models"))
  .filter(
    (d) => existsSync(join(ROOT, "models", d, "manifest.json")) && statSync(join(ROOT, "models", d)).isDirectory(),
  )
  .filter((d) => wanted.length === 0 || wanted.includes(d))
  .sort();
if (ids.length === 0) {
  console.error("no models found");
  process.exit(1);
}
let allOk = true;
for (const id of ids) allOk = (await verify(id)) && allOk;
console.log(allOk ? "\nall manifests match their files" : "\nFAILED: manifest/file mismatch");
process.exit(allOk ? 0 : 1);
