/**
 * Uploads every model file named by a manifest under models/ into the MODELS
 * R2 bucket of local dev (the same .wrangler/state that `wrangler dev` uses).
 * Idempotent: an object whose stored sha256 metadata and size already match the
 * manifest is skipped, so `npm run dev` pays for this only once.
 *
 * Locally it also stores the dev API key's hash (scripts/keys/dev-key.ts) in
 * the local API_KEYS namespace, so `npm run dev` works with the key the README
 * shows. --remote never does that: a real namespace only gets minted keys.
 *
 *   npm run models:seed            # local (default)
 *   npm run models:seed -- --remote   # prints the wrangler commands for a real bucket
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { getPlatformProxy } from "wrangler";
import { DEV_API_KEY } from "./keys/dev-key";
import { seedDevKey } from "./keys/store";

const ROOT = resolve(import.meta.dirname, "..");
const MODELS_DIR = join(ROOT, "models");

interface ManifestFile {
  id: string;
  file: { r2Key: string; sha256: string; bytes: number };
}

async function manifests(): Promise<Array<{ dir: string; manifest: ManifestFile }>> {
  const out: Array<{ dir: string; manifest: ManifestFile }> = [];
  for (const entry of await readdir(MODELS_DIR, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === "labels") continue;
    const dir = join(MODELS_DIR, entry.name);
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as ManifestFile;
    out.push({ dir, manifest });
  }
  return out;
}

/** The model file next to a manifest: the basename of its R2 key. */
const localPath = (dir: string, m: ManifestFile) => join(dir, m.file.r2Key.split("/").pop() as string);

async function main(): Promise<void> {
  const all = await manifests();
  if (process.argv.includes("--remote")) {
    console.log("Upload to your Cloudflare account's bucket with:");
    for (const { dir, manifest } of all) {
      console.log(
        `  npx wrangler r2 object put edgetag-models/${manifest.file.r2Key} --file ${localPath(dir, manifest)} --remote`,
      );
    }
    return;
  }
  const proxy = await getPlatformProxy<{ MODELS: R2Bucket; API_KEYS: KVNamespace }>({
    configPath: join(ROOT, "wrangler.toml"),
    persist: true,
  });
  try {
    for (const { dir, manifest } of all) {
      const { r2Key, sha256, bytes } = manifest.file;
      const head = await proxy.env.MODELS.head(r2Key);
      if (head && head.size === bytes && head.customMetadata?.sha256 === sha256) {
        console.log(`= ${manifest.id}: ${r2Key} already seeded`);
        continue;
      }
      const data = await readFile(localPath(dir, manifest));
      const actual = createHash("sha256").update(data).digest("hex");
      if (actual !== sha256 || data.byteLength !== bytes) {
        throw new Error(
          `${manifest.id}: ${localPath(dir, manifest)} does not match its manifest (sha256 ${actual}, ${data.byteLength} bytes)`,
        );
      }
      // A plain Uint8Array: the platform proxy cannot serialise Node's Buffer subclass.
      // R2 verifies the sha256 itself on upload as well.
      await proxy.env.MODELS.put(r2Key, new Uint8Array(data), {
        sha256,
        customMetadata: { sha256, model: manifest.id },
      });
      console.log(`+ ${manifest.id}: uploaded ${r2Key} (${(bytes / 1e6).toFixed(1)} MB)`);
    }
    const dev = await seedDevKey(proxy.env.API_KEYS);
    console.log(
      dev.record.revoked
        ? `= dev API key ${dev.record.id} is revoked in local KV (npm run keys -- list)`
        : `= dev API key (local only): Authorization: Bearer ${DEV_API_KEY}`,
    );
  } finally {
    await proxy.dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
