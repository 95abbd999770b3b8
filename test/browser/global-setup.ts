/**
 * Global setup of the "browser" project: a real `wrangler dev` (workerd with
 * local R2, KV, Queues and Durable Objects), like `npm run dev`, on its own
 * port and with its own freshly seeded state, so the page is tested exactly as
 * a user gets it. The server is stopped by its process group at teardown.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { getPlatformProxy } from "wrangler";
import { seedDevKey } from "../../scripts/keys/store";
import { stopGroup } from "../../scripts/process-group";
import { BASE, DEV_LOG, PERSIST_DIR, REPO, RESULTS_DIR } from "./server";

const START_BUDGET_MS = 120_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface ManifestFile {
  id: string;
  file: { r2Key: string; sha256: string; bytes: number };
}

/** Puts every committed model file into the MODELS bucket of the test server's state, and the dev key into its API_KEYS. */
async function seedModels(): Promise<void> {
  // wrangler dev --persist-to X keeps its miniflare state in X/v3; the proxy takes that path directly.
  const proxy = await getPlatformProxy<{ MODELS: R2Bucket; API_KEYS: KVNamespace }>({
    configPath: join(REPO, "wrangler.toml"),
    persist: { path: join(PERSIST_DIR, "v3") },
  });
  try {
    for (const entry of await readdir(join(REPO, "models"), { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === "labels") continue;
      const dir = join(REPO, "models", entry.name);
      const m = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as ManifestFile;
      const data = await readFile(join(dir, m.file.r2Key.split("/").pop() as string));
      if (createHash("sha256").update(data).digest("hex") !== m.file.sha256) {
        throw new Error(`${m.id}: the model file does not match its manifest's sha256`);
      }
      await proxy.env.MODELS.put(m.file.r2Key, new Uint8Array(data), { sha256: m.file.sha256 });
    }
    await seedDevKey(proxy.env.API_KEYS);
  } finally {
    await proxy.dispose();
  }
}

async function answers(path: string): Promise<boolean> {
  try {
    const res = await fetch(`${BASE}${path}`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function logTail(lines = 30): string {
  try {
    return readFileSync(DEV_LOG, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export default async function setup(): Promise<() => Promise<void>> {
  if (await answers("/healthz")) {
    throw new Error(`something already answers on ${BASE}: the browser test needs that port for its own server`);
  }
  await rm(PERSIST_DIR, { recursive: true, force: true });
  await mkdir(RESULTS_DIR, { recursive: true });
  await seedModels();

  const fd = openSync(DEV_LOG, "w");
  const child = spawn(
    join(REPO, "node_modules", ".bin", "wrangler"),
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      new URL(BASE).port,
      "--persist-to",
      PERSIST_DIR,
      "--show-interactive-dev-session=false",
    ],
    {
      cwd: REPO,
      // Its own process group, so teardown reaches workerd as well as wrangler.
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "1" },
    },
  );
  closeSync(fd);

  const stop = async () => {
    if (child.pid) await stopGroup(child.pid, 200);
  };

  try {
    const deadline = Date.now() + START_BUDGET_MS;
    // deep=1: the worker is up and every model file is in its R2.
    while (!(await answers("/healthz?deep=1"))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`wrangler dev exited (${child.exitCode ?? child.signalCode}):\n${logTail()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`wrangler dev not healthy on ${BASE} within ${START_BUDGET_MS / 1000} s:\n${logTail()}`);
      }
      await sleep(500);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return stop;
}
