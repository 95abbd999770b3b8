/**
 * Puts an imported model file into the MODELS bucket: local dev R2 through
 * wrangler's platform proxy (the same state `wrangler dev` and
 * `npm run models:seed` use), or, for a real account, the wrangler commands.
 */
import { join } from "node:path";
import type { ModelManifest } from "../../src/models/manifest";
import { ROOT } from "../model-files";

/** wrangler.toml's MODELS binding (as scripts/seed-models.ts prints it). */
const BUCKET = "edgetag-models";

export function remoteUploadCommand(manifest: ModelManifest, localFile: string): string {
  return `npx wrangler r2 object put ${BUCKET}/${manifest.file.r2Key} --file ${localFile} --remote`;
}

/** Uploads unless an object with the same size and sha256 is already there; returns what it did. */
export async function uploadLocal(manifest: ModelManifest, bytes: Uint8Array): Promise<"uploaded" | "present"> {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  process.env.WRANGLER_LOG ??= "error"; // not the local-dev binding warnings, which are about wrangler dev
  const { getPlatformProxy } = await import("wrangler");
  const proxy = await getPlatformProxy<{ MODELS: R2Bucket }>({
    configPath: join(ROOT, "wrangler.toml"),
    persist: true,
  });
  try {
    const { r2Key, sha256, bytes: size } = manifest.file;
    const head = await proxy.env.MODELS.head(r2Key);
    if (head && head.size === size && head.customMetadata?.sha256 === sha256) return "present";
    // A plain Uint8Array: the proxy cannot serialise Node's Buffer subclass. R2 checks the sha256 too.
    await proxy.env.MODELS.put(r2Key, new Uint8Array(bytes), {
      sha256,
      customMetadata: { sha256, model: manifest.id },
    });
    const stored = await proxy.env.MODELS.head(r2Key);
    if (stored?.size !== size)
      throw new Error(`local R2 holds ${stored?.size ?? "no"} bytes at ${r2Key}, expected ${size}`);
    return "uploaded";
  } finally {
    await proxy.dispose();
  }
}
