/** Local inputs: walking a folder, reading a URL list, and turning paths into upload keys. */
import { createHash, randomBytes } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";

export const IMAGE_TYPES: Readonly<Record<string, string>> = {
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".webp": "image/webp",
};

export const contentTypeFor = (path: string): string | undefined => IMAGE_TYPES[extname(path).toLowerCase()];

export interface LocalImage {
  /** Absolute (or cwd-relative) path to read. */
  path: string;
  /** Path below the folder, with "/" separators on every OS. */
  rel: string;
  bytes: number;
}

/**
 * Every image file below `root`, sorted by relative path so runs are repeatable.
 * Symlinked files are followed; symlinked directories are not, so a link back to
 * a parent cannot make the walk loop.
 */
export async function findImages(root: string): Promise<LocalImage[]> {
  const out: LocalImage[] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(full);
        continue;
      }
      if (!contentTypeFor(entry.name)) continue;
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      const st = await stat(full).catch(() => undefined);
      if (!st?.isFile()) continue;
      out.push({ path: full, rel: relative(root, full).split(sep).join("/"), bytes: st.size });
    }
  }
  await walk(root);
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

export interface UrlList {
  urls: string[];
  /** 1-based line numbers with what is wrong with them. */
  invalid: Array<{ line: number; text: string; reason: string }>;
}

/** One URL per line; blank lines and lines starting with # are skipped; only http(s) URLs are accepted. */
export function parseUrlList(text: string): UrlList {
  const urls: string[] = [];
  const invalid: UrlList["invalid"] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    let url: URL;
    try {
      url = new URL(line);
    } catch {
      invalid.push({ line: i + 1, text: line, reason: "not a URL" });
      return;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      invalid.push({ line: i + 1, text: line, reason: `unsupported scheme ${url.protocol}` });
      return;
    }
    urls.push(line);
  });
  return { urls, invalid };
}

/** Sortable and unique enough that two runs in the same second do not share a prefix. */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${stamp}-${randomBytes(4).toString("hex")}`;
}

export const MAX_KEY_LENGTH = 512;
const KEY_CHAR = /[A-Za-z0-9/._-]/;

/**
 * Maps relative paths to R2 keys `uploads/<run-id>/<rel>` within the API's key
 * rules ([A-Za-z0-9/._-], at most 512 chars). Other characters (spaces, accents)
 * become "_"; "." and ".." segments would be ambiguous in a key so they are
 * replaced too. Because replacing can make two paths collide ("a b.png" and
 * "a_b.png"), and truncating can too, such keys get a short hash of the original
 * path: every file keeps its own key and the mapping is deterministic.
 */
export function uploadKeys(runId: string, rels: string[]): Map<string, string> {
  const prefix = `uploads/${runId}/`;
  const keys = new Map<string, string>();
  const taken = new Set<string>();
  const hashOf = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 10);
  const withHash = (key: string, rel: string) => {
    const ext = extname(key);
    const room = MAX_KEY_LENGTH - ext.length - 11;
    return `${key.slice(0, key.length - ext.length).slice(0, room)}-${hashOf(rel)}${ext}`;
  };
  for (const rel of rels) {
    const cleaned = rel
      .split("/")
      .map((seg) =>
        seg === "." || seg === ".." || seg === "" ? "_" : [...seg].map((c) => (KEY_CHAR.test(c) ? c : "_")).join(""),
      )
      .join("/");
    let key = prefix + cleaned;
    if (cleaned !== rel || key.length > MAX_KEY_LENGTH || taken.has(key)) key = withHash(key, rel);
    keys.set(rel, key);
    taken.add(key);
  }
  return keys;
}
