/**
 * File conventions of models/ shared by the Node model tools, the same as
 * scripts/model_files.py writes them from the Python build scripts: sha256
 * lines, models/SHA256SUMS, JSON with two-space indent and a final newline.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const MODELS_DIR = join(ROOT, "models");

export const sha256Hex = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** As Python's json.dumps(obj, indent=2) + "\n" for the ASCII data we write. */
export const jsonText = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** A `sha256sum` line: "<hex>  <name>". */
export const sha256Line = (sha: string, name: string): string => `${sha}  ${name}\n`;

/** The content-addressed R2 key, so a new build never overwrites an object an older deployment uses. */
export const r2KeyFor = (id: string, sha: string, fileName: string): string =>
  `models/${id}/${sha.slice(0, 16)}/${fileName}`;

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Python's PurePosixPath ordering: component by component ("a/x" < "a-b/x", unlike plain strings). */
export function comparePaths(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * Rewrites <modelsDir>/SHA256SUMS over every .onnx and .json file below it
 * (`cd models && sha256sum -c SHA256SUMS`), byte for byte what
 * scripts/model_files.py's write_sha256sums produces.
 */
export async function writeSha256Sums(modelsDir: string): Promise<void> {
  const files = (await listFiles(modelsDir))
    .filter((p) => p.endsWith(".onnx") || p.endsWith(".json"))
    .map((p) => relative(modelsDir, p).split(sep).join("/"))
    .sort(comparePaths);
  const lines: string[] = [];
  for (const rel of files) lines.push(sha256Line(sha256Hex(await readFile(join(modelsDir, rel))), rel));
  await writeFile(join(modelsDir, "SHA256SUMS"), lines.join(""));
}
