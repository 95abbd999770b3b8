/**
 * Command line of `npm run models:import`: presets, preprocessing flags and the
 * manifest fields a graph cannot tell (training, licence, provenance).
 */
import { parseArgs } from "node:util";
import type { PreprocessSpec, ResizeSpec } from "../../src/models/manifest";

/** A user mistake: printed without a stack trace, exit code 1. */
export class ImportError extends Error {
  override name = "ImportError";
}

export type Layout = "NCHW" | "NHWC";
export type OutputKind = "logits" | "probabilities";
type Filter = PreprocessSpec["filter"];

export interface Preset {
  description: string;
  preprocess: PreprocessSpec;
  layout: Layout;
  labels: string;
  outputKind: OutputKind;
}

const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** Named preprocessing recipes; anything else is spelled out with the explicit flags. */
export const PRESETS: Readonly<Record<string, Preset>> = {
  imagenet: {
    description: "torchvision ImageNet eval: Resize(256) bilinear, CenterCrop(224), ImageNet mean/std, NCHW logits",
    preprocess: {
      resize: { mode: "shortest-edge", size: 256 },
      filter: "bilinear",
      crop: { width: 224, height: 224 },
      rescale: 1 / 255,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
    },
    layout: "NCHW",
    labels: "imagenet-1k",
    outputKind: "logits",
  },
  "imagenet-bicubic": {
    description: "as imagenet with bicubic resampling (timm's default for many ImageNet models)",
    preprocess: {
      resize: { mode: "shortest-edge", size: 256 },
      filter: "bicubic",
      crop: { width: 224, height: 224 },
      rescale: 1 / 255,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
    },
    layout: "NCHW",
    labels: "imagenet-1k",
    outputKind: "logits",
  },
  nsfwjs: {
    description: "nsfwjs: /255, TF.js resizeBilinear(224x224, alignCorners) ignoring aspect, NHWC, 5 probabilities",
    preprocess: {
      resize: { mode: "exact", width: 224, height: 224 },
      filter: "bilinear-tf-align-corners",
      rescale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    },
    layout: "NHWC",
    labels: "nsfw-5",
    outputKind: "probabilities",
  },
};

export interface ImportOptions {
  modelPath: string;
  id: string;
  preprocess: PreprocessSpec;
  /** Explicit --layout, else the preset's; the graph's own shape decides when it is unambiguous. */
  layout?: Layout;
  layoutExplicit: boolean;
  labels: string;
  labelsName?: string;
  outputName?: string;
  outputKind?: OutputKind;
  features?: string;
  trained: boolean;
  name?: string;
  description?: string;
  architecture?: string;
  license?: string;
  source?: string;
  version: string;
  remote: boolean;
  upload: boolean;
  outDir: string;
  force: boolean;
}

export const USAGE = `usage: npm run models:import -- <model.onnx> --id <id> (--trained | --untrained) [options]

  --preset <name>          ${Object.keys(PRESETS).join(" | ")} (preprocessing, layout, labels, output kind)
  --labels <file|name>     label file (.json array or .txt one per line) or an existing models/labels/<name>
  --labels-name <name>     name for a new label set (default: the file's base name)
  --resize <N | WxH>       N: shorter side to N keeping aspect (torchvision Resize(N)); WxH: exact size
  --crop <N | WxH | none>  centre crop after the resize
  --mean <a,b,c | a>       per-channel mean, after rescale
  --std <a,b,c | a>        per-channel std
  --rescale <x | 1/255>    pixel multiplier before mean/std (default 1/255)
  --filter <f>             bilinear | bicubic | bilinear-tf-align-corners (default bilinear)
  --layout <NCHW|NHWC>     input layout (default: read from the input shape)
  --output <name>          graph output holding the class scores (default: the only output)
  --output-kind <k>        logits | probabilities (default: preset, else probabilities iff the graph ends in Softmax)
  --features <tensor|auto> also expose the pooled feature vector as a graph output (auto: last global pool)
  --trained | --untrained  required: are the weights trained for these labels?
  --name, --description, --architecture, --license, --source, --version <text>
  --out-dir <dir>          default models/ (the catalog is regenerated only for models/)
  --force                  replace an existing model with this id
  --no-upload              do not upload to local R2
  --remote                 print the wrangler commands for the real bucket instead of a local upload`;

const OPTIONS = {
  id: { type: "string" },
  preset: { type: "string" },
  labels: { type: "string" },
  "labels-name": { type: "string" },
  resize: { type: "string" },
  crop: { type: "string" },
  mean: { type: "string" },
  std: { type: "string" },
  rescale: { type: "string" },
  filter: { type: "string" },
  layout: { type: "string" },
  output: { type: "string" },
  "output-kind": { type: "string" },
  features: { type: "string" },
  trained: { type: "boolean" },
  untrained: { type: "boolean" },
  name: { type: "string" },
  description: { type: "string" },
  architecture: { type: "string" },
  license: { type: "string" },
  source: { type: "string" },
  version: { type: "string" },
  "out-dir": { type: "string" },
  force: { type: "boolean" },
  "no-upload": { type: "boolean" },
  remote: { type: "boolean" },
  help: { type: "boolean" },
} as const;

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new ImportError(`${flag}: "${text}" is not a positive integer`);
  return n;
}

/** "224" → 224x224, "320x240" → width 320, height 240. */
export function parseSize(text: string, flag: string): { width: number; height: number } {
  const m = /^(\d+)(?:x(\d+))?$/i.exec(text.trim());
  if (!m) throw new ImportError(`${flag}: "${text}" is not N or WxH`);
  const width = positiveInt(m[1] as string, flag);
  return { width, height: m[2] ? positiveInt(m[2], flag) : width };
}

export function parseResize(text: string): ResizeSpec {
  if (/x/i.test(text)) return { mode: "exact", ...parseSize(text, "--resize") };
  return { mode: "shortest-edge", size: positiveInt(text.trim(), "--resize") };
}

/** "1/255" or a decimal. */
export function parseNumber(text: string, flag: string): number {
  const parts = text.trim().split("/");
  const value = parts.length === 2 ? Number(parts[0]) / Number(parts[1]) : Number(text);
  if (parts.length > 2 || !Number.isFinite(value)) throw new ImportError(`${flag}: "${text}" is not a number`);
  return value;
}

export function parseTriple(text: string, flag: string): [number, number, number] {
  const values = text.split(",").map((v) => parseNumber(v, flag));
  if (values.length === 1) return [values[0], values[0], values[0]] as [number, number, number];
  if (values.length !== 3) throw new ImportError(`${flag}: expected 1 or 3 comma-separated numbers, got "${text}"`);
  return values as [number, number, number];
}

function parseEnum<T extends string>(text: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (text === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new ImportError(`${flag}: "${text}" is not one of ${allowed.join(", ")}`);
  }
  return text as T;
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

/** The preset's spec with every explicit flag applied on top. */
function buildPreprocess(values: Values, preset: Preset | undefined): PreprocessSpec {
  const base: Partial<PreprocessSpec> = preset ? structuredClone(preset.preprocess) : {};
  if (values.resize !== undefined) base.resize = parseResize(values.resize);
  if (values.crop !== undefined) base.crop = values.crop === "none" ? undefined : parseSize(values.crop, "--crop");
  if (values.mean !== undefined) base.mean = parseTriple(values.mean, "--mean");
  if (values.std !== undefined) base.std = parseTriple(values.std, "--std");
  if (values.rescale !== undefined) base.rescale = parseNumber(values.rescale, "--rescale");
  const filters = ["bilinear", "bicubic", "bilinear-tf-align-corners"] as const;
  const filter = parseEnum<Filter>(values.filter, filters, "--filter");
  if (filter) base.filter = filter;
  if (!base.resize || !base.mean || !base.std) {
    throw new ImportError("no preprocessing: pass --preset, or --resize, --mean and --std (see --help)");
  }
  if (base.std.some((s) => s <= 0)) throw new ImportError("--std: every value must be positive");
  const spec: PreprocessSpec = {
    resize: base.resize,
    filter: base.filter ?? "bilinear",
    rescale: base.rescale ?? 1 / 255,
    mean: base.mean,
    std: base.std,
  };
  if (base.crop) spec.crop = base.crop;
  return spec;
}

function trainedFlag(values: Values): boolean {
  if (values.trained === values.untrained) {
    throw new ImportError(
      "say whether the weights are trained: pass exactly one of --trained or --untrained (untrained models are labelled as such to users)",
    );
  }
  return values.trained === true;
}

/** Parses argv (without the node/script prefix). Throws ImportError on any usage mistake. */
export function parseImportArgs(argv: readonly string[], defaultOutDir: string): ImportOptions | "help" {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new ImportError(e instanceof Error ? e.message : String(e));
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  const modelPath = positionals[0];
  if (positionals.length !== 1 || !modelPath) throw new ImportError("expected exactly one <model.onnx> argument");
  if (!values.id) throw new ImportError("--id <id> is required");
  const preset = values.preset === undefined ? undefined : PRESETS[values.preset];
  if (values.preset !== undefined && !preset) {
    throw new ImportError(`--preset: unknown preset "${values.preset}" (known: ${Object.keys(PRESETS).join(", ")})`);
  }
  const layout = parseEnum<Layout>(values.layout, ["NCHW", "NHWC"], "--layout");
  const labels = values.labels ?? preset?.labels;
  if (!labels) throw new ImportError("no labels: pass --labels <file.json|file.txt|label set name> or a --preset");
  return {
    modelPath,
    id: values.id,
    preprocess: buildPreprocess(values, preset),
    layout: layout ?? preset?.layout,
    layoutExplicit: layout !== undefined,
    labels,
    labelsName: values["labels-name"],
    outputName: values.output,
    outputKind:
      parseEnum<OutputKind>(values["output-kind"], ["logits", "probabilities"], "--output-kind") ?? preset?.outputKind,
    features: values.features,
    trained: trainedFlag(values),
    name: values.name,
    description: values.description,
    architecture: values.architecture,
    license: values.license,
    source: values.source,
    version: values.version ?? "1.0.0",
    remote: values.remote === true,
    upload: values["no-upload"] !== true && values.remote !== true,
    outDir: values["out-dir"] ?? defaultOutDir,
    force: values.force === true,
  };
}
