/**
 * The onnxruntime-web adapter: the ONLY module that imports onnxruntime-web.
 *
 * workerd forbids three things ORT-web does by default:
 *  - compiling wasm from bytes ("Wasm code generation disallowed by embedder"),
 *  - resolving files through `import.meta.url` ("cannot determine the script source URL"),
 *  - threads (no SharedArrayBuffer workers).
 * So: we import the bundle build (Emscripten glue built in), let wrangler/esbuild
 * turn the .wasm import into a `WebAssembly.Module` compiled at upload time,
 * force one thread and no proxy worker, and route ORT's single wasm
 * instantiation to that pre-compiled module. Everything else in the code base
 * talks to the small `OrtSession` interface below.
 */

import ortWasmModule from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import * as ort from "onnxruntime-web/wasm";
import { IsolateMutex, sleep } from "../util/isolate-lock";

/** Pinned in package.json; surfaced in /healthz so deployments are traceable. */
export const ORT_VERSION: string = ort.env.versions.web ?? "unknown";

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Runs one inference and returns the named outputs (e.g. class scores and the
   * pooled features: one run serves both). Calls are serialised per isolate
   * (the wasm backend is single-threaded).
   */
  run(
    inputName: string,
    data: Float32Array,
    dims: readonly number[],
    outputNames: readonly string[],
  ): Promise<Record<string, OrtOutput>>;
  release(): Promise<void>;
}

export interface OrtOutput {
  data: Float32Array;
  dims: number[];
}

/**
 * A marker handed to ORT as `wasmBinary`. ORT then skips every URL/fetch path
 * and calls `WebAssembly.instantiate(<copy of these bytes>, imports)` exactly
 * once; our shim recognises the marker and instantiates the pre-compiled module
 * instead. Any other instantiate call passes through untouched.
 */
const MARKER = new TextEncoder().encode("edgetag:ort-wasm-precompiled");

function isMarker(source: unknown): boolean {
  let bytes: Uint8Array | undefined;
  if (source instanceof Uint8Array) bytes = source;
  else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  if (!bytes || bytes.byteLength !== MARKER.byteLength) return false;
  return bytes.every((b, i) => b === MARKER[i]);
}

/**
 * A 141-byte ONNX graph computing y = 2x + 1 over a [1,4] tensor. Creating and
 * running it makes "ORT is initialised" an observable fact (and a separately
 * timed stage) instead of a side effect of loading the first real model.
 */
const SELFTEST_MODEL_B64 =
  "CAcSB2VkZ2V0YWc6egoQCgF4CgN0d28SAXQiA011bAoQCgF0CgNvbmUSAXkiA0FkZBIIc2VsZnRlc3QqDwgBEAEiBAAAAEBCA3R3byoPCAEQASIEAACAP0IDb25lWhMKAXgSDgoMCAESCAoCCAEKAggEYhMKAXkSDgoMCAESCAoCCAEKAggEQgQKABAN";

export interface OrtInitInfo {
  ortVersion: string;
  initMs: number;
}

type InitState =
  | { kind: "idle" }
  | { kind: "running" }
  | { kind: "ready"; info: OrtInitInfo }
  | { kind: "failed"; error: Error };
let init: InitState = { kind: "idle" };

/**
 * Initialises ORT once per isolate. ORT-web itself refuses a second
 * initialisation after a failure ("previous call to 'initializeWebAssembly()'
 * failed"), so a failure is remembered and reported on every later call rather
 * than retried in a loop: the isolate cannot recover and the caller answers 503.
 * Concurrent callers wait by polling (see util/isolate-lock.ts), never on the
 * initialising request's promise.
 */
export async function initOrt(): Promise<OrtInitInfo> {
  while (init.kind === "running") await sleep(2);
  if (init.kind === "ready") return init.info;
  if (init.kind === "failed") throw init.error;
  init = { kind: "running" };
  try {
    const info = await doInit();
    init = { kind: "ready", info };
    return info;
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    init = { kind: "failed", error };
    throw error;
  }
}

async function doInit(): Promise<OrtInitInfo> {
  const t0 = performance.now();
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = MARKER;
  ort.env.logLevel = "error";

  const original = WebAssembly.instantiate;
  const shim = ((source: unknown, imports?: WebAssembly.Imports) => {
    if (isMarker(source)) {
      return original(ortWasmModule, imports).then((instance) => ({ module: ortWasmModule, instance }));
    }
    return (original as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>)(source, imports);
  }) as typeof WebAssembly.instantiate;
  WebAssembly.instantiate = shim;
  try {
    const bytes = Uint8Array.from(atob(SELFTEST_MODEL_B64), (c) => c.charCodeAt(0));
    const session = await ort.InferenceSession.create(bytes, sessionOptions());
    try {
      const out = await session.run({ x: new ort.Tensor("float32", new Float32Array([0, 1, 2, -3]), [1, 4]) });
      const y = out.y?.data as Float32Array | undefined;
      const expected = [1, 3, 5, -5];
      if (!y || expected.some((v, i) => y[i] !== v)) {
        throw new Error(`ORT self-test returned ${y ? Array.from(y).join(",") : "nothing"}, expected 1,3,5,-5`);
      }
    } finally {
      await session.release();
    }
  } finally {
    // Restore only if nobody replaced it meanwhile.
    if (WebAssembly.instantiate === shim) WebAssembly.instantiate = original;
  }
  return { ortVersion: ORT_VERSION, initMs: performance.now() - t0 };
}

function sessionOptions(config: Readonly<Record<string, string>> = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    // ORT flattens `extra` into session config entries; dotted keys pass through as they are.
    ...(Object.keys(config).length > 0 ? { extra: { ...config } } : {}),
  };
}

/**
 * ORT-web's wasm backend must not interleave two runs: between its awaits a
 * run keeps state on the wasm stack. Concurrent requests in one isolate take
 * turns through this mutex (30 s: far above any single run or session build).
 */
const ortLock = new IsolateMutex(30_000);
const serialised = <T>(fn: () => Promise<T>): Promise<T> => ortLock.run(fn);

/**
 * Creates a session from model bytes, with the model's own session config
 * entries (its manifest's runtime.sessionConfig). Requires `initOrt()` to have succeeded.
 */
export async function createOrtSession(
  modelBytes: Uint8Array,
  sessionConfig: Readonly<Record<string, string>> = {},
): Promise<OrtSession> {
  await initOrt();
  const session = await serialised(() => ort.InferenceSession.create(modelBytes, sessionOptions(sessionConfig)));
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    run: (inputName, data, dims, outputNames) =>
      serialised(async () => {
        const input = new ort.Tensor("float32", data, dims);
        const results = await session.run({ [inputName]: input }, [...outputNames]);
        const outputs: Record<string, OrtOutput> = {};
        try {
          for (const name of outputNames) {
            const out = results[name];
            if (!out) throw new Error(`model produced no output named ${name}`);
            if (out.type !== "float32") throw new Error(`output ${name} has type ${out.type}, expected float32`);
            // Copy out of ORT's buffer so the tensor can be released immediately.
            outputs[name] = { data: new Float32Array(out.data as Float32Array), dims: [...out.dims] };
          }
        } finally {
          for (const out of Object.values(results)) out.dispose();
        }
        return outputs;
      }),
    release: () => session.release(),
  };
}
