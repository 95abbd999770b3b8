/**
 * models:import, step by step: read and check the graph, run it for real in
 * onnxruntime-node, measure it, and only when everything holds write the
 * model folder, the label set, SHA256SUMS and the catalog, then upload.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { ModelManifest } from "../../src/models/manifest";
import { jsonText, MODELS_DIR, r2KeyFor, sha256Hex, sha256Line, writeSha256Sums } from "../model-files";
import { writeCatalog } from "../models-catalog";
import {
  addOutput,
  countMacs,
  countParameters,
  decodeModel,
  describeIo,
  describeQuantization,
  deterministicInput,
  elementCount,
  encodeModel,
  type FeatureTensor,
  findPooledFeatures,
  type Model,
  opCounts,
  opsetVersion,
  probeShapes,
  runOnce,
  type TensorShapes,
} from "../onnx/model";
import { ImportError, type ImportOptions, type OutputKind } from "./args";
import {
  type CheckedInput,
  checkInput,
  checkOutputKind,
  checkOutputMatchesLabels,
  pickOutput,
  type TestOutput,
} from "./checks";
import { checkLabelSetFree, type LabelSet, resolveLabels, writeLabelSet } from "./labels";
import { remoteUploadCommand, uploadLocal } from "./upload";

export const MODEL_FILE_NAME = "model.onnx";

export interface ImportResult {
  manifest: ModelManifest;
  dir: string;
  modelFile: string;
  labelsWritten: boolean;
  catalogWritten: boolean;
  upload: "uploaded" | "present" | "skipped" | "remote";
  remoteCommand?: string;
  notes: string[];
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function decodeOrFail(bytes: Uint8Array, path: string): Model {
  try {
    const model = decodeModel(bytes);
    if (!model.graph?.node?.length) throw new Error("no graph nodes");
    return model;
  } catch (e) {
    throw new ImportError(`${path} is not a readable ONNX model (${message(e)})`);
  }
}

async function probeOrFail(model: Model, input: CheckedInput): Promise<TensorShapes> {
  try {
    return await probeShapes(model, { inputDims: input.dims });
  } catch (e) {
    throw new ImportError(`onnxruntime-node could not run the graph on a ${input.dims.join("x")} input: ${message(e)}`);
  }
}

/** The producer of `tensor`, looking through shape-only ops. */
function producerOp(model: Model, tensor: string): string | undefined {
  const nodes = model.graph?.node ?? [];
  let name = tensor;
  for (let hops = 0; hops < 8; hops++) {
    const node = nodes.find((n) => (n.output ?? []).includes(name));
    if (!node) return undefined;
    if (!["Reshape", "Flatten", "Squeeze", "Identity"].includes(node.opType ?? "")) return node.opType ?? undefined;
    name = node.input?.[0] ?? "";
  }
  return undefined;
}

function resolveFeatures(model: Model, shapes: TensorShapes, wanted: string | undefined): FeatureTensor | undefined {
  if (wanted === undefined) return undefined;
  let features: FeatureTensor | undefined;
  if (wanted === "auto") {
    features = findPooledFeatures(model, shapes);
    if (!features) throw new ImportError("--features auto: the graph has no global pooling; name the tensor instead");
  } else {
    const probed = shapes.get(wanted);
    const produced = (model.graph?.node ?? []).some((n) => (n.output ?? []).includes(wanted));
    if (!probed || !produced) throw new ImportError(`--features: no node produces a tensor named "${wanted}"`);
    features = { name: wanted, dims: probed.dims, type: probed.type, dim: elementCount(probed.dims.slice(1)) };
  }
  if (features.type !== "float32") {
    throw new ImportError(`--features: tensor "${features.name}" is ${features.type}; features must be float32`);
  }
  return features;
}

/** The graph as it will be served: the original bytes, or with the features tensor added as an output. */
function servedBytes(model: Model, original: Uint8Array, features: FeatureTensor | undefined, input: CheckedInput) {
  if (!features || (model.graph?.output ?? []).some((o) => o.name === features.name)) return original;
  const dims = [input.batch, ...features.dims.slice(1)];
  return encodeModel(addOutput(model, features.name, { type: features.type, dims }));
}

async function testInference(bytes: Uint8Array, input: CheckedInput, names: string[]): Promise<TestOutput[]> {
  let outputs: Awaited<ReturnType<typeof runOnce>>;
  try {
    const data = deterministicInput(elementCount(input.dims));
    outputs = await runOnce(bytes, { [input.name]: { data, dims: input.dims } }, "all");
  } catch (e) {
    throw new ImportError(`the test inference failed in onnxruntime-node: ${message(e)}`);
  }
  return names.map((name) => {
    const t = outputs[name];
    if (!t) throw new ImportError(`the test inference returned no tensor "${name}"`);
    const data = t.type === "float32" ? (t.data as Float32Array) : new Float32Array();
    return { name, type: t.type, dims: [...t.dims].map(Number), data };
  });
}

function outputKind(explicit: OutputKind | undefined, endsInSoftmax: boolean, notes: string[]): OutputKind {
  if (explicit) return explicit;
  const kind = endsInSoftmax ? "probabilities" : "logits";
  notes.push(`output kind: ${kind} (inferred: the graph ${endsInSoftmax ? "ends" : "does not end"} in Softmax)`);
  return kind;
}

function architectureOf(model: Model): string {
  const counts = Object.entries(opCounts(model))
    .filter(([op]) => /Conv|Gemm|MatMul|Pool|Attention/.test(op))
    .sort((a, b) => b[1] - a[1])
    .map(([op, n]) => `${n} ${op}`);
  return `ONNX graph, opset ${opsetVersion(model)}${counts.length ? `: ${counts.join(", ")}` : ""}`;
}

const UNTRAINED_NOTE = "UNTRAINED weights: the labels it returns are not meaningful predictions.";

interface Measured {
  model: Model;
  sourceSha: string;
  bytes: Uint8Array;
  input: CheckedInput;
  output: TestOutput;
  kind: OutputKind;
  features: FeatureTensor | undefined;
  labels: LabelSet;
  shapes: TensorShapes;
  notes: string[];
}

function buildManifest(o: ImportOptions, m: Measured): ModelManifest {
  const sha = sha256Hex(m.bytes);
  const untrained = !o.trained;
  const name = o.name ?? o.id;
  const description =
    o.description ??
    `Imported by npm run models:import from ${basename(o.modelPath)} (sha256 ${m.sourceSha}); ` +
      `input ${m.input.name} ${m.input.layout} ${m.input.width}x${m.input.height}, output ${m.output.name} (${m.kind}).`;
  const source: unknown = {
    id: o.id,
    version: o.version,
    name: untrained && !/untrained/i.test(name) ? `${name} (untrained weights)` : name,
    description: untrained && !/untrained/i.test(description) ? `${description} ${UNTRAINED_NOTE}` : description,
    architecture: o.architecture ?? architectureOf(m.model),
    trained: o.trained,
    license: o.license ?? "unspecified (no --license given at import)",
    source: o.source ?? `${basename(o.modelPath)} (sha256 ${m.sourceSha})`,
    file: { r2Key: r2KeyFor(o.id, sha, MODEL_FILE_NAME), sha256: sha, bytes: m.bytes.byteLength },
    input: { name: m.input.name, layout: m.input.layout, width: m.input.width, height: m.input.height },
    preprocess: o.preprocess,
    output: {
      name: m.output.name,
      kind: m.kind,
      ...(m.features ? { features: { name: m.features.name, dim: m.features.dim } } : {}),
    },
    labels: m.labels.name,
    numClasses: m.labels.labels.length,
    stats: { parameters: countParameters(m.model), macs: countMacs(m.model, m.shapes) },
    quantization: describeQuantization(m.model),
  };
  const parsed = ModelManifest.safeParse(source);
  if (!parsed.success) throw new ImportError(`the manifest would be invalid: ${parsed.error.message}`);
  return parsed.data;
}

/** Reads, checks, runs and measures the model; writes nothing. */
async function measure(o: ImportOptions): Promise<Measured> {
  if (!existsSync(o.modelPath)) throw new ImportError(`${o.modelPath} does not exist`);
  const original = new Uint8Array(await readFile(o.modelPath));
  const model = decodeOrFail(original, o.modelPath);
  const io = describeIo(model);
  const input = checkInput(io.inputs, o.preprocess, o.layout, o.layoutExplicit);
  const featureHint = o.features && o.features !== "auto" ? o.features : "features";
  const outputDesc = pickOutput(io.outputs, o.outputName, featureHint);
  const labels = await resolveLabels(o.labels, o.labelsName, o.outDir);
  const shapes = await probeOrFail(model, input);
  const features = resolveFeatures(model, shapes, o.features);
  const bytes = servedBytes(model, original, features, input);
  const names = features ? [outputDesc.name, features.name] : [outputDesc.name];
  const [output, featureOut] = (await testInference(bytes, input, names)) as [TestOutput, TestOutput | undefined];
  checkOutputMatchesLabels(output, labels.name, labels.labels.length);
  const endsInSoftmax = producerOp(model, output.name) === "Softmax";
  const notes: string[] = [];
  const kind = outputKind(o.outputKind, endsInSoftmax, notes);
  checkOutputKind(output, kind, endsInSoftmax);
  if (features && featureOut?.data.length !== features.dim) {
    throw new ImportError(
      `features "${features.name}" returned ${featureOut?.data.length} values, not ${features.dim}`,
    );
  }
  return { model, sourceSha: sha256Hex(original), bytes, input, output, kind, features, labels, shapes, notes };
}

async function clearModelDir(dir: string): Promise<void> {
  for (const f of await readdir(dir)) {
    if (f === "manifest.json" || f.endsWith(".onnx") || f.endsWith(".sha256")) await rm(join(dir, f));
  }
}

async function writeModelFolder(o: ImportOptions, manifest: ModelManifest, bytes: Uint8Array): Promise<string> {
  const dir = join(o.outDir, o.id);
  if (existsSync(join(dir, "manifest.json"))) {
    if (!o.force) throw new ImportError(`model "${o.id}" already exists in ${dir} (pass --force to replace it)`);
    await clearModelDir(dir);
  }
  await mkdir(dir, { recursive: true });
  const modelFile = join(dir, MODEL_FILE_NAME);
  await writeFile(modelFile, bytes);
  await writeFile(`${modelFile}.sha256`, sha256Line(manifest.file.sha256, MODEL_FILE_NAME));
  await writeFile(join(dir, "manifest.json"), jsonText(manifest));
  return modelFile;
}

async function upload(o: ImportOptions, manifest: ModelManifest, bytes: Uint8Array, modelFile: string) {
  if (o.remote) return { upload: "remote" as const, remoteCommand: remoteUploadCommand(manifest, modelFile) };
  if (!o.upload) return { upload: "skipped" as const };
  return { upload: await uploadLocal(manifest, bytes) };
}

export async function importModel(o: ImportOptions): Promise<ImportResult> {
  const measured = await measure(o);
  const manifest = buildManifest(o, measured);
  const dir = join(o.outDir, o.id);
  if (existsSync(join(dir, "manifest.json")) && !o.force) {
    throw new ImportError(`model "${o.id}" already exists in ${dir} (pass --force to replace it)`);
  }
  await checkLabelSetFree(measured.labels, o.outDir);
  const modelFile = await writeModelFolder(o, manifest, measured.bytes);
  const labelsWritten = await writeLabelSet(measured.labels, o.outDir);
  await writeSha256Sums(o.outDir);
  const catalogWritten = resolve(o.outDir) === MODELS_DIR;
  if (catalogWritten) await writeCatalog();
  const notes = [...measured.notes];
  if (!o.license) notes.push("no --license given: the manifest says the licence is unspecified");
  if (labelsWritten && measured.labels.fromFile)
    notes.push(`new label set: document its source in ${join(o.outDir, "labels", "README.md")}`);
  return {
    manifest,
    dir,
    modelFile,
    labelsWritten,
    catalogWritten,
    notes,
    ...(await upload(o, manifest, measured.bytes, modelFile)),
  };
}
