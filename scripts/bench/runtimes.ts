/**
 * The in-Node contenders, each configured like the worker's own session
 * (src/inference/ort.ts: wasm EP, one thread, graphOptimizationLevel "all"):
 *  - native onnxruntime-node, 1 intra-op and 1 inter-op thread;
 *  - onnxruntime-web in Node: the same ORT version and the very same wasm
 *    binary as the worker (ort-wasm-simd-threaded.wasm; 1.30 ships SIMD builds
 *    only), 1 thread, no proxy worker;
 *  - TF.js with its WASM backend (SIMD, 1 thread), for the peer comparison.
 * Each `run` times one inference, output read back included, in milliseconds.
 */
import { join } from "node:path";
import ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import type { SessionRuntime } from "../../src/inference/ort";
import { REPO } from "./server";

export interface Runner {
  run(input: Float32Array): Promise<number>;
  /** One inference, returning the output (for agreement checks). */
  infer(input: Float32Array): Promise<Float32Array>;
  release(): Promise<void>;
}

interface Io {
  inputName: string;
  outputName: string;
  dims: number[];
}

/**
 * How the worker builds a model's session (its manifest's runtime block): the
 * graph optimisation level (default "all") and session config entries as
 * ORT's `extra` option (dotted keys pass through as they are).
 */
function asServed(runtime: SessionRuntime): {
  graphOptimizationLevel: NonNullable<SessionRuntime["graphOptimizationLevel"]>;
  extra?: Record<string, string>;
} {
  const config = runtime.sessionConfig ?? {};
  return {
    graphOptimizationLevel: runtime.graphOptimizationLevel ?? "all",
    ...(Object.keys(config).length > 0 ? { extra: { ...config } } : {}),
  };
}

export async function ortNodeRunner(modelPath: string, io: Io, runtime: SessionRuntime = {}): Promise<Runner> {
  const s = await ortNode.InferenceSession.create(modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    ...asServed(runtime),
  });
  const infer = async (x: Float32Array) => {
    const out = await s.run({ [io.inputName]: new ortNode.Tensor("float32", x, io.dims) }, [io.outputName]);
    return new Float32Array(out[io.outputName]?.data as Float32Array);
  };
  return {
    infer,
    run: async (x) => {
      const t0 = performance.now();
      await infer(x);
      return performance.now() - t0;
    },
    release: () => s.release(),
  };
}

let webReady = false;
function initOrtWeb(): void {
  if (webReady) return;
  ortWeb.env.wasm.numThreads = 1;
  ortWeb.env.wasm.proxy = false;
  ortWeb.env.logLevel = "error";
  webReady = true;
}

/** `runtime`: the model's manifest runtime block, so the int8 file runs as the worker serves it. */
export async function ortWebRunner(modelBytes: Uint8Array, io: Io, runtime: SessionRuntime = {}): Promise<Runner> {
  initOrtWeb();
  const s = await ortWeb.InferenceSession.create(modelBytes, {
    executionProviders: ["wasm"],
    ...asServed(runtime),
  });
  const infer = async (x: Float32Array) => {
    const out = await s.run({ [io.inputName]: new ortWeb.Tensor("float32", x, io.dims) }, [io.outputName]);
    const t = out[io.outputName];
    const copy = new Float32Array(t?.data as Float32Array);
    t?.dispose();
    return copy;
  };
  return {
    infer,
    run: async (x) => {
      const t0 = performance.now();
      await infer(x);
      return performance.now() - t0;
    },
    release: () => s.release(),
  };
}

/**
 * nsfwjs 4.4.0's bundled MobileNetV2 (the package's own model files, no
 * network) on TF.js's WASM backend. The comparison times `model.predict` on
 * the same [1,224,224,3] float tensor our model gets, so nsfwjs's
 * preprocessing is not charged to it.
 */
export async function tfjsWasmNsfwRunner(): Promise<Runner & { backend: string; simd: boolean }> {
  // Imported here, not at the top: TF.js is slow to load and only this section needs it.
  const tf = await import("@tensorflow/tfjs");
  const { setThreadsCount, setWasmPaths } = await import("@tensorflow/tfjs-backend-wasm");
  setWasmPaths(`${join(REPO, "node_modules", "@tensorflow", "tfjs-backend-wasm", "dist")}/`);
  // Single-threaded like every other contender (and like a Worker isolate).
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  setThreadsCount(1);
  if (!(await tf.setBackend("wasm"))) throw new Error("TF.js wasm backend failed to initialise");
  await tf.ready();
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  const nsfwjs = await import("nsfwjs");
  const info = console.info;
  console.info = () => undefined; // nsfwjs prints a hosting hint on every load
  let model: Awaited<ReturnType<typeof nsfwjs.load>>;
  try {
    model = await nsfwjs.load("MobileNetV2");
  } finally {
    console.info = info;
  }
  const layers = model.model as import("@tensorflow/tfjs").LayersModel;
  const infer = async (x: Float32Array) => {
    const input = tf.tensor4d(x, [1, 224, 224, 3]);
    const y = layers.predict(input) as import("@tensorflow/tfjs").Tensor;
    const data = (await y.data()) as Float32Array;
    input.dispose();
    y.dispose();
    return data;
  };
  return {
    backend: tf.getBackend(),
    simd,
    infer,
    run: async (x) => {
      const t0 = performance.now();
      await infer(x);
      return performance.now() - t0;
    },
    release: async () => {
      model.model.dispose();
    },
  };
}
