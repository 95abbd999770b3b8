/**
 * A small ONNX graph library for Node-side tools (models:import,
 * models:quantize): decode/encode ModelProto with onnx-proto (protobufjs),
 * count parameters and MACs, probe every tensor's shape with one real run in
 * onnxruntime-node, and expose intermediate tensors as graph outputs.
 *
 * Dev-only: the Worker never imports this (it knows models only through their
 * manifests).
 */
import { readFileSync, rmSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import onnxProto, { type onnx as OnnxTypes } from "onnx-proto";
import ort from "onnxruntime-node";

export const { onnx } = onnxProto;
export type Model = OnnxTypes.IModelProto;
export type Graph = OnnxTypes.IGraphProto;
export type Node = OnnxTypes.INodeProto;
export type Tensor = OnnxTypes.ITensorProto;

/** protobufjs decodes int64 fields as Long objects when the `long` package is present. */
type Int64 = number | { toNumber(): number };

export const toNumber = (v: Int64 | null | undefined): number =>
  v == null ? 0 : typeof v === "number" ? v : v.toNumber();

export const elementCount = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------
// Load / save

export function decodeModel(bytes: Uint8Array): Model {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: Model): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export async function loadModel(path: string): Promise<Model> {
  return decodeModel(await readFile(path));
}

export async function saveModel(model: Model, path: string): Promise<Uint8Array> {
  const bytes = encodeModel(model);
  await writeFile(path, bytes);
  return bytes;
}

function graphOf(model: Model): Graph {
  if (!model.graph) throw new Error("ONNX model has no graph");
  return model.graph;
}

// ---------------------------------------------------------------------------
// Data types and I/O description

/** TensorProto.DataType codes → the names ORT and onnx use. */
const DATA_TYPES: Readonly<Record<number, string>> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  16: "bfloat16",
};

export const dataTypeName = (code: number | null | undefined): string => DATA_TYPES[code ?? 0] ?? `type#${code ?? 0}`;

const DATA_TYPE_CODES: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(DATA_TYPES).map(([code, name]) => [name, Number(code)]),
);

/** One dimension as declared in the graph: a size, a symbolic name, or unknown (null). */
export type DeclaredDim = number | string | null;

export interface TensorDescription {
  name: string;
  elemType: string;
  dims: DeclaredDim[];
}

function describeValue(v: OnnxTypes.IValueInfoProto): TensorDescription {
  const tt = v.type?.tensorType;
  const dims = (tt?.shape?.dim ?? []).map((d): DeclaredDim => {
    if (d.dimValue != null && toNumber(d.dimValue) > 0) return toNumber(d.dimValue);
    return d.dimParam ? d.dimParam : null;
  });
  return { name: v.name ?? "", elemType: dataTypeName(tt?.elemType), dims };
}

/**
 * The graph's real inputs and its outputs. Old exporters (IR < 4) also list
 * every initializer as a graph input; those are weights, not inputs.
 */
export function describeIo(model: Model): { inputs: TensorDescription[]; outputs: TensorDescription[] } {
  const graph = graphOf(model);
  const weights = new Set((graph.initializer ?? []).map((t) => t.name));
  return {
    inputs: (graph.input ?? []).filter((v) => !weights.has(v.name)).map(describeValue),
    outputs: (graph.output ?? []).map(describeValue),
  };
}

export function opsetVersion(model: Model): number {
  const def = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
  return toNumber(def?.version);
}

/** How many nodes of each op type, e.g. { Conv: 52, Gemm: 1 }. */
export function opCounts(model: Model): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of graphOf(model).node ?? []) counts[n.opType ?? "?"] = (counts[n.opType ?? "?"] ?? 0) + 1;
  return counts;
}

// ---------------------------------------------------------------------------
// Constant tensors and parameters

export interface ConstantTensor {
  name: string;
  source: "initializer" | "constant-node";
  dataType: string;
  dims: number[];
  elements: number;
  /**
   * How many times a node uses this tensor as a learned weight (see
   * PARAMETER_SLOTS). 0 = not a parameter (quantisation scale/zero point,
   * BatchNorm running statistic, shape, pad, clip bound, ...).
   */
  parameterUses: number;
}

/**
 * Which inputs of an op are learned weights, when they are constants.
 * "non-scalar": any constant with more than one element (the bias or scale of
 * a MatMul+Add / Mul layer as tf2onnx writes them); scalars there are
 * arithmetic constants. DequantizeLinear's input 0 is the stored int8/uint8
 * (or int32 bias) weight; its scale and zero point (inputs 1, 2) are not
 * parameters. BatchNormalization's mean and variance (3, 4) are statistics.
 */
const PARAMETER_SLOTS: Readonly<Record<string, readonly number[] | "non-scalar">> = {
  Conv: [1, 2],
  // com.microsoft Conv/Gemm + activation, as onnxruntime's optimiser writes them (a pre-optimised graph).
  FusedConv: [1, 2],
  ConvTranspose: [1, 2],
  ConvInteger: [1],
  QLinearConv: [3, 8],
  Gemm: [0, 1, 2],
  FusedGemm: [0, 1, 2],
  MatMul: [0, 1],
  MatMulInteger: [0, 1],
  QLinearMatMul: [0, 3],
  // com.microsoft ops of QOperator graphs: a constant operand is a quantised bias or scale.
  QLinearAdd: [0, 3],
  QLinearMul: [0, 3],
  BatchNormalization: [1, 2],
  InstanceNormalization: [1, 2],
  LayerNormalization: [1, 2],
  GroupNormalization: [1, 2],
  PRelu: [1],
  DequantizeLinear: [0],
  Add: "non-scalar",
  Sub: "non-scalar",
  Mul: "non-scalar",
  Div: "non-scalar",
};

function constantNodeTensor(node: Node): { dataType: number; dims: number[] } | undefined {
  const attr = node.attribute?.[0];
  if (!attr) return undefined;
  if (attr.t) return { dataType: attr.t.dataType ?? 0, dims: (attr.t.dims ?? []).map(toNumber) };
  if (attr.name === "value_float") return { dataType: 1, dims: [] };
  if (attr.name === "value_int") return { dataType: 7, dims: [] };
  if (attr.name === "value_floats") return { dataType: 1, dims: [attr.floats?.length ?? 0] };
  if (attr.name === "value_ints") return { dataType: 7, dims: [attr.ints?.length ?? 0] };
  return undefined;
}

function collectConstants(graph: Graph): Map<string, ConstantTensor> {
  const out = new Map<string, ConstantTensor>();
  const add = (name: string, source: ConstantTensor["source"], dataType: number, dims: number[]) =>
    out.set(name, {
      name,
      source,
      dataType: dataTypeName(dataType),
      dims,
      elements: elementCount(dims),
      parameterUses: 0,
    });
  for (const t of graph.initializer ?? [])
    add(t.name ?? "", "initializer", t.dataType ?? 0, (t.dims ?? []).map(toNumber));
  for (const n of graph.node ?? []) {
    const value = n.opType === "Constant" ? constantNodeTensor(n) : undefined;
    if (value && n.output?.[0]) add(n.output[0], "constant-node", value.dataType, value.dims);
  }
  return out;
}

/**
 * Maps Identity outputs back to the constant they pass through: torch.onnx
 * merges initializers with equal values and feeds the extra users through
 * Identity nodes (e.g. BatchNorm scales that are all equal).
 */
function identityAliases(graph: Graph, constants: ReadonlyMap<string, ConstantTensor>): Map<string, string> {
  const alias = new Map<string, string>();
  for (const n of graph.node ?? []) {
    if (n.opType !== "Identity") continue;
    const src = n.input?.[0] ?? "";
    const root = alias.get(src) ?? (constants.has(src) ? src : undefined);
    if (root && n.output?.[0]) alias.set(n.output[0], root);
  }
  return alias;
}

function isParameterSlot(opType: string, slot: number, tensor: ConstantTensor): boolean {
  const rule = PARAMETER_SLOTS[opType];
  if (!rule) return false;
  if (rule === "non-scalar") return tensor.elements > 1 && tensor.dataType.startsWith("float");
  return rule.includes(slot);
}

/**
 * Every constant tensor of the graph (initializers and Constant nodes) with
 * its element count and how many nodes use it as a weight.
 */
export function listInitializers(model: Model): ConstantTensor[] {
  const graph = graphOf(model);
  const constants = collectConstants(graph);
  const alias = identityAliases(graph, constants);
  for (const n of graph.node ?? []) {
    if (n.opType === "Identity" || n.opType === "Constant") continue;
    (n.input ?? []).forEach((name, slot) => {
      const tensor = constants.get(alias.get(name) ?? name);
      if (tensor && isParameterSlot(n.opType ?? "", slot, tensor)) tensor.parameterUses++;
    });
  }
  return [...constants.values()];
}

/**
 * Learned weights as the ONNX graph stores them: Σ elements × uses. A weight
 * shared by several nodes counts once per node (torch.onnx deduplicates
 * *equal-valued* initializers, which would otherwise make the count depend on
 * the values). BatchNorm folded into a convolution by the exporter leaves one
 * bias per channel where the framework counted gamma and beta, so a folded
 * graph reads lower than `sum(p.numel() for p in model.parameters())` by the
 * number of folded channels.
 */
export function countParameters(model: Model): number {
  return listInitializers(model).reduce((sum, t) => sum + t.elements * t.parameterUses, 0);
}

// ---------------------------------------------------------------------------
// Shape probe

export interface ProbedTensor {
  dims: number[];
  type: string;
}
export type TensorShapes = ReadonlyMap<string, ProbedTensor>;

export interface ProbeOptions {
  /** Dims of the (single) input; default: declared dims with symbolic ones set to 1. */
  inputDims?: readonly number[];
}

/** Replaces the graph outputs (a shallow copy; `model` is not modified). */
function withOutputs(model: Model, outputs: OnnxTypes.IValueInfoProto[]): Model {
  return { ...model, graph: { ...graphOf(model), output: outputs } };
}

/** The model with every node output also declared as a graph output. */
export function exposeAllTensors(model: Model): Model {
  const graph = graphOf(model);
  const outputs = [...(graph.output ?? [])];
  const seen = new Set(outputs.map((o) => o.name));
  for (const n of graph.node ?? []) {
    for (const name of n.output ?? []) {
      if (!name || seen.has(name)) continue;
      seen.add(name);
      outputs.push({ name });
    }
  }
  return withOutputs(model, outputs);
}

function defaultInputDims(input: TensorDescription): number[] {
  return input.dims.map((d) => (typeof d === "number" ? d : 1));
}

/** A fixed pseudo-random pattern in [-1, 1] (no Math.random: runs must repeat). */
export function deterministicInput(length: number): Float32Array {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = Math.sin(i * 0.7311 + Math.cos(i * 0.0123) * 3);
  return x;
}

/**
 * onnxruntime-node's own graph optimisation of `bytes`, saved (through a
 * temporary file next to `tmpBase`): QDQ groups fused into QLinearConv/QGemm,
 * Conv+activation into FusedConv, and the int8 convolutions moved to NHWC
 * (level 3, "layout": onnxruntime-web's int8 kernels run faster so, 4 % on
 * DenseNet-121, so a graph saved at level extended and loaded with
 * optimisation off was that much slower). Level all minus the NchwcTransformer,
 * which rewrites fp32 convolutions into x86 blocked layouts the wasm build has
 * no kernels for. Deterministic (same bytes in, same bytes out), but tied to
 * this onnxruntime version's optimiser: re-run it when onnxruntime is upgraded.
 */
export const PREOPTIMIZE_LEVEL = "all, without NchwcTransformer";
export async function preoptimize(bytes: Uint8Array, tmpBase: string): Promise<Uint8Array> {
  const tmp = `${tmpBase}.preopt-${process.pid}.tmp`;
  const s = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
    optimizedModelFilePath: tmp,
    // onnxruntime warns that a level-3 graph may be host-specific; with NCHWc off it is not (models:preoptimize checks).
    logSeverityLevel: 3,
    extra: { optimization: { disable_specified_optimizers: "NchwcTransformer" } },
  });
  await s.release();
  try {
    return new Uint8Array(readFileSync(tmp));
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** One inference in onnxruntime-node with one thread and the graph as written. */
export async function runOnce(
  bytes: Uint8Array,
  feeds: Record<string, { data: Float32Array; dims: readonly number[] }>,
  optimization: "disabled" | "all" = "disabled",
): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: optimization,
  });
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor("float32", f.data, [...f.dims]);
    return await session.run(ortFeeds);
  } finally {
    await session.release();
  }
}

function singleFloatInput(model: Model): TensorDescription {
  const { inputs } = describeIo(model);
  const input = inputs[0];
  if (inputs.length !== 1 || !input) throw new Error(`expected one graph input, found ${inputs.length}`);
  if (input.elemType !== "float32") throw new Error(`input "${input.name}" is ${input.elemType}, not float32`);
  return input;
}

/**
 * Shapes of every tensor: node outputs (measured by one real run on a
 * deterministic input, with every node output added as a graph output),
 * the input as fed, and the initializers as declared.
 */
export async function probeShapes(model: Model, options: ProbeOptions = {}): Promise<Map<string, ProbedTensor>> {
  const input = singleFloatInput(model);
  const dims = [...(options.inputDims ?? defaultInputDims(input))];
  const outputs = await runOnce(encodeModel(exposeAllTensors(model)), {
    [input.name]: { data: deterministicInput(elementCount(dims)), dims },
  });
  const shapes = new Map<string, ProbedTensor>();
  for (const t of graphOf(model).initializer ?? []) {
    shapes.set(t.name ?? "", { dims: (t.dims ?? []).map(toNumber), type: dataTypeName(t.dataType) });
  }
  shapes.set(input.name, { dims, type: "float32" });
  for (const [name, t] of Object.entries(outputs)) shapes.set(name, { dims: [...t.dims].map(Number), type: t.type });
  return shapes;
}

// ---------------------------------------------------------------------------
// MACs

function dimsOf(shapes: TensorShapes, name: string | undefined, node: Node): number[] {
  const s = name ? shapes.get(name) : undefined;
  if (!s) throw new Error(`no shape for tensor "${name}" (input of ${node.opType} node "${node.name}")`);
  return s.dims;
}

function intAttribute(node: Node, name: string): number {
  return toNumber(node.attribute?.find((a) => a.name === name)?.i);
}

/** Inner-product length of each output element, per op; undefined = not counted. */
function macsPerOutput(node: Node, shapes: TensorShapes): number | undefined {
  const inputs = node.input ?? [];
  const weightDims = (slot: number) => dimsOf(shapes, inputs[slot], node).slice(1);
  const lastDim = (slot: number) => dimsOf(shapes, inputs[slot], node).at(-1) ?? 1;
  switch (node.opType) {
    case "Conv":
    case "FusedConv":
    case "ConvInteger":
      return elementCount(weightDims(1)); // Cin/group × kh × kw
    case "QLinearConv":
      return elementCount(weightDims(3));
    case "Gemm":
    case "FusedGemm": {
      const a = dimsOf(shapes, inputs[0], node);
      return (intAttribute(node, "transA") ? a[0] : a[1]) ?? 1;
    }
    case "MatMul":
    case "MatMulInteger":
      return lastDim(0);
    case "QLinearMatMul":
      return lastDim(0);
    default:
      return undefined;
  }
}

/**
 * Multiply-accumulates of one inference at the probed input size:
 * convolutions (grouped and depthwise included) as output elements ×
 * Cin/group × kh × kw; ConvTranspose as input elements × Cout/group × kh × kw;
 * Gemm/MatMul as M×N×K. Biases, normalisation, activations, pooling and other
 * element-wise ops are not counted (the convention of the PyTorch-hook figures
 * in the committed manifests).
 */
export function countMacs(model: Model, shapes: TensorShapes): number {
  let total = 0;
  for (const node of graphOf(model).node ?? []) {
    if (node.opType === "ConvTranspose") {
      const inputs = node.input ?? [];
      total += elementCount(dimsOf(shapes, inputs[0], node)) * elementCount(dimsOf(shapes, inputs[1], node).slice(1));
      continue;
    }
    const perOutput = macsPerOutput(node, shapes);
    if (perOutput !== undefined) total += elementCount(dimsOf(shapes, node.output?.[0], node)) * perOutput;
  }
  return total;
}

// ---------------------------------------------------------------------------
// Extra outputs

export interface OutputType {
  type: string;
  dims: readonly DeclaredDim[];
}

/**
 * Declares an intermediate tensor as an extra graph output (e.g. the pooled
 * penultimate features), so a runtime can fetch it with the logits. Returns a
 * new model; `model` is not modified.
 */
export function addOutput(model: Model, tensorName: string, type?: OutputType): Model {
  const graph = graphOf(model);
  if ((graph.output ?? []).some((o) => o.name === tensorName)) return model;
  const produced = (graph.node ?? []).some((n) => (n.output ?? []).includes(tensorName));
  if (!produced) throw new Error(`no node produces a tensor named "${tensorName}"`);
  const value: OnnxTypes.IValueInfoProto = { name: tensorName };
  if (type) {
    const elemType = DATA_TYPE_CODES[type.type];
    if (elemType === undefined) throw new Error(`unknown tensor type ${type.type}`);
    const dim = type.dims.map((d) =>
      typeof d === "number" ? { dimValue: d } : typeof d === "string" ? { dimParam: d } : {},
    );
    value.type = { tensorType: { elemType, shape: { dim } } };
  }
  return withOutputs(model, [...(graph.output ?? []), value]);
}

// ---------------------------------------------------------------------------
// Pooled features

const GLOBAL_POOLS = new Set(["GlobalAveragePool", "GlobalMaxPool", "QLinearGlobalAveragePool"]);
const WINDOW_POOLS = new Set(["AveragePool", "MaxPool", "ReduceMean", "ReduceMax"]);
const RESHAPES = new Set(["Flatten", "Reshape", "Squeeze", "DequantizeLinear", "Identity"]);

function consumers(graph: Graph, tensor: string): Node[] {
  return (graph.node ?? []).filter((n) => (n.input ?? []).includes(tensor));
}

/** A pool whose output has a single spatial position, in either layout. */
function isGlobalPool(node: Node, shapes: TensorShapes): boolean {
  if (GLOBAL_POOLS.has(node.opType ?? "")) return true;
  if (!WINDOW_POOLS.has(node.opType ?? "")) return false;
  const dims = shapes.get(node.output?.[0] ?? "")?.dims ?? [];
  if (dims.length === 4) return (dims[2] === 1 && dims[3] === 1) || (dims[1] === 1 && dims[2] === 1);
  return dims.length === 2; // ReduceMean over H,W without keepdims
}

/**
 * Follows a pooled tensor through shape-only ops (Flatten, Reshape, Squeeze,
 * and DequantizeLinear for quantised pools) while the element count stays the
 * same, ending on a float tensor, e.g. GlobalAveragePool [1,C,1,1] → Flatten
 * [1,C].
 */
function followReshapes(graph: Graph, start: string, shapes: TensorShapes): string {
  let name = start;
  const count = elementCount(shapes.get(start)?.dims ?? []);
  for (;;) {
    const next = consumers(graph, name);
    const only = next.length === 1 ? next[0] : undefined;
    const out = only?.output?.[0];
    if (!only || !out || !RESHAPES.has(only.opType ?? "")) return name;
    if (elementCount(shapes.get(out)?.dims ?? []) !== count) return name;
    name = out;
  }
}

export interface FeatureTensor {
  name: string;
  /** Elements per image. */
  dim: number;
  type: string;
  dims: number[];
}

/**
 * The pooled penultimate feature vector: the output of the graph's last
 * global pooling, after any Flatten/Reshape. Undefined when the graph has none.
 */
export function findPooledFeatures(model: Model, shapes: TensorShapes): FeatureTensor | undefined {
  const graph = graphOf(model);
  const nodes = graph.node ?? [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as Node;
    const out = node.output?.[0];
    if (!out || !isGlobalPool(node, shapes)) continue;
    const name = followReshapes(graph, out, shapes);
    const probed = shapes.get(name);
    if (!probed) return undefined;
    const batch = probed.dims[0] ?? 1;
    return { name, dim: elementCount(probed.dims) / batch, type: probed.type, dims: probed.dims };
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Quantisation summary

export interface QuantizationSummary {
  scheme: string;
  weights: string;
  activations: string;
}

const QOPERATORS = ["QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"];

/**
 * Whether onnxruntime runs integer kernels for this graph: QOperator nodes
 * (also the QLinearAdd and QGemm a pre-optimised graph carries), or QDQ
 * activations (QuantizeLinear), which it fuses into them at load unless QDQ
 * handling is switched off (`session.disable_quant_qdq`, the caller's to check).
 */
export function runsIntegerKernels(model: Model): boolean {
  const ops = opCounts(model);
  return [...QOPERATORS, "QLinearAdd", "QGemm", "QuantizeLinear"].some((op) => (ops[op] ?? 0) > 0);
}

/** Stored types of the weights behind DequantizeLinear, and whether any scale is per channel. */
function dequantizedWeights(model: Model): { types: string; perChannel: boolean } {
  const graph = graphOf(model);
  const constants = collectConstants(graph);
  const types = new Set<string>();
  let perChannel = false;
  for (const n of graph.node ?? []) {
    const weight = n.opType === "DequantizeLinear" ? constants.get(n.input?.[0] ?? "") : undefined;
    if (!weight) continue;
    types.add(weight.dataType);
    perChannel ||= (constants.get(n.input?.[1] ?? "")?.elements ?? 1) > 1;
  }
  return { types: [...types].sort().join("/"), perChannel };
}

/** Describes how the graph stores weights and activations, from its op types and weight dtypes. */
export function describeQuantization(model: Model): QuantizationSummary {
  const ops = opCounts(model);
  const qops = QOPERATORS.filter((op) => ops[op]);
  if (qops.length > 0) {
    return {
      scheme: `integer operators (QOperator format: ${qops.join(", ")})`,
      weights: "int8/uint8 inside the integer operators",
      activations: "8-bit between integer operators",
    };
  }
  if (ops.DequantizeLinear) {
    const w = dequantizedWeights(model);
    const weights = `${w.types} ${w.perChannel ? "per-channel" : "per-tensor"} (DequantizeLinear)`;
    if (ops.QuantizeLinear) return { scheme: "QDQ (weights and activations)", weights, activations: "8-bit QDQ" };
    return { scheme: "weight-only (DequantizeLinear on weights)", weights, activations: "float32" };
  }
  return { scheme: "none", weights: "float32", activations: "float32" };
}
