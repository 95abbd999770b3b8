/**
 * What models:import refuses, and why. Every check throws an ImportError whose
 * message names the tensor, the shape it found and what edgetag needs.
 */
import type { PreprocessSpec } from "../../src/models/manifest";
import type { DeclaredDim, TensorDescription } from "../onnx/model";
import { ImportError, type Layout, type OutputKind } from "./args";

const fmtDims = (dims: readonly (DeclaredDim | number)[]): string => `[${dims.map((d) => d ?? "?").join(",")}]`;

/** Width x height the preprocessing hands to the model. */
export function preprocessOutputSize(spec: PreprocessSpec): { width: number; height: number } {
  if (spec.crop) return spec.crop;
  if (spec.resize.mode === "exact") return { width: spec.resize.width, height: spec.resize.height };
  throw new ImportError(
    `--resize ${spec.resize.size} keeps the aspect ratio, so the image size varies: add --crop WxH (or resize to an exact --resize WxH)`,
  );
}

/** The layout the input shape says, when it is unambiguous: a 3 on exactly one of the candidate channel axes. */
function layoutFromShape(dims: readonly DeclaredDim[]): Layout | undefined {
  const nchw = dims[1] === 3;
  const nhwc = dims[3] === 3;
  if (nchw !== nhwc) return nchw ? "NCHW" : "NHWC";
  return undefined;
}

export interface CheckedInput {
  name: string;
  layout: Layout;
  width: number;
  height: number;
  /** Dims to feed for one image. */
  dims: number[];
  /** The declared batch dimension (symbolic name or 1), reused for extra outputs. */
  batch: DeclaredDim;
}

function pickLayout(input: TensorDescription, layout: Layout | undefined, explicit: boolean): Layout {
  const fromShape = layoutFromShape(input.dims);
  const chosen = explicit ? layout : (fromShape ?? layout);
  if (chosen) return chosen;
  throw new ImportError(
    `input "${input.name}" ${fmtDims(input.dims)} has no 3-channel axis in NCHW or NHWC position; edgetag feeds 3-channel RGB images`,
  );
}

function checkBatch(input: TensorDescription): DeclaredDim {
  const batch = input.dims[0] ?? null;
  if (typeof batch === "number" && batch !== 1) {
    throw new ImportError(
      `input "${input.name}" ${fmtDims(input.dims)} has batch size ${batch}; edgetag runs one image at a time: export with batch 1 or a symbolic batch dimension`,
    );
  }
  return batch ?? 1;
}

/**
 * The graph must take exactly one float32 image tensor: rank 4, batch 1 or
 * symbolic, 3 channels, and a height/width equal to what the preprocessing
 * produces (symbolic H/W take that size).
 */
export function checkInput(
  inputs: readonly TensorDescription[],
  spec: PreprocessSpec,
  layout: Layout | undefined,
  layoutExplicit: boolean,
): CheckedInput {
  const input = inputs[0];
  if (inputs.length !== 1 || !input) {
    throw new ImportError(
      `the graph has ${inputs.length} inputs (${inputs.map((i) => i.name).join(", ")}); edgetag feeds exactly one image tensor`,
    );
  }
  if (input.elemType !== "float32") {
    throw new ImportError(`input "${input.name}" is ${input.elemType}; edgetag feeds float32 tensors`);
  }
  if (input.dims.length !== 4) {
    throw new ImportError(`input "${input.name}" ${fmtDims(input.dims)} is not a rank-4 image tensor (NCHW or NHWC)`);
  }
  const batch = checkBatch(input);
  const chosen = pickLayout(input, layout, layoutExplicit);
  const [cAxis, hAxis, wAxis] = chosen === "NCHW" ? [1, 2, 3] : [3, 1, 2];
  const channels = input.dims[cAxis];
  if (channels !== 3) {
    throw new ImportError(
      `input "${input.name}" ${fmtDims(input.dims)} has ${channels ?? "?"} channels in ${chosen} layout; edgetag feeds 3-channel RGB images`,
    );
  }
  const { width, height } = preprocessOutputSize(spec);
  const declaredH = input.dims[hAxis];
  const declaredW = input.dims[wAxis];
  const hOk = typeof declaredH !== "number" || declaredH === height;
  const wOk = typeof declaredW !== "number" || declaredW === width;
  if (!hOk || !wOk) {
    throw new ImportError(
      `input "${input.name}" ${fmtDims(input.dims)} is ${declaredW ?? "?"}x${declaredH ?? "?"} (WxH) but the preprocessing yields ${width}x${height} (check --crop / --resize)`,
    );
  }
  const dims = chosen === "NCHW" ? [1, 3, height, width] : [1, height, width, 3];
  return { name: input.name, layout: chosen, width, height, dims, batch };
}

/** The graph output that holds the class scores. */
export function pickOutput(
  all: readonly TensorDescription[],
  wanted: string | undefined,
  features?: string,
): TensorDescription {
  const names = all.map((o) => o.name).join(", ");
  // A graph that already exports its features (like ours) has one other output: the scores.
  const outputs = wanted === undefined && features ? all.filter((o) => o.name !== features) : all;
  if (wanted !== undefined) {
    const found = all.find((o) => o.name === wanted);
    if (!found) throw new ImportError(`--output: the graph has no output "${wanted}" (outputs: ${names})`);
    return found;
  }
  const only = outputs[0];
  if (outputs.length !== 1 || !only) {
    throw new ImportError(`the graph has ${outputs.length} outputs (${names}); name the class scores with --output`);
  }
  return only;
}

export interface TestOutput {
  name: string;
  type: string;
  dims: readonly number[];
  data: Float32Array;
}

/** One score per label, whatever the shape ([1,N], [N], the ONNX zoo DenseNet's [1,N,1,1]). */
export function checkOutputMatchesLabels(out: TestOutput, labelSet: string, labelCount: number): void {
  if (out.type !== "float32")
    throw new ImportError(`output "${out.name}" is ${out.type}; edgetag reads float32 scores`);
  if (out.data.length !== labelCount) {
    throw new ImportError(
      `output "${out.name}" has ${out.data.length} values per image (shape ${fmtDims(out.dims)}) but the label set "${labelSet}" has ${labelCount} labels`,
    );
  }
  if (!out.data.every(Number.isFinite)) {
    throw new ImportError(`the test inference produced NaN or infinite values in output "${out.name}"`);
  }
}

/**
 * "probabilities" must look like a distribution on the test input; "logits"
 * must not come straight out of a Softmax (a second softmax would flatten the
 * scores users see).
 */
export function checkOutputKind(out: TestOutput, kind: OutputKind, endsInSoftmax: boolean): void {
  if (kind === "logits" && endsInSoftmax) {
    throw new ImportError(
      `output "${out.name}" comes out of a Softmax, so it holds probabilities: use --output-kind probabilities`,
    );
  }
  if (kind !== "probabilities") return;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const v of out.data) {
    sum += v;
    min = Math.min(min, v);
  }
  if (min < -1e-6 || Math.abs(sum - 1) > 1e-3) {
    throw new ImportError(
      `output "${out.name}" does not look like probabilities on the test input (min ${min.toPrecision(4)}, sum ${sum.toPrecision(6)}): use --output-kind logits`,
    );
  }
}
