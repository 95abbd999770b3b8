/**
 * fp32 twins of the committed weight-only int8 models, derived in JS.
 *
 * The served models (models/<id>/model.int8.onnx) keep every weight as an int8
 * or uint8 initializer followed by a DequantizeLinear node; activations are
 * fp32 throughout. Replacing each such DequantizeLinear by a float initializer
 * holding (q - zero_point) * scale gives exactly the fp32 graph ORT computes
 * after folding the dequantisation (float32 arithmetic, same as ORT's
 * DequantizeLinear kernel), so it is the fair fp32 baseline for "int8 as
 * served vs fp32". The build's own fp32 exports (build/, gitignored) are not
 * needed, so the benchmark runs on a fresh clone.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type NodeProto = onnxProto.onnx.INodeProto;

function readQuantized(t: TensorProto): Int32Array {
  const raw = t.rawData;
  const n = (t.dims ?? []).reduce<number>((a: number, d) => a * Number(d), 1);
  if (raw && raw.length > 0) {
    if (t.dataType === DataType.INT8) return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.length));
    if (t.dataType === DataType.UINT8) return Int32Array.from(raw);
  } else if (t.int32Data && t.int32Data.length === n) {
    return Int32Array.from(t.int32Data);
  }
  throw new Error(`initializer ${t.name}: unsupported quantized storage (type ${t.dataType})`);
}

function readFloat(t: TensorProto): Float32Array {
  const raw = t.rawData;
  if (raw && raw.length > 0) return new Float32Array(raw.slice().buffer);
  if (t.floatData && t.floatData.length > 0) return Float32Array.from(t.floatData);
  throw new Error(`initializer ${t.name}: no float data`);
}

/** Returns the fp32 model bytes and how many DequantizeLinear nodes were folded. */
export function dequantizeWeights(int8Model: Uint8Array): { bytes: Uint8Array; folded: number } {
  const model = onnx.ModelProto.decode(int8Model);
  const graph = model.graph;
  if (!graph) throw new Error("model has no graph");
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? "", t]));
  const keep: NodeProto[] = [];
  const added: TensorProto[] = [];
  let folded = 0;
  for (const node of graph.node ?? []) {
    const [xName, scaleName, zpName] = node.input ?? [];
    const x = node.opType === "DequantizeLinear" ? inits.get(xName ?? "") : undefined;
    const scaleT = inits.get(scaleName ?? "");
    if (!x || !scaleT) {
      keep.push(node);
      continue;
    }
    const zpT = zpName ? inits.get(zpName) : undefined;
    const q = readQuantized(x);
    const scale = readFloat(scaleT);
    const zp = zpT ? readQuantized(zpT) : new Int32Array(scale.length);
    const dims = (x.dims ?? []).map(Number);
    const axisAttr = node.attribute?.find((a) => a.name === "axis");
    let axis = axisAttr ? Number(axisAttr.i) : 1;
    if (axis < 0) axis += dims.length;
    // Per-tensor when the scale is a scalar; per-axis otherwise (ONNX DequantizeLinear semantics).
    const perAxis = scale.length > 1;
    const inner = perAxis ? dims.slice(axis + 1).reduce((a, d) => a * d, 1) : 1;
    const channels = perAxis ? (dims[axis] as number) : 1;
    const out = new Float32Array(q.length);
    for (let i = 0; i < q.length; i++) {
      const c = perAxis ? Math.floor(i / inner) % channels : 0;
      out[i] = Math.fround(((q[i] as number) - (zp[c] as number)) * (scale[c] as number));
    }
    added.push({
      name: node.output?.[0] ?? "",
      dims: x.dims ?? [],
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(out.buffer),
    });
    folded++;
  }
  graph.node = keep;
  // Drop initializers nothing reads any more (the int8 codes, scales and zero points).
  const used = new Set<string>();
  for (const n of keep) for (const i of n.input ?? []) used.add(i);
  for (const o of graph.output ?? []) used.add(o.name ?? "");
  graph.initializer = [...(graph.initializer ?? []).filter((t) => used.has(t.name ?? "")), ...added];
  return { bytes: onnx.ModelProto.encode(model).finish(), folded };
}

/**
 * The fp32 twin of `int8Path`, cached at `cacheDir/<sha256 of the int8 file>.fp32.onnx`
 * (the key changes whenever the int8 model does).
 */
export function fp32Twin(int8Path: string, cacheDir: string): { path: string; folded: number | "cached" } {
  const src = readFileSync(int8Path);
  const sha = createHash("sha256").update(src).digest("hex").slice(0, 16);
  const path = `${cacheDir}/${sha}.fp32.onnx`;
  if (existsSync(path)) return { path, folded: "cached" };
  const { bytes, folded } = dequantizeWeights(new Uint8Array(src));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return { path, folded };
}
