/**
 * Graph rewriting for int8 quantisation of ONNX classifiers, in plain Node
 * (onnx-proto, no Python). Used by scripts/models-quantize.ts.
 *
 * Two formats:
 *  - weight-only: every quantised Conv/Gemm/MatMul weight becomes an int8
 *    initializer behind DequantizeLinear; activations stay fp32. This is the
 *    convention of scripts/quantize_weights.py (same names, same rounding, same
 *    float32 arithmetic), so the output is tensor-for-tensor the file that script
 *    writes. Compute is fp32, but note that onnxruntime 1.30 does NOT fold those
 *    DQ nodes at load (its constant folding skips DequantizeLinear unless
 *    session.disable_quant_qdq is set): it dequantises the weights on every run
 *    (measured in ORT-web: ~5 % of a MobileNetV2 inference).
 *  - qdq: additionally QuantizeLinear→DequantizeLinear pairs on activations
 *    (calibrated ranges) and int32 biases, laid out the way onnxruntime's own
 *    QDQ quantiser does, so ORT's QDQ selectors fuse each group into
 *    QLinearConv / QGemm / QLinearAdd… at session load. Outside ARM builds
 *    (QDQIsInt8Allowed() is false on x86 and wasm) ORT turns int8 activations
 *    (S8S8) into uint8 ones with the zero point shifted by 128 before fusing;
 *    their symmetric range then keeps every Relu/Clip as its own DQ→Clip→Q step.
 */
import { readFileSync } from "node:fs";
import type { onnx as OnnxTypes } from "onnx-proto";
import pkg from "onnx-proto";

export const { onnx } = pkg;
export type ModelProto = OnnxTypes.ModelProto;
export type NodeProto = OnnxTypes.INodeProto;
export type TensorProto = OnnxTypes.ITensorProto;
export type GraphProto = OnnxTypes.IGraphProto;

export const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

// ---------------------------------------------------------------- load / save

export function loadModel(source: string | Uint8Array): ModelProto {
  const bytes = typeof source === "string" ? new Uint8Array(readFileSync(source)) : source;
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (e) {
    const what = typeof source === "string" ? source : "model bytes";
    throw new Error(`${what} is not an ONNX model (${e instanceof Error ? e.message : String(e)})`);
  }
}

export function saveModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** A deep copy, so a rewrite never mutates the caller's model. */
export function cloneModel(model: ModelProto): ModelProto {
  return onnx.ModelProto.decode(saveModel(model));
}

// ---------------------------------------------------------------- small accessors

interface LongLike {
  toNumber(): number;
}
/** protobufjs decodes int64 as Long objects; everything here fits in a double. */
export function int(v: number | LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === "number" ? v : v.toNumber();
}

/**
 * A deterministic input for timing a model: its one 4-d image input's shape
 * (batch 1; NCHW or NHWC as the graph says) filled with a smooth pattern.
 */
export function syntheticImageInput(model: ModelProto): { dims: number[]; data: Float32Array } {
  const g = model.graph ?? {};
  const input = g.input?.find((i) => !(g.initializer ?? []).some((t) => t.name === i.name));
  const dims = (input?.type?.tensorType?.shape?.dim ?? []).map((d) => Math.max(1, int(d.dimValue ?? 1)));
  if (dims.length !== 4) throw new Error(`expected one 4-d image input, found [${dims.join(",")}]`);
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.001) * 1.5;
  return { dims, data };
}

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => int(d as number | LongLike));
}

function attr(node: NodeProto, name: string): OnnxTypes.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? int(a.i as number | LongLike) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? 0) : fallback;
}

const intAttr = (name: string, value: number): OnnxTypes.IAttributeProto => ({ name, type: AttrType.INT, i: value });

/** Copies raw bytes into a fresh, aligned buffer (protobufjs hands out views into the file). */
function alignedBytes(raw: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  return copy.buffer;
}

/** Float values of a FLOAT tensor, whichever field holds them. */
export function readFloat32(t: TensorProto): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`tensor ${t.name} is not float32 (data type ${t.dataType})`);
  if (t.rawData && t.rawData.byteLength > 0) return new Float32Array(alignedBytes(t.rawData));
  return Float32Array.from(t.floatData ?? []);
}

/** Integer/float values of any numeric tensor, as float64 (for scales, zero points, Clip bounds). */
export function readNumbers(t: TensorProto): number[] {
  const raw = t.rawData && t.rawData.byteLength > 0 ? alignedBytes(t.rawData) : undefined;
  switch (t.dataType) {
    case DataType.FLOAT:
      return Array.from(readFloat32(t));
    case DataType.INT8:
      return Array.from(raw ? new Int8Array(raw) : (t.int32Data ?? []));
    case DataType.UINT8:
      return Array.from(raw ? new Uint8Array(raw) : (t.int32Data ?? []));
    case DataType.INT32:
      return Array.from(raw ? new Int32Array(raw) : (t.int32Data ?? []));
    case DataType.INT64:
      return raw
        ? Array.from(new BigInt64Array(raw), Number)
        : (t.int64Data ?? []).map((v) => int(v as number | LongLike));
    default:
      throw new Error(`tensor ${t.name}: unsupported data type ${t.dataType}`);
  }
}

type Typed = Float32Array | Int8Array | Uint8Array | Int32Array;

export function makeTensor(name: string, dataType: number, dims: number[], data: Typed): TensorProto {
  return onnx.TensorProto.create({
    name,
    dataType,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

// ---------------------------------------------------------------- graph index

export interface GraphIndex {
  initializers: Map<string, TensorProto>;
  /** Tensor name → the node producing it. */
  producer: Map<string, NodeProto>;
  /** Tensor name → nodes reading it (one entry per input slot). */
  consumers: Map<string, NodeProto[]>;
  graphOutputs: Set<string>;
  graphInputs: Set<string>;
}

export function indexGraph(g: GraphProto): GraphIndex {
  const initializers = new Map((g.initializer ?? []).map((t) => [t.name ?? "", t]));
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node ?? []) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) {
      if (!i) continue;
      const list = consumers.get(i) ?? [];
      list.push(n);
      consumers.set(i, list);
    }
  }
  return {
    initializers,
    producer,
    consumers,
    graphOutputs: new Set((g.output ?? []).map((o) => o.name ?? "")),
    graphInputs: new Set((g.input ?? []).map((i) => i.name ?? "").filter((n) => !initializers.has(n))),
  };
}

/** A constant's value, whether an initializer or a Constant node's `value` tensor. */
function constantValue(ix: GraphIndex, name: string): number[] | undefined {
  const init = ix.initializers.get(name);
  if (init) return readNumbers(init);
  const p = ix.producer.get(name);
  if (p?.opType === "Constant") {
    const v = attr(p, "value")?.t;
    if (v) return readNumbers(v);
  }
  return undefined;
}

// ---------------------------------------------------------------- weight quantisation

export const WEIGHT_QMAX = 127;

/** Round half to even, like numpy's rint (Math.round rounds halves up). */
export function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/**
 * Symmetric int8 quantisation with zero point 0 and the grid [-127, 127],
 * per channel along `axis` (or per tensor when axis is null). Bit-exact with
 * scripts/quantize_weights.py: scale = float32(max|w| / 127) (all-zero channel
 * → 1), q = clip(rint(float32(w / scale)), -127, 127). Every operand is a
 * float32 and a double-precision quotient rounded once to float32 equals
 * numpy's float32 division, so Math.fround reproduces numpy exactly.
 */
export function quantizeSymmetric(
  w: Float32Array,
  dims: number[],
  axis: number | null,
): { q: Int8Array; scale: Float32Array } {
  const channels = axis === null ? 1 : (dims[axis] ?? 1);
  const inner = axis === null ? 1 : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => (axis === null ? 0 : Math.floor(i / inner) % channels);
  const amax = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = channelOf(i);
    const v = Math.abs(w[i] as number);
    if (v > (amax[c] as number)) amax[c] = v;
  }
  const scale = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const a = amax[c] as number;
    scale[c] = a > 0 ? Math.fround(a / WEIGHT_QMAX) : 1;
  }
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const v = rint(Math.fround((w[i] as number) / (scale[channelOf(i)] as number)));
    q[i] = Math.max(-WEIGHT_QMAX, Math.min(WEIGHT_QMAX, v));
  }
  return { q, scale };
}

/** Output-channel axis of the weight of a Conv/Gemm/MatMul, or null when we do not quantise it. */
export function weightAxis(node: NodeProto, weightDims: number[]): number | null {
  if (node.opType === "Conv") return 0; // [out, in/groups, kh, kw]
  if (node.opType === "Gemm") return attrInt(node, "transB", 0) ? 0 : 1; // B is [N,K] when transB=1, else [K,N]
  if (node.opType === "MatMul" && weightDims.length === 2) return 1; // x @ B, B is [K,N]
  return null;
}

/** Length of the dot product behind each output value of a weight op. */
export function reductionSize(node: NodeProto, weightDims: number[]): number {
  if (node.opType === "Conv") return weightDims.slice(1).reduce((a, b) => a * b, 1);
  if (node.opType === "Gemm") return (attrInt(node, "transB", 0) ? weightDims[1] : weightDims[0]) ?? 0;
  return weightDims[0] ?? 0;
}

/**
 * A weight that is already 8-bit: an int8/uint8 initializer behind its own
 * DequantizeLinear (a committed int8 model, or nsfwjs's own uint8 codes). It
 * is kept exactly as it is; only its scale is needed (for the int32 bias).
 */
export interface PrequantizedWeight {
  dq: NodeProto;
  codes: TensorProto;
  scale: Float32Array;
}

export function prequantizedWeight(node: NodeProto, ix: GraphIndex): PrequantizedWeight | undefined {
  const name = node.input?.[1] ?? "";
  const dq = ix.producer.get(name);
  if (dq?.opType !== "DequantizeLinear" || (ix.consumers.get(name) ?? []).length !== 1) return undefined;
  const [codesName, scaleName, zpName] = dq.input ?? [];
  const codes = ix.initializers.get(codesName ?? "");
  const scale = ix.initializers.get(scaleName ?? "");
  if (!codes || !scale || (zpName && !ix.initializers.has(zpName))) return undefined;
  if (codes.dataType !== DataType.INT8 && codes.dataType !== DataType.UINT8) return undefined;
  return { dq, codes, scale: readFloat32(scale) };
}

/** Dimensions of a weight op's weight, whether fp32 or already 8-bit. */
export function weightDims(node: NodeProto, ix: GraphIndex): number[] | undefined {
  const w = ix.initializers.get(node.input?.[1] ?? "") ?? prequantizedWeight(node, ix)?.codes;
  return w ? dimsOf(w) : undefined;
}

export function isDepthwise(node: NodeProto, ix: GraphIndex): boolean {
  if (node.opType !== "Conv") return false;
  const group = attrInt(node, "group", 1);
  // group == input channels: each filter sees one input channel.
  return group > 1 && weightDims(node, ix)?.[1] === 1;
}

export const WEIGHT_OPS = ["Conv", "Gemm", "MatMul"] as const;
/** Ops without weights that ORT CPU runs in int8 when they sit between Q/DQ (QLinearAdd, QLinearConcat, ...). */
export const ACTIVATION_OPS = ["Add", "Concat", "GlobalAveragePool", "AveragePool", "MaxPool"] as const;
export const SUPPORTED_OPS: readonly string[] = [...WEIGHT_OPS, ...ACTIVATION_OPS];

export interface Selection {
  /** Op types to quantise (weight ops get int8 weights; in qdq also activations). */
  opTypes: readonly string[];
  excludeOps: readonly string[];
  excludeNodes: readonly string[];
  excludeDepthwise: boolean;
  /**
   * Leave fp32 every weight op whose dot-product length (input channels per
   * group × kernel area, or K of a Gemm/MatMul) is below this. ORT-web's int8
   * GEMM only beats its fp32 one on long reductions: on short ones the
   * per-output requantisation dominates. 0 = no limit.
   */
  minReduction?: number;
}

export interface SelectedNode {
  node: NodeProto;
  /** Why it was left out, if it was. */
  skipped?: string;
  /**
   * Left out of activation quantisation for speed only (--exclude-depthwise,
   * --min-reduction): its weight may still be stored int8 behind a DQ that ORT
   * folds at load, so compute stays fp32 and the file stays small.
   */
  weightOnly?: boolean;
}

/** Why a weight op's weight cannot be quantised at all, or undefined. */
function weightProblem(n: NodeProto, ix: GraphIndex): string | undefined {
  const wName = n.input?.[1] ?? "";
  const w = ix.initializers.get(wName);
  if (!w && prequantizedWeight(n, ix)) return undefined;
  if (!w) return "weight is not an initializer";
  if (w.dataType !== DataType.FLOAT) return `weight is not float32 (data type ${w.dataType})`;
  if ((ix.consumers.get(wName) ?? []).length !== 1) return "weight shared with another node";
  if (weightAxis(n, dimsOf(w)) === null) return "weight layout not supported";
  if (n.opType === "Gemm" && attrInt(n, "transA", 0) !== 0) return "Gemm with transA=1";
  return undefined;
}

/**
 * Which nodes get quantised. Explicit exclusions (--exclude-op, --exclude-node)
 * leave a node entirely fp32; the speed rules leave its compute fp32 (see
 * `weightOnly`). A weight shared by two nodes is left alone: rewriting it for
 * one consumer would silently change the other.
 */
export function selectNodes(model: ModelProto, sel: Selection): SelectedNode[] {
  const g = model.graph as GraphProto;
  const ix = indexGraph(g);
  const out: SelectedNode[] = [];
  for (const n of g.node ?? []) {
    const op = n.opType ?? "";
    if (!sel.opTypes.includes(op)) continue;
    const weighted = (WEIGHT_OPS as readonly string[]).includes(op);
    if (sel.excludeOps.includes(op)) {
      out.push({ node: n, skipped: "--exclude-op" });
      continue;
    }
    if (sel.excludeNodes.includes(n.name ?? "")) {
      out.push({ node: n, skipped: "--exclude-node" });
      continue;
    }
    const problem = weighted ? weightProblem(n, ix) : undefined;
    if (problem) {
      out.push({ node: n, skipped: problem });
      continue;
    }
    if (sel.excludeDepthwise && isDepthwise(n, ix)) {
      out.push({ node: n, skipped: "--exclude-depthwise", weightOnly: true });
      continue;
    }
    if (weighted && sel.minReduction) {
      const k = reductionSize(n, weightDims(n, ix) ?? []);
      if (k < sel.minReduction) {
        out.push({ node: n, skipped: `reduction ${k} < --min-reduction ${sel.minReduction}`, weightOnly: true });
        continue;
      }
    }
    out.push({ node: n });
  }
  return out;
}

export interface QuantizedWeight {
  node: string;
  weight: string;
  axis: number | null;
  /** Largest |w - dequantised w| over the tensor (float32 rounding of the DQ aside). */
  maxAbsError: number;
  /** Already 8-bit in the input model: kept unchanged. */
  kept?: boolean;
}

/**
 * Replaces the weight initializer of `node` by int8 + scale + zero point and
 * a DequantizeLinear in front of the node. Naming and layout follow
 * quantize_weights.py: `<w>_quantized`, `<w>_scale`, `<w>_zero_point`, node
 * `<w>_DequantizeLinear` → `<w>_dequantized`; the `axis` attribute is always
 * written (for per-tensor the scale is a scalar and axis is omitted).
 */
function quantizeWeightOf(
  node: NodeProto,
  ix: GraphIndex,
  perChannel: boolean,
  newInits: TensorProto[],
  removed: Set<string>,
): { dq: NodeProto; info: QuantizedWeight; scale: Float32Array; axis: number | null } {
  const name = node.input?.[1] as string;
  const w = ix.initializers.get(name) as TensorProto;
  const dims = dimsOf(w);
  const channelAxis = weightAxis(node, dims);
  const axis = perChannel ? channelAxis : null;
  const data = readFloat32(w);
  const { q, scale } = quantizeSymmetric(data, dims, axis);
  let maxAbsError = 0;
  const inner = axis === null ? 1 : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = axis === null ? 1 : (dims[axis] as number);
  for (let i = 0; i < data.length; i++) {
    const c = axis === null ? 0 : Math.floor(i / inner) % channels;
    maxAbsError = Math.max(maxAbsError, Math.abs((data[i] as number) - (q[i] as number) * (scale[c] as number)));
  }
  const scaleDims = axis === null ? [] : [channels];
  newInits.push(
    makeTensor(`${name}_quantized`, DataType.INT8, dims, q),
    makeTensor(`${name}_scale`, DataType.FLOAT, scaleDims, scale),
    makeTensor(`${name}_zero_point`, DataType.INT8, scaleDims, new Int8Array(channels)),
  );
  removed.add(name);
  const dq = onnx.NodeProto.create({
    opType: "DequantizeLinear",
    name: `${name}_DequantizeLinear`,
    input: [`${name}_quantized`, `${name}_scale`, `${name}_zero_point`],
    output: [`${name}_dequantized`],
    attribute: axis === null ? [] : [intAttr("axis", axis)],
  });
  (node.input as string[])[1] = `${name}_dequantized`;
  return { dq, info: { node: node.name ?? "", weight: name, axis, maxAbsError }, scale, axis };
}

/** Drops removed initializers and their stale value_info, appends the new ones (quantize_weights.py's order). */
function replaceInitializers(g: GraphProto, removed: Set<string>, added: TensorProto[]): void {
  g.initializer = [...(g.initializer ?? []).filter((t) => !removed.has(t.name ?? "")), ...added];
  g.valueInfo = (g.valueInfo ?? []).filter((v) => !removed.has(v.name ?? ""));
  // An IR<4 model would also list initializers as graph inputs.
  g.input = (g.input ?? []).filter((v) => !removed.has(v.name ?? ""));
}

export interface WeightOnlyResult {
  model: ModelProto;
  weights: QuantizedWeight[];
  skipped: { node: string; op: string; reason: string }[];
}

export function quantizeWeightOnly(
  model: ModelProto,
  sel: Selection,
  opts: { perChannel: boolean } = { perChannel: true },
): WeightOnlyResult {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const ix = indexGraph(g);
  const selected = selectNodes(m, sel).filter((s) => (WEIGHT_OPS as readonly string[]).includes(s.node.opType ?? ""));
  // Speed-only exclusions change nothing here: weight-only computes in fp32 anyway.
  const chosen = new Set(
    selected.filter((s) => (!s.skipped || s.weightOnly) && !prequantizedWeight(s.node, ix)).map((s) => s.node),
  );
  const skipped = selected
    .filter((s) => s.skipped && !s.weightOnly)
    .map((s) => ({ node: s.node.name ?? "", op: s.node.opType ?? "", reason: s.skipped as string }));
  const nodes: NodeProto[] = [];
  const added: TensorProto[] = [];
  const removed = new Set<string>();
  const weights: QuantizedWeight[] = [];
  for (const n of g.node ?? []) {
    if (chosen.has(n)) {
      const { dq, info } = quantizeWeightOf(n, ix, opts.perChannel, added, removed);
      nodes.push(dq); // right before its consumer: the node list stays topologically sorted
      weights.push(info);
    }
    nodes.push(n);
  }
  if (weights.length === 0) {
    throw new Error(
      "no weights quantised: the model has no float32 Conv/Gemm/MatMul weight initializers left after exclusions" +
        (selected.some((s) => prequantizedWeight(s.node, ix)) ? " (its weights are already 8-bit)" : ""),
    );
  }
  g.node = nodes;
  replaceInitializers(g, removed, added);
  return { model: m, weights, skipped };
}

/**
 * Stores as fp32 the weights (and biases) of the Conv/Gemm/MatMul nodes that
 * compute in fp32 inside a QDQ model: those whose activation input is not
 * dequantised (excluded, or below --min-reduction). Their 8-bit codes would
 * otherwise stay behind DequantizeLinear, which onnxruntime keeps and runs on
 * every inference while QDQ handling is on (5 % of the served nsfw model's
 * kernel time in onnxruntime-web). The float32 values are the ones that DQ
 * computes; the file grows by 3 bytes per folded weight. `int8Nodes`: the
 * nodes the quantiser made int8 (every other weight node is folded).
 */
export function foldFp32ComputeWeights(
  model: ModelProto,
  int8Nodes?: ReadonlySet<string>,
): { model: ModelProto; folded: number } {
  const ix = indexGraph(model.graph as GraphProto);
  const fold = new Set<string>();
  for (const n of model.graph?.node ?? []) {
    if (!(WEIGHT_OPS as readonly string[]).includes(n.opType ?? "")) continue;
    const [x, ...params] = n.input ?? [];
    // Without the quantiser's own list, a dequantised input is taken to mean int8 compute (ORT fuses
    // that DQ). It is not always: an fp32 node between int8 neighbours reads a private per-channel DQ
    // that only keeps ORT from fusing it (applyQdq's keptFloat), and its weights are fp32 compute too.
    const int8 = int8Nodes ? int8Nodes.has(n.name ?? "") : ix.producer.get(x ?? "")?.opType === "DequantizeLinear";
    if (int8) continue;
    for (const p of params) {
      const dq = p ? ix.producer.get(p) : undefined;
      const source = dq?.input?.[0];
      if (dq?.opType !== "DequantizeLinear" || !source || !ix.initializers.has(source)) continue;
      if ((ix.consumers.get(p as string) ?? []).length === 1) fold.add(source);
    }
  }
  if (fold.size === 0) return { model, folded: 0 };
  return { model: foldWeightDequantize(model, (name) => fold.has(name)), folded: fold.size };
}

/**
 * The inverse of weight storage: every DequantizeLinear whose inputs are all
 * initializers becomes a float32 initializer (w = (q - zero point) × scale,
 * in float32 like ORT), named after the DQ output without its `_dequantized`
 * suffix. Turns a committed int8 model back into an fp32 one (what the tests
 * quantise, since the fp32 exports are not committed). `only` limits it to
 * the DequantizeLinear nodes whose quantised input it accepts.
 */
export function foldWeightDequantize(model: ModelProto, only?: (initializer: string) => boolean): ModelProto {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const ix = indexGraph(g);
  const removed = new Set<string>();
  const added: TensorProto[] = [];
  const rename = new Map<string, string>();
  const nodes: NodeProto[] = [];
  for (const n of g.node ?? []) {
    const ins = n.input ?? [];
    if (
      n.opType !== "DequantizeLinear" ||
      !ins.every((i) => ix.initializers.has(i)) ||
      (only !== undefined && !only(ins[0] as string))
    ) {
      nodes.push(n);
      continue;
    }
    const q = ix.initializers.get(ins[0] as string) as TensorProto;
    const scale = readNumbers(ix.initializers.get(ins[1] as string) as TensorProto);
    const zp = ins[2] ? readNumbers(ix.initializers.get(ins[2]) as TensorProto) : [0];
    const dims = dimsOf(q);
    const axisRaw = attrInt(n, "axis", 1);
    const axis = axisRaw < 0 ? axisRaw + dims.length : axisRaw;
    const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const values = readNumbers(q);
    const w = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const c = scale.length === 1 ? 0 : Math.floor(i / inner) % (dims[axis] as number);
      w[i] = Math.fround(
        ((values[i] as number) - ((zp.length === 1 ? zp[0] : zp[c]) as number)) * (scale[c] as number),
      );
    }
    const out = n.output?.[0] as string;
    const name = out.endsWith("_dequantized") ? out.slice(0, -"_dequantized".length) : out;
    added.push(makeTensor(name, DataType.FLOAT, dims, w));
    rename.set(out, name);
    for (const i of ins) if ((ix.consumers.get(i) ?? []).length === 1) removed.add(i);
  }
  for (const n of nodes) {
    const ins = n.input ?? [];
    for (let i = 0; i < ins.length; i++) ins[i] = rename.get(ins[i] as string) ?? (ins[i] as string);
  }
  g.node = nodes;
  replaceInitializers(g, removed, added);
  return m;
}

/**
 * A QDQ model back to weight-only form: activation QuantizeLinear→
 * DequantizeLinear pairs are removed (their readers take the float tensor
 * again, as in the graph before quantisation) and int32 biases
 * behind DequantizeLinear are folded to float (on their int32 grid). The 8-bit
 * weights stay behind their DequantizeLinear nodes, so the result is the
 * weight-only model the QDQ file was built from (biases rounded). For a
 * weight-only model it changes nothing.
 */
export function stripActivationQdq(model: ModelProto): { model: ModelProto; activationPairs: number } {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const ix = indexGraph(g);
  const quantizedFrom = new Map<string, string>(); // Q output -> the float tensor it quantises
  for (const n of g.node ?? []) {
    const x = n.input?.[0] as string;
    if (n.opType === "QuantizeLinear" && !ix.initializers.has(x)) quantizedFrom.set(n.output?.[0] as string, x);
  }
  let activationPairs = 0;
  const nodes: NodeProto[] = [];
  const biases = new Set<string>();
  const rename = new Map<string, string>(); // dequantised copy -> the float tensor itself
  for (const n of g.node ?? []) {
    if (n.opType === "QuantizeLinear" && quantizedFrom.has(n.output?.[0] as string)) continue;
    const x = n.input?.[0] as string;
    const source = n.opType === "DequantizeLinear" ? quantizedFrom.get(x) : undefined;
    if (source !== undefined) {
      const out = n.output?.[0] as string;
      // Readers take the float tensor again; a graph output keeps its name through an Identity.
      if (ix.graphOutputs.has(out)) {
        nodes.push(onnx.NodeProto.create({ opType: "Identity", name: `${out}_fp32`, input: [source], output: [out] }));
      } else rename.set(out, source);
      activationPairs++;
      continue;
    }
    if (n.opType === "DequantizeLinear" && ix.initializers.get(x)?.dataType === DataType.INT32) biases.add(x);
    nodes.push(n);
  }
  for (const n of nodes) {
    const ins = n.input ?? [];
    for (let i = 0; i < ins.length; i++) ins[i] = rename.get(ins[i] as string) ?? (ins[i] as string);
  }
  g.node = nodes;
  // The activations' scales and zero points, and the quantised tensors, are gone.
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  const removed = new Set([
    ...(g.initializer ?? []).map((t) => t.name ?? "").filter((name) => !read.has(name)),
    ...quantizedFrom.keys(),
    ...rename.keys(),
  ]);
  replaceInitializers(g, removed, []);
  if (biases.size === 0) return { model: m, activationPairs };
  // Fold only the int32 biases; `only` leaves the 8-bit weights' DequantizeLinear nodes as they are.
  const folded = foldWeightDequantize(m, (init) => biases.has(init));
  return { model: folded, activationPairs };
}

/**
 * The fp32 model a quantised one was made from: stripActivationQdq, then every
 * DequantizeLinear of a constant folded as above. For a weight-only model this
 * is foldWeightDequantize alone. The benchmark's fp32 baseline is derived with
 * it, so "int8 as served vs fp32" compares the same weights with and without
 * integer compute.
 */
export function dequantizeModel(model: ModelProto): { model: ModelProto; activationPairs: number } {
  const { model: weightOnly, activationPairs } = stripActivationQdq(model);
  const folded = foldWeightDequantize(weightOnly);
  const left = (folded.graph?.node ?? []).filter(
    (n) => n.opType === "QuantizeLinear" || n.opType === "DequantizeLinear",
  );
  if (left.length > 0) throw new Error(`dequantizeModel: ${left.length} Q/DQ nodes of an unexpected shape remain`);
  return { model: folded, activationPairs };
}

// ---------------------------------------------------------------- activations (QDQ)

export type ActivationType = "u8" | "s8";

export interface QdqPlan {
  /** Activation tensors that get QuantizeLinear→DequantizeLinear, in graph order. */
  tensors: string[];
  /** Positions in graph.node of the nodes quantised (weights, inputs, outputs). */
  nodeIndices: number[];
  /** Positions of nodes that only get int8 weights (fp32 compute), see SelectedNode.weightOnly. */
  weightOnlyIndices: number[];
  /** Their names and op types, for reports. */
  nodes: { name: string; op: string }[];
  skipped: { node: string; op: string; reason: string }[];
}

function clipLowerBound(node: NodeProto, ix: GraphIndex): number | undefined {
  if (node.opType === "Relu") return 0;
  if (node.opType !== "Clip") return undefined;
  const minName = node.input?.[1];
  if (!minName) return Number.NEGATIVE_INFINITY;
  return constantValue(ix, minName)?.[0];
}

/**
 * Which activation tensors get Q/DQ, following onnxruntime's QDQ quantiser:
 * every float input of a quantised node and its output. A quantised node's
 * output that feeds only a Relu/Clip(min ≥ 0) is quantised *after* the
 * activation when activations are asymmetric uint8: ORT then treats the
 * activation as made redundant by the Q (its range starts at 0) and fuses
 * Conv+Relu+Q into one QLinearConv. With symmetric int8 the Q range is
 * [-a, a], the activation is not redundant, and the output is quantised
 * before it (as ORT's quantiser does). Graph outputs stay float: a consumer may
 * read the dequantised copy, but the output itself is never replaced.
 */
export function planQdq(model: ModelProto, sel: Selection, act: ActivationType): QdqPlan {
  const g = model.graph as GraphProto;
  const ix = indexGraph(g);
  const selected = selectNodes(model, sel);
  const nodes = selected.filter((s) => !s.skipped).map((s) => s.node);
  const skipped = selected
    .filter((s) => s.skipped)
    .map((s) => ({ node: s.node.name ?? "", op: s.node.opType ?? "", reason: s.skipped as string }));
  const want = new Set<string>();
  const isActivation = (t: string) => !!t && !ix.initializers.has(t) && ix.producer.get(t)?.opType !== "Constant";
  const kept: NodeProto[] = [];
  for (const n of nodes) {
    const op = n.opType ?? "";
    const weighted = (WEIGHT_OPS as readonly string[]).includes(op);
    const inputs = weighted ? [n.input?.[0] ?? ""] : (n.input ?? []).filter((t) => !!t);
    if (!inputs.every(isActivation)) {
      skipped.push({ node: n.name ?? "", op, reason: "an input is a constant" });
      continue;
    }
    kept.push(n);
    for (const t of inputs) want.add(t);
    const out = n.output?.[0] ?? "";
    if (ix.graphOutputs.has(out)) continue;
    const cons = ix.consumers.get(out) ?? [];
    const only = cons.length === 1 ? cons[0] : undefined;
    const lower = only ? clipLowerBound(only, ix) : undefined;
    const after = only?.output?.[0];
    if (act === "u8" && lower !== undefined && lower >= 0 && after && !ix.graphOutputs.has(after)) {
      want.add(after);
    } else {
      want.add(out);
    }
  }
  // Graph order: inputs first, then node outputs as produced.
  const order: string[] = [...ix.graphInputs].filter((t) => want.has(t));
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (want.has(o)) order.push(o);
  const position = new Map((g.node ?? []).map((n, i) => [n, i]));
  // A float bias keeps ORT from fusing such a node even when its neighbours
  // put a DQ on its input and a Q on its output; without one it would silently
  // become a QLinearConv, so bias-less nodes keep fp32 weights.
  const weightOnly = selected.filter((s) => s.weightOnly && s.node.input?.[2]).map((s) => s.node);
  return {
    tensors: order,
    nodeIndices: kept.map((n) => position.get(n) as number),
    weightOnlyIndices: weightOnly.map((n) => position.get(n) as number),
    nodes: kept.map((n) => ({ name: n.name ?? "", op: n.opType ?? "" })),
    skipped,
  };
}

/** Adds `names` as extra float graph outputs (for calibration: every intermediate becomes observable). */
export function exposeTensors(model: ModelProto, names: readonly string[]): ModelProto {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const have = new Set((g.output ?? []).map((o) => o.name));
  for (const name of names) {
    if (have.has(name)) continue;
    g.output?.push(
      onnx.ValueInfoProto.create({
        name,
        type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: DataType.FLOAT }) }),
      }),
    );
  }
  return m;
}

export interface Range {
  min: number;
  max: number;
}

export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

/**
 * onnxruntime's compute_scale_zp: the range is widened to include 0; uint8 is
 * asymmetric over [0, 255], int8 symmetric over [-127, 127] with zero point 0.
 * The scale is computed in float64 and stored as float32.
 */
export function activationParams(r: Range, act: ActivationType): ActivationParams {
  let rmin = Math.min(r.min, 0);
  let rmax = Math.max(r.max, 0);
  if (act === "s8") {
    const a = Math.max(Math.abs(rmin), Math.abs(rmax));
    rmin = -a;
    rmax = a;
  }
  const [qmin, qmax] = act === "u8" ? [0, 255] : [-127, 127];
  const scale = (rmax - rmin) / (qmax - qmin);
  if (!(scale >= 1.1754943508222875e-38)) return { scale: 1, zeroPoint: 0 };
  const zeroPoint = act === "s8" ? 0 : Math.max(0, Math.min(255, rint(qmin - rmin / scale)));
  return { scale: Math.fround(scale), zeroPoint };
}

export interface QdqResult {
  model: ModelProto;
  weights: QuantizedWeight[];
  /** Activation tensor → the parameters written. */
  activations: Map<string, ActivationParams & Range>;
  biases: { node: string; bias: string; clipped: number }[];
  floatBiases: { node: string; reason: string }[];
  /** fp32 nodes between quantised neighbours that got a per-channel DQ to stay fp32 (see needsPrivateDq). */
  keptFloat: string[];
  /** Dequantised tensors handed to several fp32 readers through one copy (see addFanOuts). */
  fanOuts: number;
}

/**
 * Writes the QDQ graph: int8 per-channel (or per-tensor) weights behind DQ,
 * int32 biases (scale = input scale × weight scale, zero point 0, as ORT's
 * quantiser and QLinearConv/QGemm expect; a float bias would stop ORT from
 * fusing the node), and one shared Q→DQ pair per planned activation tensor,
 * placed right after its producer. Every consumer reads the dequantised copy,
 * so the producer's only consumer is its Q (a condition of ORT's fusion).
 */
export function applyQdq(
  model: ModelProto,
  plan: QdqPlan,
  ranges: ReadonlyMap<string, Range>,
  act: ActivationType,
  opts: { perChannel: boolean },
): QdqResult {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const ix = indexGraph(g);
  const chosen = new Set(plan.nodeIndices.map((i) => (g.node ?? [])[i] as NodeProto));
  const weightOnly = new Set(plan.weightOnlyIndices.map((i) => (g.node ?? [])[i] as NodeProto));

  const params = new Map<string, ActivationParams & Range>();
  for (const t of plan.tensors) {
    const r = ranges.get(t);
    if (!r) throw new Error(`no calibration range for tensor ${t}`);
    params.set(t, { ...activationParams(r, act), ...r });
  }
  const qType = act === "u8" ? DataType.UINT8 : DataType.INT8;
  const added: TensorProto[] = [];
  const removed = new Set<string>();
  const weights: QuantizedWeight[] = [];
  const biases: QdqResult["biases"] = [];
  const floatBiases: QdqResult["floatBiases"] = [];
  const keptFloat: string[] = [];

  const qdqNodes = (t: string): NodeProto[] => {
    const p = params.get(t) as ActivationParams;
    added.push(
      makeTensor(`${t}_scale`, DataType.FLOAT, [], Float32Array.of(p.scale)),
      qType === DataType.UINT8
        ? makeTensor(`${t}_zero_point`, qType, [], Uint8Array.of(p.zeroPoint))
        : makeTensor(`${t}_zero_point`, qType, [], Int8Array.of(p.zeroPoint)),
    );
    return [
      onnx.NodeProto.create({
        opType: "QuantizeLinear",
        name: `${t}_QuantizeLinear`,
        input: [t, `${t}_scale`, `${t}_zero_point`],
        output: [`${t}_quantized`],
      }),
      onnx.NodeProto.create({
        opType: "DequantizeLinear",
        name: `${t}_DequantizeLinear`,
        input: [`${t}_quantized`, `${t}_scale`, `${t}_zero_point`],
        output: [`${t}_dequantized`],
      }),
    ];
  };

  const nodes: NodeProto[] = [];
  for (const t of plan.tensors) if (ix.graphInputs.has(t)) nodes.push(...qdqNodes(t));
  for (const n of g.node ?? []) {
    if (chosen.has(n) && (WEIGHT_OPS as readonly string[]).includes(n.opType ?? "")) {
      const inputName = n.input?.[0] ?? "";
      const pre = prequantizedWeight(n, ix);
      let scale: Float32Array;
      if (pre) {
        scale = pre.scale; // codes and DQ stay as they are (the DQ node is already in the graph)
        weights.push({ node: n.name ?? "", weight: n.input?.[1] ?? "", axis: null, maxAbsError: 0, kept: true });
      } else {
        const q = quantizeWeightOf(n, ix, opts.perChannel, added, removed);
        nodes.push(q.dq);
        weights.push(q.info);
        scale = q.scale;
      }
      const biasName = n.input?.[2];
      const inParams = params.get(inputName);
      if (biasName && inParams) {
        const reason = quantizeBias(n, biasName, ix, inParams.scale, scale, added, removed, nodes, biases);
        if (reason) floatBiases.push({ node: n.name ?? "", reason });
      }
    } else if (weightOnly.has(n) && !prequantizedWeight(n, ix)) {
      const { dq, info } = quantizeWeightOf(n, ix, opts.perChannel, added, removed);
      nodes.push(dq);
      weights.push(info);
    }
    if (!chosen.has(n) && needsPrivateDq(n, ix, params)) {
      const dq = privateDq(n, ix, params, qType, added);
      nodes.push(dq);
      (n.input as string[])[0] = dq.output?.[0] as string;
      keptFloat.push(n.name ?? "");
    }
    nodes.push(n);
    for (const o of n.output ?? []) if (params.has(o)) nodes.push(...qdqNodes(o));
  }
  // Rewire every reader (except the Q itself) to the dequantised tensor.
  for (const n of nodes) {
    if (n.opType === "QuantizeLinear" && n.name === `${n.input?.[0]}_QuantizeLinear`) continue;
    const ins = n.input ?? [];
    for (let i = 0; i < ins.length; i++) {
      const t = ins[i] as string;
      if (params.has(t)) ins[i] = `${t}_dequantized`;
    }
  }
  const fanOuts = addFanOuts(nodes, params, new Set([...chosen, ...plannedActivationOps(plan, g)]));
  g.node = nodes;
  replaceInitializers(g, removed, added);
  return { model: m, weights, activations: params, biases, floatBiases, keptFloat, fanOuts };
}

function plannedActivationOps(plan: QdqPlan, g: GraphProto): NodeProto[] {
  return plan.nodeIndices.map((i) => (g.node ?? [])[i] as NodeProto);
}

/**
 * onnxruntime gives every consumer of a DequantizeLinear its own copy
 * (Level 1 "EnsureUniqueDQForNodeUnit"), so a dequantised tensor read by n
 * fp32 nodes is dequantised n times per run. DenseNet's Concats read each
 * layer's output up to 24 times: 545 DQ kernels instead of 68 (5 ms of a
 * 104 ms int8 run, and ~430 extra nodes of executor overhead). Those fp32
 * readers get the tensor through one single-input Concat (a plain copy) instead.
 * Readers that ORT may fuse with their DQ inputs (quantised nodes, Add, Mul)
 * keep their direct DQ.
 */
function addFanOuts(nodes: NodeProto[], params: ReadonlyMap<string, unknown>, fused: ReadonlySet<NodeProto>): number {
  const readers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const i of n.input ?? []) {
      if (!i.endsWith("_dequantized") || !params.has(i.slice(0, -"_dequantized".length))) continue;
      if (fused.has(n) || n.opType === "Add" || n.opType === "Mul") continue;
      const list = readers.get(i) ?? [];
      if (!list.includes(n)) list.push(n);
      readers.set(i, list);
    }
  }
  let count = 0;
  for (const [t, list] of readers) {
    if (list.length < 2) continue;
    const fan = `${t}_fanout`;
    const at = nodes.findIndex((n) => n.output?.includes(t));
    nodes.splice(
      at + 1,
      0,
      onnx.NodeProto.create({
        opType: "Concat",
        name: fan,
        input: [t],
        output: [fan],
        attribute: [intAttr("axis", 0)],
      }),
    );
    for (const n of list) n.input = (n.input ?? []).map((i) => (i === t ? fan : i));
    count++;
  }
  return count;
}

/**
 * onnxruntime (Level 1 "WeightBiasQuantization", ORT ≥ 1.20) quantises the
 * weights and bias of any Conv/Gemm whose input comes from a DequantizeLinear
 * with a per-tensor scale and whose output path (through Relu/Clip) ends in a
 * QuantizeLinear, and then fuses it: a node we leave fp32 between quantised
 * neighbours would silently become a per-tensor int8 QLinearConv (measured:
 * depthwise convs turned int8 that way lose 5x accuracy and run 3-10x slower in
 * wasm). Such a node gets its own DequantizeLinear with the same scale
 * repeated per channel (axis 1): identical values, but not a per-tensor DQ, so
 * ORT leaves the node in fp32.
 */
function needsPrivateDq(n: NodeProto, ix: GraphIndex, params: ReadonlyMap<string, unknown>): boolean {
  if (n.opType !== "Conv" && n.opType !== "Gemm") return false;
  if (!params.has(n.input?.[0] ?? "")) return false;
  let t = n.output?.[0] ?? "";
  for (;;) {
    if (params.has(t)) return true;
    const cons = ix.consumers.get(t) ?? [];
    const next = cons[0];
    if (cons.length !== 1 || !next || (next.opType !== "Relu" && next.opType !== "Clip")) return false;
    t = next.output?.[0] ?? "";
  }
}

function privateDq(
  n: NodeProto,
  ix: GraphIndex,
  params: ReadonlyMap<string, ActivationParams>,
  qType: number,
  added: TensorProto[],
): NodeProto {
  const t = n.input?.[0] as string;
  const p = params.get(t) as ActivationParams;
  // The weight may have been moved behind a DQ already: look it up in the input graph.
  const d =
    weightDims(n, ix) ?? weightDims({ ...n, input: [t, (n.input?.[1] ?? "").replace(/_dequantized$/, "")] }, ix);
  if (!d) throw new Error(`${n.name}: cannot size the per-channel DequantizeLinear (weight ${n.input?.[1]} not found)`);
  const channels =
    n.opType === "Conv"
      ? (d[1] as number) * attrInt(n, "group", 1)
      : ((attrInt(n, "transB", 0) ? d[1] : d[0]) as number);
  const base = `${t}_for_${n.name}`;
  added.push(
    makeTensor(`${base}_scale`, DataType.FLOAT, [channels], new Float32Array(channels).fill(p.scale)),
    qType === DataType.UINT8
      ? makeTensor(`${base}_zero_point`, qType, [channels], new Uint8Array(channels).fill(p.zeroPoint))
      : makeTensor(`${base}_zero_point`, qType, [channels], new Int8Array(channels).fill(p.zeroPoint)),
  );
  return onnx.NodeProto.create({
    opType: "DequantizeLinear",
    name: `${base}_DequantizeLinear`,
    input: [`${t}_quantized`, `${base}_scale`, `${base}_zero_point`],
    output: [`${base}_dequantized`],
    attribute: [intAttr("axis", 1)],
  });
}

const INT32_MAX = 2147483647;

/** Returns why the bias stays float, or undefined once it is int32 behind a DQ. */
function quantizeBias(
  node: NodeProto,
  biasName: string,
  ix: GraphIndex,
  inputScale: number,
  weightScale: Float32Array,
  added: TensorProto[],
  removed: Set<string>,
  nodes: NodeProto[],
  out: QdqResult["biases"],
): string | undefined {
  const b = ix.initializers.get(biasName);
  if (!b || b.dataType !== DataType.FLOAT) return "bias is not a float32 initializer";
  if ((ix.consumers.get(biasName) ?? []).length !== 1) return "bias shared with another node";
  if (node.opType === "MatMul") return "MatMul has no bias input";
  if (node.opType === "Gemm" && attrFloat(node, "beta", 1) !== 1) return "Gemm beta != 1";
  const data = readFloat32(b);
  const dims = dimsOf(b);
  const perChannel = weightScale.length > 1;
  if (dims.length !== 1 || (perChannel && data.length !== weightScale.length)) {
    return `bias shape [${dims.join(",")}] does not match the weight scales`;
  }
  const scale = new Float32Array(perChannel ? data.length : 1);
  for (let c = 0; c < scale.length; c++) {
    const s = Math.fround(inputScale * (weightScale[c] as number));
    scale[c] = s > 0 ? s : 1;
  }
  const q = new Int32Array(data.length);
  let clipped = 0;
  for (let i = 0; i < data.length; i++) {
    const v = rint((data[i] as number) / (scale[perChannel ? i : 0] as number));
    if (Math.abs(v) > INT32_MAX) clipped++;
    q[i] = Math.max(-INT32_MAX, Math.min(INT32_MAX, v));
  }
  const scaleDims = perChannel ? [scale.length] : [];
  added.push(
    makeTensor(`${biasName}_quantized`, DataType.INT32, dims, q),
    makeTensor(`${biasName}_scale`, DataType.FLOAT, scaleDims, scale),
    makeTensor(`${biasName}_zero_point`, DataType.INT32, scaleDims, new Int32Array(scale.length)),
  );
  removed.add(biasName);
  nodes.push(
    onnx.NodeProto.create({
      opType: "DequantizeLinear",
      name: `${biasName}_DequantizeLinear`,
      input: [`${biasName}_quantized`, `${biasName}_scale`, `${biasName}_zero_point`],
      output: [`${biasName}_dequantized`],
      attribute: perChannel ? [intAttr("axis", 0)] : [],
    }),
  );
  (node.input as string[])[2] = `${biasName}_dequantized`;
  out.push({ node: node.name ?? "", bias: biasName, clipped });
  return undefined;
}

// ---------------------------------------------------------------- bias correction

/**
 * A copy of `model` with `offsets` (node name → one value per output channel)
 * added to the float bias of each named Conv/Gemm. A node without a bias gets
 * one holding the offsets: DenseNet's concatenated convs have none, and they are
 * the ones whose int8 outputs drift most. A bias shared with another node is
 * copied first, so the other node keeps its values.
 */
export function addBiasOffsets(model: ModelProto, offsets: ReadonlyMap<string, Float32Array>): ModelProto {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const ix = indexGraph(g);
  const added: TensorProto[] = [];
  const removed = new Set<string>();
  for (const n of g.node ?? []) {
    const delta = offsets.get(n.name ?? "");
    if (!delta) continue;
    if (n.opType !== "Conv" && n.opType !== "Gemm") throw new Error(`${n.name}: bias offsets need a Conv or Gemm`);
    if (n.opType === "Gemm" && attrFloat(n, "beta", 1) !== 1) throw new Error(`${n.name}: Gemm beta != 1`);
    const old = n.input?.[2];
    const init = old ? ix.initializers.get(old) : undefined;
    if (old && !init) throw new Error(`${n.name}: bias ${old} is not an initializer`);
    const b = init ? readFloat32(init) : new Float32Array(delta.length);
    if (b.length !== delta.length) throw new Error(`${n.name}: ${delta.length} offsets for ${b.length} bias values`);
    const v = new Float32Array(b.length);
    for (let c = 0; c < v.length; c++) v[c] = (b[c] as number) + (delta[c] as number);
    const shared = old !== undefined && (ix.consumers.get(old) ?? []).length > 1;
    const name = old && !shared ? old : `${n.name}_bias`;
    if (old && !shared) removed.add(old);
    added.push(makeTensor(name, DataType.FLOAT, [v.length], v));
    const ins = n.input as string[];
    while (ins.length < 2) ins.push("");
    ins[2] = name;
  }
  replaceInitializers(g, removed, added);
  return m;
}

/**
 * The part of `model` that computes `outputs`, which become its only graph
 * outputs: nodes and initializers they do not depend on are dropped, so a
 * measurement of the first layers does not pay for the whole network.
 */
export function pruneToOutputs(model: ModelProto, outputs: readonly string[]): ModelProto {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const ix = indexGraph(g);
  const needed = new Set(outputs);
  const keep = new Set<NodeProto>();
  const nodes = g.node ?? [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i] as NodeProto;
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    keep.add(n);
    for (const t of n.input ?? []) if (t) needed.add(t);
  }
  for (const o of outputs) {
    if (!ix.producer.has(o) && !ix.graphInputs.has(o)) throw new Error(`pruneToOutputs: no tensor ${o}`);
  }
  g.node = nodes.filter((n) => keep.has(n));
  g.initializer = (g.initializer ?? []).filter((t) => needed.has(t.name ?? ""));
  g.input = (g.input ?? []).filter((i) => needed.has(i.name ?? ""));
  g.valueInfo = (g.valueInfo ?? []).filter((v) => needed.has(v.name ?? ""));
  g.output = outputs.map((name) =>
    onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: DataType.FLOAT }) }),
    }),
  );
  return m;
}

/** Per-channel means and ranges (axis 1 of an N×C×… tensor) of named tensors, accumulated over runs. */
export class ChannelStats {
  private sums = new Map<string, { sum: Float64Array; lo: Float64Array; hi: Float64Array; count: number }>();

  add(name: string, data: Float32Array, dims: readonly number[]): void {
    const channels = dims[1] ?? 1;
    const inner = dims.slice(2).reduce((a, b) => a * b, 1);
    const outer = (dims[0] ?? 1) as number;
    let s = this.sums.get(name);
    if (!s) {
      s = {
        sum: new Float64Array(channels),
        lo: new Float64Array(channels).fill(Number.POSITIVE_INFINITY),
        hi: new Float64Array(channels).fill(Number.NEGATIVE_INFINITY),
        count: 0,
      };
      this.sums.set(name, s);
    }
    const { sum, lo, hi } = s;
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        let mn = lo[c] as number;
        let mx = hi[c] as number;
        const base = (o * channels + c) * inner;
        for (let i = 0; i < inner; i++) {
          const v = data[base + i] as number;
          acc += v;
          if (v < mn) mn = v;
          if (v > mx) mx = v;
        }
        sum[c] = (sum[c] as number) + acc;
        lo[c] = mn;
        hi[c] = mx;
      }
    }
    s.count += outer * inner;
  }

  /** Per-channel [min, max]. */
  range(name: string): { min: Float64Array; max: Float64Array } {
    const s = this.sums.get(name);
    if (!s) throw new Error(`no values for ${name}`);
    return { min: s.lo, max: s.hi };
  }

  mean(name: string): Float64Array {
    const s = this.sums.get(name);
    if (!s) throw new Error(`no values for ${name}`);
    return s.sum.map((v) => v / s.count);
  }
}

// ---------------------------------------------------------------- channel equalisation

/** Channel count (axis 1) of every tensor whose count follows from the weights and the ops below. */
function channelCounts(g: GraphProto, ix: GraphIndex, inputChannels: number): Map<string, number> {
  const count = new Map<string, number>();
  for (const t of ix.graphInputs) count.set(t, inputChannels);
  for (const n of g.node ?? []) {
    const op = n.opType ?? "";
    const out = n.output?.[0];
    if (!out) continue;
    const first = count.get(n.input?.[0] ?? "");
    if (op === "Conv") {
      const d = weightDims(n, ix);
      if (d?.[0] !== undefined) count.set(out, d[0]);
    } else if (op === "Concat" && attrInt(n, "axis", 0) === 1) {
      const parts = (n.input ?? []).map((t) => count.get(t));
      if (parts.every((c) => c !== undefined))
        count.set(out, parts.reduce((a, b) => (a as number) + (b as number), 0) as number);
    } else if (first !== undefined && op === "Pad") {
      if (padsWithZeros(n, ix)) count.set(out, first);
    } else if (first !== undefined && PER_CHANNEL_HOMOGENEOUS.has(op)) count.set(out, first);
    else if (first !== undefined && op === "BatchNormalization") count.set(out, first);
  }
  return count;
}

/**
 * A Pad in constant mode with the default value 0 (the only mode that commutes
 * with scaling) that pads no channels (which would move the offsets).
 */
function padsWithZeros(n: NodeProto, ix: GraphIndex): boolean {
  const mode = attr(n, "mode")?.s;
  if ((mode && new TextDecoder().decode(mode) !== "constant") || n.input?.[2]) return false;
  const pads = constantValue(ix, n.input?.[1] ?? "");
  const rank = (pads?.length ?? 0) / 2;
  return !!pads && rank >= 2 && pads[1] === 0 && pads[1 + rank] === 0;
}

/** Ops f with f(s·x) = s·f(x) per channel for every s > 0 (Pad only with its default zero value). */
const PER_CHANNEL_HOMOGENEOUS = new Set(["Relu", "MaxPool", "AveragePool", "Identity", "Pad"]);

/**
 * Where the channels of `tensor` end up: the BatchNormalization nodes that
 * read them (with the channel offset inside their input), following only
 * per-channel positive-homogeneous ops and Concat on axis 1. Undefined if any
 * path reaches something else (a Conv, a graph output…): scaling those
 * channels could then not be undone exactly.
 */
function batchNormReaders(
  ix: GraphIndex,
  counts: ReadonlyMap<string, number>,
  tensor: string,
): { bn: NodeProto; offset: number }[] | undefined {
  const found: { bn: NodeProto; offset: number }[] = [];
  const stack: { t: string; offset: number }[] = [{ t: tensor, offset: 0 }];
  while (stack.length > 0) {
    const { t, offset } = stack.pop() as { t: string; offset: number };
    if (ix.graphOutputs.has(t)) return undefined;
    for (const n of ix.consumers.get(t) ?? []) {
      const op = n.opType ?? "";
      const out = n.output?.[0] as string;
      if (op === "BatchNormalization" && n.input?.[0] === t) found.push({ bn: n, offset });
      else if (op === "Pad" && n.input?.[0] === t && padsWithZeros(n, ix)) stack.push({ t: out, offset });
      else if (op !== "Pad" && PER_CHANNEL_HOMOGENEOUS.has(op) && n.input?.[0] === t) stack.push({ t: out, offset });
      else if (op === "Concat" && attrInt(n, "axis", 0) === 1) {
        const ins = n.input ?? [];
        let at = 0;
        for (const i of ins) {
          if (i === t) stack.push({ t: out, offset: offset + at });
          const c = counts.get(i);
          if (c === undefined) return undefined;
          at += c;
        }
      } else return undefined;
    }
  }
  return found.length > 0 ? found : undefined;
}

export interface Equalizable {
  /** The Conv whose output channels can be rescaled. */
  node: string;
  /** The tensor that will be quantised for it: its output, or the Relu's right after it. */
  tensor: string;
}

/**
 * Convs whose output channels reach only BatchNormalization nodes, through
 * Relu/pooling/Pad/Concat: DenseNet's conv0, every dense layer's conv2 and the
 * transition convs, whose outputs are concatenated and batch-normalised per
 * channel. A per-tensor activation scale gives their narrow channels few
 * int8 steps, and the batch norm then magnifies that error by 1/σ of the
 * channel. Scaling such a channel by s > 0 (its weights' per-channel scale and
 * its bias) and dividing it out in the batch norms (γ/s, μ·s) leaves the
 * network's function unchanged while every channel uses the tensor's range.
 */
export function equalizableConvs(model: ModelProto, inputChannels = 3): Equalizable[] {
  const g = model.graph as GraphProto;
  const ix = indexGraph(g);
  const counts = channelCounts(g, ix, inputChannels);
  const out: Equalizable[] = [];
  for (const n of g.node ?? []) {
    if (n.opType !== "Conv") continue;
    const y = n.output?.[0] as string;
    if (!batchNormReaders(ix, counts, y)) continue;
    const cons = ix.consumers.get(y) ?? [];
    const relu = cons.length === 1 && cons[0]?.opType === "Relu" ? cons[0] : undefined;
    out.push({ node: n.name ?? "", tensor: relu ? (relu.output?.[0] as string) : y });
  }
  return out;
}

/** Follows Identity nodes back to the initializer (or Constant) holding a value. */
function constantSource(ix: GraphIndex, name: string): number[] | undefined {
  let t = name;
  for (;;) {
    const p = ix.producer.get(t);
    if (p?.opType !== "Identity") return constantValue(ix, t);
    t = p.input?.[0] as string;
  }
}

/**
 * Multiplies each named Conv's output channel c by scales[c] > 0 (see
 * equalizableConvs) and undoes it in every batch norm reading it. An 8-bit
 * weight keeps its codes: only its per-channel scale changes.
 */
export function equalizeChannels(
  model: ModelProto,
  scales: ReadonlyMap<string, Float32Array>,
  inputChannels = 3,
): ModelProto {
  const m = cloneModel(model);
  const g = m.graph as GraphProto;
  const ix = indexGraph(g);
  const counts = channelCounts(g, ix, inputChannels);
  const added: TensorProto[] = [];
  const removed = new Set<string>();
  const bnFactor = new Map<NodeProto, Float64Array>();
  const scaleInit = (name: string, s: Float32Array, what: string) => {
    const t = ix.initializers.get(name);
    if (!t || (ix.consumers.get(name) ?? []).length !== 1)
      throw new Error(`${what}: ${name} is not a private initializer`);
    const v = readFloat32(t);
    if (v.length !== s.length) throw new Error(`${what}: ${v.length} values for ${s.length} channels`);
    removed.add(name);
    added.push(
      makeTensor(
        name,
        DataType.FLOAT,
        dimsOf(t),
        v.map((x, c) => x * (s[c] as number)),
      ),
    );
  };
  for (const n of g.node ?? []) {
    const s = scales.get(n.name ?? "");
    if (!s) continue;
    if (s.some((v) => !(v > 0))) throw new Error(`${n.name}: channel scales must be > 0`);
    const pre = prequantizedWeight(n, ix);
    if (pre) {
      if (pre.scale.length !== s.length) throw new Error(`${n.name}: the 8-bit weight is not per output channel`);
      scaleInit(pre.dq.input?.[1] as string, s, n.name ?? "");
    } else {
      const w = ix.initializers.get(n.input?.[1] ?? "");
      if (!w) throw new Error(`${n.name}: weight is not an initializer`);
      const inner = readFloat32(w).length / s.length;
      scaleInit(
        n.input?.[1] as string,
        Float32Array.from({ length: s.length * inner }, (_, i) => s[Math.floor(i / inner)] as number),
        n.name ?? "",
      );
    }
    if (n.input?.[2]) scaleInit(n.input[2], s, n.name ?? "");
    const readers = batchNormReaders(ix, counts, n.output?.[0] as string);
    if (!readers) throw new Error(`${n.name}: its channels do not reach only batch norms`);
    for (const { bn, offset } of readers) {
      const f = bnFactor.get(bn) ?? new Float64Array(counts.get(bn.input?.[0] ?? "") ?? 0).fill(1);
      for (let c = 0; c < s.length; c++) f[offset + c] = (f[offset + c] as number) * (s[c] as number);
      bnFactor.set(bn, f);
    }
  }
  for (const [bn, f] of bnFactor) {
    const ins = bn.input as string[];
    const gamma = constantSource(ix, ins[1] as string);
    const mean = constantSource(ix, ins[3] as string);
    if (!gamma || !mean || gamma.length !== f.length || mean.length !== f.length) {
      throw new Error(`${bn.name}: batch norm parameters are not constants of ${f.length} channels`);
    }
    const base = bn.name ?? ins[0];
    added.push(
      makeTensor(
        `${base}_scale_equalized`,
        DataType.FLOAT,
        [f.length],
        Float32Array.from(gamma, (v, c) => v / (f[c] as number)),
      ),
      makeTensor(
        `${base}_mean_equalized`,
        DataType.FLOAT,
        [f.length],
        Float32Array.from(mean, (v, c) => v * (f[c] as number)),
      ),
    );
    ins[1] = `${base}_scale_equalized`;
    ins[3] = `${base}_mean_equalized`;
  }
  replaceInitializers(g, removed, added);
  // Parameters only the rewired batch norms read are now unused.
  const read = new Set((g.node ?? []).flatMap((n) => n.input ?? []));
  g.initializer = (g.initializer ?? []).filter((t) => read.has(t.name ?? ""));
  return m;
}

/**
 * Per-channel scales for equalizeChannels from each tensor's per-channel
 * [min, max]: the largest s that keeps the channel inside the tensor's
 * overall range, so every channel spans it and the tensor's range (and
 * int8 step) does not grow. Capped at `maxScale`, and 1 for a channel that
 * was always 0: a channel nearly silent on the calibration images could
 * otherwise be blown past the range on other images.
 */
export function equalizingScales(min: Float64Array, max: Float64Array, maxScale = 16): Float32Array {
  const lo = Math.min(0, ...min);
  const hi = Math.max(0, ...max);
  return Float32Array.from(min, (mn, c) => {
    const mx = max[c] as number;
    if (!(mx > 0) && !(mn < 0)) return 1;
    let s = maxScale;
    if (mx > 0) s = Math.min(s, hi / mx);
    if (mn < 0) s = Math.min(s, lo / mn);
    return Math.max(1, s);
  });
}

// ---------------------------------------------------------------- calibration statistics

/**
 * Running statistics of one tensor over the calibration set. `minmax` keeps
 * the extremes; `percentile` (two passes) builds a histogram over the first
 * pass's [min, max] and cuts the tails, like onnxruntime's percentile
 * calibrator (which for symmetric types works on |x|).
 */
export class RangeCollector {
  readonly ranges = new Map<string, Range>();
  private hist = new Map<string, { lo: number; hi: number; counts: Float64Array }>();

  constructor(
    private readonly symmetric: boolean,
    private readonly bins = 2048,
  ) {}

  /** Pass 1 (and the only pass for minmax). */
  addMinMax(name: string, data: Float32Array): void {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const r = this.ranges.get(name);
    this.ranges.set(name, r ? { min: Math.min(r.min, lo), max: Math.max(r.max, hi) } : { min: lo, max: hi });
  }

  /** Pass 2 for percentile. */
  addHistogram(name: string, data: Float32Array): void {
    let h = this.hist.get(name);
    if (!h) {
      const r = this.ranges.get(name);
      if (!r) throw new Error(`histogram before min/max for ${name}`);
      const a = Math.max(Math.abs(r.min), Math.abs(r.max));
      h = this.symmetric
        ? { lo: 0, hi: a, counts: new Float64Array(this.bins) }
        : { lo: r.min, hi: r.max, counts: new Float64Array(this.bins) };
      this.hist.set(name, h);
    }
    const width = (h.hi - h.lo) / this.bins || 1;
    const { counts } = h;
    for (let i = 0; i < data.length; i++) {
      const v = this.symmetric ? Math.abs(data[i] as number) : (data[i] as number);
      const k = Math.min(this.bins - 1, Math.max(0, Math.floor((v - h.lo) / width)));
      counts[k] = (counts[k] as number) + 1;
    }
  }

  /** Ranges cut at `percentile` (e.g. 99.999) of each histogram. */
  percentileRanges(percentile: number): Map<string, Range> {
    const out = new Map<string, Range>();
    for (const [name, r] of this.ranges) {
      const h = this.hist.get(name);
      if (!h) {
        out.set(name, r);
        continue;
      }
      const total = h.counts.reduce((a, b) => a + b, 0);
      const width = (h.hi - h.lo) / this.bins;
      const edge = (p: number) => {
        let acc = 0;
        for (let k = 0; k < this.bins; k++) {
          acc += h.counts[k] as number;
          if (acc >= p * total) return h.lo + (k + 1) * width;
        }
        return h.hi;
      };
      if (this.symmetric) {
        const a = Math.min(edge(percentile / 100), Math.max(Math.abs(r.min), Math.abs(r.max)));
        out.set(name, { min: Math.max(r.min, -a), max: Math.min(r.max, a) });
      } else {
        const lo = edge((100 - percentile) / 100) - width;
        out.set(name, { min: Math.max(r.min, lo), max: Math.min(r.max, edge(percentile / 100)) });
      }
    }
    return out;
  }
}

/** Op-type histogram of a graph, e.g. for counting Q/DQ nodes. */
export function opCounts(model: ModelProto): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of model.graph?.node ?? []) counts[n.opType ?? ""] = (counts[n.opType ?? ""] ?? 0) + 1;
  return counts;
}
