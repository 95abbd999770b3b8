/** What every section gets: settings, the test images, the models, a shared dev server and the result sink. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ModelManifest } from "../../src/models/manifest";
import { decodeImage } from "../../src/pipeline/decode";
import { minDecodeShortSide, preprocess } from "../../src/pipeline/preprocess";
import { fp32Twin } from "./fp32";
import { photoJpeg, withNonce } from "./jpeg";
import type { Row } from "./report";
import { type DevServer, REPO, RESULTS_DIR, startServer } from "./server";

export const MODEL_IDS = ["mobilenet-v2", "densenet-121", "mobilenet-v2-nsfw"] as const;
export type ModelId = (typeof MODEL_IDS)[number];

export interface BenchModel {
  id: ModelId;
  manifest: ModelManifest;
  int8Path: string;
  int8Bytes: Uint8Array;
  /**
   * What native onnxruntime-node runs as "native int8", and how: the served
   * file as served, or for a pre-optimised file its QDQ source at level all.
   * The pre-optimised graph is laid out for onnxruntime-web's kernels and
   * loaded with optimisation off, which would also switch off native ORT's own
   * x86 rewrites (measured: nsfw 12.8 against ~6 ms).
   */
  native: { path: string; runtime: NonNullable<ModelManifest["runtime"]> | undefined };
  fp32Path: string;
  io: { inputName: string; outputName: string; dims: number[] };
  /** The 640x480 photo, decoded and preprocessed exactly as the worker does for this model. */
  input: Float32Array;
}

export interface Settings {
  quick: boolean;
  port: number;
  inspectorPort: number;
}

/** Iteration counts: full runs are sized to finish the whole benchmark in a few minutes on 2 cores. */
export function iterations(s: Settings, full: { warmup: number; iterations: number }) {
  return s.quick ? { warmup: 1, iterations: Math.min(3, full.iterations) } : full;
}

export class BenchContext {
  readonly rows: Row[] = [];
  readonly raw: Record<string, unknown> = {};
  readonly runId = new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15) + Math.random().toString(16).slice(2, 6);
  private nonceCounter = 0;
  private server: DevServer | undefined;
  /** Medians other sections can reuse (e.g. workerd infer per model). */
  readonly shared: Record<string, number> = {};

  constructor(
    readonly settings: Settings,
    readonly images: { small: Uint8Array; large: Uint8Array },
    readonly models: readonly BenchModel[],
    readonly log: (s: string) => void,
  ) {}

  model(id: ModelId): BenchModel {
    const m = this.models.find((x) => x.id === id);
    if (!m) throw new Error(`no model ${id}`);
    return m;
  }

  /** Distinct bytes, same pixels: a guaranteed result-cache miss. */
  fresh(image: Uint8Array): Uint8Array {
    return withNonce(image, `edgetag-bench ${this.runId} ${++this.nonceCounter}`);
  }

  add(row: Row): void {
    this.rows.push(row);
  }

  /** The shared dev server, started on first use. */
  async dev(): Promise<DevServer> {
    if (!this.server) this.server = await this.startFresh("dev-shared.log");
    return this.server;
  }

  /** A brand-new workerd (fresh isolate). Stops the shared one first: both would want the same port. */
  async startFresh(logName: string): Promise<DevServer> {
    await this.stopShared();
    return startServer({
      port: this.settings.port,
      inspectorPort: this.settings.inspectorPort,
      logName,
      log: this.log,
    });
  }

  /** Makes `server` the shared one (a section that started it fresh hands it on). */
  adopt(server: DevServer): void {
    this.server = server;
  }

  async stopShared(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await s.stop();
  }
}

const CACHE_DIR = join(RESULTS_DIR, "cache");

/** Generating the 12 MP photo takes seconds: keep it (deterministic; the name pins the parameters). */
function cachedJpeg(width: number, height: number): Uint8Array {
  const path = join(CACHE_DIR, `photo-${width}x${height}-s7-q90-v1.jpg`);
  if (existsSync(path)) return new Uint8Array(readFileSync(path));
  const jpeg = photoJpeg(width, height, 7, 90);
  mkdirSync(CACHE_DIR, { recursive: true });
  writeFileSync(path, jpeg);
  return jpeg;
}

export function loadImages(): { small: Uint8Array; large: Uint8Array } {
  return { small: cachedJpeg(640, 480), large: cachedJpeg(4032, 3024) };
}

export async function loadModels(small: Uint8Array, log: (s: string) => void): Promise<BenchModel[]> {
  const out: BenchModel[] = [];
  for (const id of MODEL_IDS) {
    const dir = join(REPO, "models", id);
    const manifest = ModelManifest.parse(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
    const int8Path = join(dir, "model.int8.onnx");
    // A pre-optimised file has lost what its int8 ranges made redundant (a Relu
    // before a uint8 QuantizeLinear): its fp32 network comes from the file it was made from.
    const pre = manifest.runtime?.preoptimized;
    const source = pre ? join(REPO, pre.from) : int8Path;
    const twin = fp32Twin(source, join(CACHE_DIR, "fp32"), pre?.sha256);
    if (twin.folded !== "cached")
      log(
        `${id}: derived fp32 twin (${twin.folded} DequantizeLinear folded, ${twin.pairs} activation Q/DQ pairs removed)`,
      );
    const { input: spec } = manifest;
    const dims = spec.layout === "NCHW" ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3];
    const decoded = await decodeImage(small, {
      maxPixels: 4096 * 4096,
      minShortSide: minDecodeShortSide(manifest.preprocess),
    });
    out.push({
      id,
      manifest,
      int8Path,
      int8Bytes: new Uint8Array(readFileSync(int8Path)),
      native: { path: source, runtime: pre ? undefined : manifest.runtime },
      fp32Path: twin.path,
      io: { inputName: spec.name, outputName: manifest.output.name, dims },
      input: preprocess(decoded, manifest.preprocess, spec),
    });
  }
  return out;
}
