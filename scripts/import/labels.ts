/**
 * Label sets for models:import: an existing models/labels/<name>.json, or a
 * new one read from a .json array or a .txt file (one label per line).
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { jsonText, MODELS_DIR } from "../model-files";
import { ImportError } from "./args";

export interface LabelSet {
  name: string;
  labels: string[];
  /** Read from a user's file (a new set), not from an existing models/labels/<name>.json. */
  fromFile: boolean;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const looksLikePath = (arg: string): boolean =>
  arg.includes("/") || arg.includes("\\") || /\.(json|txt)$/i.test(arg) || existsSync(arg);

function parseLabelFile(path: string, text: string): string[] {
  if (extname(path).toLowerCase() === ".txt") {
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    while (lines.length > 0 && lines.at(-1) === "") lines.pop();
    return lines;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ImportError(`--labels ${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (!Array.isArray(parsed) || !parsed.every((l) => typeof l === "string")) {
    throw new ImportError(`--labels ${path}: expected a JSON array of strings`);
  }
  return parsed;
}

function validate(set: LabelSet, where: string): LabelSet {
  if (!NAME.test(set.name)) {
    throw new ImportError(`label set name "${set.name}" must match ${NAME} (pass --labels-name)`);
  }
  if (set.labels.length === 0) throw new ImportError(`${where}: no labels`);
  const empty = set.labels.findIndex((l) => l.trim() === "");
  if (empty >= 0) throw new ImportError(`${where}: label ${empty} is empty`);
  return set;
}

/** Reads `<dir>/labels/<name>.json` from the output folder first, then the repository's models/. */
async function readExisting(name: string, outDir: string): Promise<LabelSet> {
  for (const dir of [outDir, MODELS_DIR]) {
    const path = join(dir, "labels", `${name}.json`);
    if (!existsSync(path)) continue;
    return validate({ name, labels: parseLabelFile(path, await readFile(path, "utf8")), fromFile: false }, path);
  }
  throw new ImportError(
    `unknown label set "${name}": no models/labels/${name}.json (pass a .json or .txt file to add a new one)`,
  );
}

export async function resolveLabels(arg: string, nameOverride: string | undefined, outDir: string): Promise<LabelSet> {
  if (!looksLikePath(arg)) return readExisting(arg, outDir);
  if (!existsSync(arg)) throw new ImportError(`--labels: file ${arg} does not exist`);
  const name = nameOverride ?? basename(arg, extname(arg)).toLowerCase();
  return validate({ name, labels: parseLabelFile(arg, await readFile(arg, "utf8")), fromFile: true }, arg);
}

const sameLabels = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((l, i) => l === b[i]);

/** Throws if `<outDir>/labels/<name>.json` exists with different labels. */
export async function checkLabelSetFree(set: LabelSet, outDir: string): Promise<void> {
  const path = join(outDir, "labels", `${set.name}.json`);
  if (!existsSync(path)) return;
  const existing = parseLabelFile(path, await readFile(path, "utf8"));
  if (!sameLabels(existing, set.labels)) {
    throw new ImportError(
      `label set "${set.name}" already exists in ${path} with different labels: choose another --labels-name`,
    );
  }
}

/** Writes `<outDir>/labels/<name>.json` if it is not there yet; returns whether it wrote. */
export async function writeLabelSet(set: LabelSet, outDir: string): Promise<boolean> {
  const path = join(outDir, "labels", `${set.name}.json`);
  if (existsSync(path)) return false;
  await mkdir(join(outDir, "labels"), { recursive: true });
  await writeFile(path, jsonText(set.labels));
  return true;
}
