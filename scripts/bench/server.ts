/**
 * The real worker under `wrangler dev`, owned by the benchmark: its own port,
 * its own inspector port and its own persisted state (bench-results/state),
 * so a developer's `npm run dev` and its .wrangler/state are never touched
 * and result-cache entries from other work cannot turn a "miss" into a hit.
 *
 * Every start is a new workerd process, i.e. a fresh isolate: that is how the
 * cold-start and peak-memory sections get one.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { getPlatformProxy } from "wrangler";
import { BENCH_API_KEY } from "../keys/dev-key";
import { ensureKey, seedDevKey } from "../keys/store";
import { groupAlive, killGroup, stopGroup } from "../process-group";

export const REPO = join(import.meta.dirname, "..", "..");
export const RESULTS_DIR = join(REPO, "bench-results");
const STATE_DIR = join(RESULTS_DIR, "state");
const WRANGLER = join(REPO, "node_modules", ".bin", "wrangler");

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const QUIET_ENV = {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  CI: "1",
};

interface ManifestFile {
  id: string;
  file: { r2Key: string; sha256: string; bytes: number };
}

export function manifests(): Array<{ dir: string; manifest: ManifestFile }> {
  const root = join(REPO, "models");
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== "labels")
    .map((e) => {
      const dir = join(root, e.name);
      return { dir, manifest: JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as ManifestFile };
    });
}

/** What the benchmark and load test send: a key of the unlimited tier, seeded into their own state only. */
export const AUTH_HEADERS = { authorization: `Bearer ${BENCH_API_KEY}` } as const;

/**
 * `npm run models:seed`, into the benchmark's own state directory, emptied
 * first: every run starts from the state a fresh clone has. What earlier runs
 * left behind slows miniflare's simulators down (measured: after ~40 runs,
 * 480 MB of uploaded images, cache entries and job records, the bulk
 * section's throughput was 11.9 img/s against 20.2 img/s on an empty state).
 * getPlatformProxy persists to `<path>`, `wrangler dev --persist-to X` reads `X/v3`.
 * Also seeds the dev key and the bench key (AUTH_HEADERS) into that state's API_KEYS.
 */
export async function seedModels(log: (s: string) => void): Promise<void> {
  rmSync(STATE_DIR, { recursive: true, force: true });
  mkdirSync(STATE_DIR, { recursive: true });
  const proxy = await getPlatformProxy<{ MODELS: R2Bucket; API_KEYS: KVNamespace }>({
    configPath: join(REPO, "wrangler.toml"),
    persist: { path: join(STATE_DIR, "v3") },
  });
  try {
    for (const { dir, manifest } of manifests()) {
      const { r2Key, sha256, bytes } = manifest.file;
      const head = await proxy.env.MODELS.head(r2Key);
      if (head && head.size === bytes && head.customMetadata?.sha256 === sha256) continue;
      const data = readFileSync(join(dir, r2Key.split("/").pop() as string));
      const actual = createHash("sha256").update(data).digest("hex");
      if (actual !== sha256) throw new Error(`${manifest.id}: model file does not match its manifest`);
      await proxy.env.MODELS.put(r2Key, new Uint8Array(data), {
        sha256,
        customMetadata: { sha256, model: manifest.id },
      });
      log(`seeded ${manifest.id} (${(bytes / 1e6).toFixed(1)} MB)`);
    }
    await seedDevKey(proxy.env.API_KEYS);
    await ensureKey(proxy.env.API_KEYS, BENCH_API_KEY, "bench and loadtest (local state only)", "unlimited");
  } finally {
    await proxy.dispose();
  }
}

export interface DevServer {
  base: string;
  inspectorPort: number;
  /** The workerd process that runs the user worker (the one with an inspector). */
  workerdPid: number;
  /**
   * That workerd's own HTTP socket, bypassing wrangler's dev proxy (a second
   * workerd that forwards every request and exists only in local dev), or
   * undefined if it could not be found.
   */
  direct: string | undefined;
  /** ms from spawning `wrangler dev` to the first 200 from /healthz (bundling + workerd start; not isolate cold start). */
  startupMs: number;
  stop(): Promise<void>;
}

let live: ChildProcess | undefined;

// Never leave a workerd behind, however the benchmark ends.
process.on("exit", () => {
  if (live?.pid) killGroup(live.pid, "SIGKILL");
});

/** Descendant pids of `root` (from /proc), so we find workerd without matching process names globally. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    for (const c of children.get(stack.pop() as number) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** kB fields of /proc/<pid>/status, in MB. */
export function procMemory(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
}

export async function startServer(opts: {
  port: number;
  inspectorPort: number;
  logName: string;
  log: (s: string) => void;
  timeoutMs?: number;
}): Promise<DevServer> {
  if (live) throw new Error("a dev server is already running");
  const base = `http://127.0.0.1:${opts.port}`;
  if (await ok(`${base}/healthz`)) throw new Error(`something already answers on ${base}; stop it first`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const logPath = join(RESULTS_DIR, opts.logName);
  const fd = openSync(logPath, "w");
  const t0 = performance.now();
  const child = spawn(
    WRANGLER,
    [
      "dev",
      "--port",
      String(opts.port),
      "--inspector-port",
      String(opts.inspectorPort),
      "--ip",
      "127.0.0.1",
      "--persist-to",
      STATE_DIR,
      "--show-interactive-dev-session=false",
    ],
    {
      cwd: REPO,
      detached: true, // own process group: stop() reaches workerd and esbuild too
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...QUIET_ENV },
    },
  );
  closeSync(fd);
  live = child;
  const pid = child.pid as number;
  const stop = async () => {
    await stopGroup(pid, 100);
    for (let i = 0; i < 50 && groupAlive(pid); i++) await sleep(100);
    if (live === child) live = undefined;
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  try {
    while (!(await ok(`${base}/healthz`))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`wrangler dev exited (${child.exitCode ?? child.signalCode}); see ${logPath}`);
      }
      if (Date.now() > deadline) throw new Error(`wrangler dev not healthy in time; see ${logPath}`);
      await sleep(200);
    }
    const startupMs = performance.now() - t0;
    // The user worker's workerd is the one started with an inspector address (wrangler's proxy workerd has none).
    const workerd = descendants(pid).filter((p) => cmdline(p).includes("workerd serve"));
    const user = workerd.find((p) => cmdline(p).includes("--inspector-addr"));
    if (user === undefined) throw new Error(`cannot find the user worker's workerd among ${workerd.join(",")}`);
    const direct = await directSocket(user);
    opts.log(
      `wrangler dev up on ${base} in ${(startupMs / 1000).toFixed(1)} s (workerd pid ${user}; its own socket ${direct ?? "not found"})`,
    );
    return { base, inspectorPort: opts.inspectorPort, workerdPid: user, direct, startupMs, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * The user workerd's HTTP entry socket: of the TCP ports it listens on (from
 * /proc: its socket inodes matched against /proc/net/tcp), the one whose
 * /healthz answers like ours. Its other listeners (loopback for miniflare's
 * own services, the inspector) answer differently.
 */
async function directSocket(pid: number): Promise<string | undefined> {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
          return m ? [m[1] as string] : [];
        } catch {
          return [];
        }
      }),
    );
  } catch {
    return undefined;
  }
  const ports = readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    // local_address (hex ip:port), st 0A = LISTEN, inode in column 10
    .filter((f) => f[3] === "0A" && inodes.has(f[9] as string))
    .map((f) => Number.parseInt((f[1] as string).split(":")[1] as string, 16));
  for (const port of ports) {
    const url = `http://127.0.0.1:${port}`;
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json().catch(() => undefined)) as { status?: string; ort?: string } | undefined;
      if (res.ok && body?.status === "ok" && typeof body.ort === "string") return url;
    } catch {
      // not HTTP, or not ours
    }
  }
  return undefined;
}

/**
 * A generous timeout: on a loaded machine a starting workerd can take seconds
 * to answer, and an aborted request only leaves "Broken pipe" noise in its log.
 */
async function ok(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

export interface ClassifyResponse {
  status: number;
  clientMs: number;
  timings: Record<string, number>;
  cached: boolean;
  body: unknown;
}

/**
 * Requests wrangler's dev proxy dropped with "Your worker restarted
 * mid-request" (a 503 from the proxy, not from the worker). Seen on this
 * loaded machine a few times per run, right after a cold request; the proxy
 * retries only GET/HEAD itself, so POSTs are retried here and counted.
 */
export const proxyRetries = { count: 0 };

export class ProxyDropped extends Error {}

/**
 * One kept-alive connection per origin, through node:http: a lean client, so
 * the latency measured is the worker's and the loopback's. (Node's fetch, i.e.
 * undici, measured 3-5 ms more per request here for the same 100 KB POST.)
 */
const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });

function post(
  url: string,
  body: Uint8Array,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        agent: keepAlive,
        headers: { ...headers, "content-length": String(body.byteLength) },
        timeout: 120_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`POST ${url}: no answer in 120 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** POST /v1/classify; throws on anything but 200 (a benchmark of error responses would be meaningless). */
export async function classify(
  base: string,
  image: Uint8Array,
  model?: string,
  opts: { retry?: boolean } = {},
): Promise<ClassifyResponse> {
  const url = `${base}/v1/classify${model ? `?model=${encodeURIComponent(model)}` : ""}`;
  for (let attempt = 0; ; attempt++) {
    const t0 = performance.now();
    let res: { status: number; text: string };
    try {
      res = await post(url, image, { "content-type": "image/jpeg", ...AUTH_HEADERS });
    } catch (e) {
      // A kept-alive socket the server closed while idle (wrangler's proxy does after a worker
      // restart). A classification changes nothing but the cache, so sending it again is safe.
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === "ECONNRESET" || code === "EPIPE") && attempt < 3) continue;
      throw e;
    }
    const text = res.text;
    const clientMs = performance.now() - t0;
    if (res.status === 503 && text.includes("restarted mid-request")) {
      if (opts.retry === false || attempt >= 3)
        throw new ProxyDropped(`POST /v1/classify → 503: ${text.slice(0, 200)}`);
      proxyRetries.count++;
      await sleep(250);
      continue;
    }
    if (res.status !== 200) throw new Error(`POST /v1/classify → ${res.status}: ${text.slice(0, 300)}`);
    const body = JSON.parse(text) as { cached: boolean; timings_ms: Record<string, number> };
    return { status: res.status, clientMs, timings: body.timings_ms, cached: body.cached, body };
  }
}
