import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import * as ortNode from "onnxruntime-node";
import { type RefSpec, referencePreprocess } from "./preprocess";

const ROOT = resolve(import.meta.dirname, "../..");
const SERVED = [resolve(ROOT, "models"), resolve(ROOT, "test/fixtures")];
const IMAGES = join(ROOT, "test/fixtures/images");
const REPORTS = join(ROOT, "test-results/parity");

/**
 * Runs in Node, reached from workerd tests through a service binding (see
 * vitest.config.ts), so the worker under test and its reference never share code:
 *
 *   GET /files/<repo path>                 bytes of a file under models/ or test/fixtures/
 *   GET /reference?model=<id>&fixture=<n>  softmax probabilities from the independent path:
 *        PIL's decode of the fixture (committed .rgb) -> test/reference/preprocess.ts
 *        (literal torchvision semantics) -> onnxruntime-node (native CPU, 1 thread)
 */
export async function referenceService(request: Request): Promise<Response> {
  const url = new URL(request.url);
  try {
    if (url.pathname.startsWith("/webhooks/")) {
      return Response.json(webhooks.get(decodeURIComponent(url.pathname.slice(10))) ?? []);
    }
    if (url.pathname.startsWith("/files/")) return await serveFile(decodeURIComponent(url.pathname.slice(7)));
    if (url.pathname.startsWith("/report/") && request.method === "POST") {
      // Figures a workerd test measured (e.g. parity), kept as a file for the closing note and manifests.
      const name = url.pathname.slice(8);
      if (!/^[a-z0-9.-]+$/.test(name)) return new Response("bad report name", { status: 400 });
      await mkdir(REPORTS, { recursive: true });
      await writeFile(join(REPORTS, `${name}.json`), await request.text());
      return new Response(null, { status: 204 });
    }
    if (url.pathname === "/reference" && request.method === "GET") {
      const model = url.searchParams.get("model") ?? "";
      const fixture = url.searchParams.get("fixture") ?? "";
      return Response.json(await referenceClassify(model, fixture));
    }
    if (url.pathname === "/reference" && request.method === "POST") {
      // Pixels decoded elsewhere (by the worker's decoder): isolates preprocess + inference parity.
      const q = (k: string) => Number(url.searchParams.get(k));
      const data = new Uint8Array(await request.arrayBuffer());
      const image = { width: q("width"), height: q("height"), orientation: q("orientation") || 1, data };
      if (data.length !== image.width * image.height * 3)
        throw new Error("pixel buffer does not match width x height x 3");
      return Response.json(await referenceClassifyPixels(url.searchParams.get("model") ?? "", image));
    }
    return new Response("unknown reference route", { status: 404 });
  } catch (e) {
    return new Response(e instanceof Error ? (e.stack ?? e.message) : String(e), { status: 500 });
  }
}

async function serveFile(rel: string): Promise<Response> {
  const path = resolve(ROOT, rel);
  if (!SERVED.some((dir) => path.startsWith(dir + sep))) return new Response("forbidden", { status: 403 });
  try {
    return new Response(await readFile(path));
  } catch {
    return new Response("not found", { status: 404 });
  }
}

interface Manifest {
  id: string;
  file: { r2Key: string };
  input: { name: string; layout: "NCHW" | "NHWC"; width: number; height: number };
  preprocess: RefSpec;
  output: { name: string; kind: "logits" | "probabilities"; features?: { name: string; dim: number } };
  runtime?: { preoptimized?: { from: string } };
}

interface FixtureEntry {
  name: string;
  width: number;
  height: number;
  orientation: number;
}

const sessions = new Map<string, Promise<{ manifest: Manifest; session: ortNode.InferenceSession }>>();

function loadModel(id: string) {
  if (!/^[a-z0-9.-]+$/.test(id)) throw new Error(`bad model id ${id}`);
  let entry = sessions.get(id);
  if (!entry) {
    entry = (async () => {
      const dir = join(ROOT, "models", id);
      const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
      // A pre-optimised served file has its Q/DQ groups fused into integer kernels already: the
      // reference runs the QDQ graph it was made from (bit-identical in onnxruntime-web, a test checks).
      const pre = manifest.runtime?.preoptimized?.from;
      const file = pre ? join(ROOT, pre) : join(dir, manifest.file.r2Key.split("/").pop() as string);
      // disable_quant_qdq: compute with the dequantised weights exactly, rather than letting ORT
      // swap in its approximate integer kernels for some QDQ patterns; the reference should be exact.
      const session = await ortNode.InferenceSession.create(file, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        extra: { session: { disable_quant_qdq: "1" } },
      });
      return { manifest, session };
    })();
    sessions.set(id, entry);
  }
  return entry;
}

export async function referenceClassify(modelId: string, fixture: string): Promise<{ probs: number[] }> {
  const index = JSON.parse(await readFile(join(IMAGES, "index.json"), "utf8")) as
    | FixtureEntry[]
    | { images: FixtureEntry[] };
  const list = Array.isArray(index) ? index : index.images;
  const entry = list.find((e) => e.name === fixture);
  if (!entry) throw new Error(`unknown fixture ${fixture}`);
  const data = new Uint8Array(await readFile(join(IMAGES, `${fixture}.rgb`)));
  return referenceClassifyPixels(modelId, {
    width: entry.width,
    height: entry.height,
    data,
    orientation: entry.orientation,
  });
}

export async function referenceClassifyPixels(
  modelId: string,
  image: { width: number; height: number; data: Uint8Array; orientation: number },
): Promise<{ probs: number[]; embedding?: number[] }> {
  const { manifest, session } = await loadModel(modelId);
  const tensor = referencePreprocess(image, manifest.preprocess, manifest.input);
  const { input } = manifest;
  const dims = input.layout === "NCHW" ? [1, 3, input.height, input.width] : [1, input.height, input.width, 3];
  const out = await session.run({ [input.name]: new ortNode.Tensor("float32", tensor, dims) });
  const raw = out[manifest.output.name]?.data as Float32Array;
  const embedding = manifest.output.features ? referenceEmbedding(out, manifest.output.features) : undefined;
  if (manifest.output.kind === "probabilities") return { probs: Array.from(raw), ...(embedding ? { embedding } : {}) };
  // Softmax written out here rather than imported from src/: the reference shares no code with the worker.
  const max = Math.max(...raw);
  const exps = Array.from(raw, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return { probs: exps.map((e) => e / sum), ...(embedding ? { embedding } : {}) };
}

/** The named features output, L2-normalised in float64 (written out here, like the softmax). */
function referenceEmbedding(
  out: ortNode.InferenceSession.OnnxValueMapType,
  features: { name: string; dim: number },
): number[] {
  const tensor = out[features.name];
  if (!tensor) throw new Error(`reference: the graph has no output ${features.name}`);
  const values = Array.from(tensor.data as Float32Array);
  if (values.length !== features.dim)
    throw new Error(`reference: ${features.name} has ${values.length} values, manifest says ${features.dim}`);
  const norm = Math.sqrt(values.reduce((a, v) => a + v * v, 0));
  return norm === 0 ? values : values.map((v) => v / norm);
}

// ---------------------------------------------------------------- outbound --

interface RecordedWebhook {
  headers: Record<string, string>;
  body: string;
}
const webhooks = new Map<string, RecordedWebhook[]>();
const failedOnce = new Set<string>();

/**
 * The worker's outbound fetch() in tests (miniflare `outboundService`): stands in
 * for the internet with real HTTP semantics.
 *   http://images.test/<file>          a fixture from test/fixtures/images (404 if none)
 *   http://flaky.test/<file>           503 on the first request for a path, then the fixture
 *   http://big.test/<anything>         a 21 MiB body without Content-Length
 *   http://hooks.test/<name>           records a webhook delivery (GET /webhooks/<name> reads them)
 *   http://hooks.test/fail-once/<name> 500 the first time, then records
 */
export async function outboundService(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const path = decodeURIComponent(url.pathname.slice(1));
  if (url.hostname === "images.test" || url.hostname === "flaky.test") {
    if (url.hostname === "flaky.test" && !failedOnce.has(url.href)) {
      failedOnce.add(url.href);
      return new Response("try again", { status: 503 });
    }
    return serveFile(`test/fixtures/images/${path}`);
  }
  if (url.hostname === "big.test") {
    // 21 MiB with no Content-Length: only a streaming cap can stop it.
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ >= 21) controller.close();
        else controller.enqueue(new Uint8Array(1024 * 1024));
      },
    });
    return new Response(body, { headers: { "content-type": "image/jpeg" } });
  }
  if (url.hostname === "hooks.test" && request.method === "POST") {
    let name = path;
    if (path.startsWith("fail-once/")) {
      name = path.slice("fail-once/".length);
      if (!failedOnce.has(url.href)) {
        failedOnce.add(url.href);
        return new Response("down", { status: 500 });
      }
    }
    const list = webhooks.get(name) ?? [];
    list.push({ headers: Object.fromEntries(request.headers), body: await request.text() });
    webhooks.set(name, list);
    return new Response("ok");
  }
  return new Response(`no route to ${url.host} in tests`, { status: 502 });
}
