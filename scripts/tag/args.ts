/**
 * Command-line parsing for `npm run tag`. Pure (no I/O) so it is unit-tested
 * directly; main() turns a thrown UsageError into exit code 2 plus the usage text.
 */
import { parseArgs } from "node:util";

export const DEFAULT_ENDPOINT = "http://127.0.0.1:8787";
export const DEFAULT_TOP_K = 5;
export const DEFAULT_CONCURRENCY = 4;

export const USAGE = `usage: npm run tag -- <folder | urls.txt | r2://prefix> [options]
       npm run tag -- --job <id | last> [options]

  <folder>        upload every .jpg/.jpeg/.png/.webp below it, then tag them
  <urls.txt>      one image URL per line (blank lines and # comments skipped)
  r2://<prefix>   tag objects already in the images bucket under <prefix>

options:
  --model <id>          model to use (server default: mobilenet-v2)
  --top-k <1..20>       labels per image (default ${DEFAULT_TOP_K})
  --endpoint <url>      API base URL (default ${DEFAULT_ENDPOINT})
  --out <file>          results file; .csv writes CSV, anything else NDJSON
                        (default: <job-id>.ndjson in the current directory)
  --job <id | last>     do not submit: follow an existing job and download it
  --concurrency <n>     parallel uploads for a folder (default ${DEFAULT_CONCURRENCY}, max 64)
  -h, --help            show this text

environment:
  EDGETAG_API_KEY       API key to send (default: the local dev key that
                        npm run dev seeds; see README, "Security model")`;

export class UsageError extends Error {
  override name = "UsageError";
}

export type Source =
  | { kind: "folder"; path: string }
  | { kind: "urls-file"; path: string }
  | { kind: "r2"; prefix: string };

export interface CliOptions {
  /** Undefined when --job is given: nothing is submitted. */
  source: Source | undefined;
  job: string | undefined;
  /** Undefined means "let the server pick", so the CLI never disagrees with the API's default. */
  model: string | undefined;
  topK: number;
  /** Undefined means "not given": --job may then take it from the resume file. */
  endpoint: string | undefined;
  out: string | undefined;
  format: "ndjson" | "csv";
  concurrency: number;
  help: boolean;
}

function intInRange(name: string, raw: string | undefined, min: number, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  // Number("") is 0 and Number("1e1") is 10; insist on plain digits so typos are not silently accepted.
  if (!/^\d+$/.test(raw)) throw new UsageError(`${name} must be an integer in ${min}..${max}, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${name} must be an integer in ${min}..${max}, got ${n}`);
  return n;
}

/** Normalizes and checks an endpoint: http(s) only, no trailing slash (paths are appended). */
export function normalizeEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--endpoint is not a URL: "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--endpoint must be http(s), got "${url.protocol}"`);
  }
  if (url.search || url.hash) throw new UsageError("--endpoint must not have a query or fragment");
  return url.toString().replace(/\/+$/, "");
}

/**
 * Classifies the positional argument. `isDirectory` is injected so parsing stays
 * pure: main() passes a real stat, tests pass a stub.
 */
export function classifySource(arg: string, isDirectory: (p: string) => boolean): Source {
  if (arg.startsWith("r2://")) {
    // Leading slashes would never match an R2 key ("r2:///a" is a typo for "r2://a").
    const prefix = arg.slice("r2://".length).replace(/^\/+/, "");
    if (!/^[A-Za-z0-9/._-]*$/.test(prefix)) {
      throw new UsageError(`r2:// prefix may only contain A-Z a-z 0-9 / . _ -, got "${prefix}"`);
    }
    return { kind: "r2", prefix };
  }
  return isDirectory(arg) ? { kind: "folder", path: arg } : { kind: "urls-file", path: arg };
}

export function parseCliArgs(argv: string[], isDirectory: (p: string) => boolean): CliOptions {
  let parsed: ReturnType<typeof parseRaw>;
  try {
    parsed = parseRaw(argv);
  } catch (err) {
    // node:util throws TypeErrors with codes like ERR_PARSE_ARGS_UNKNOWN_OPTION; they read well as-is.
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const help = values.help === true;
  const base = {
    model: values.model,
    topK: intInRange("--top-k", values["top-k"], 1, 20, DEFAULT_TOP_K),
    endpoint: values.endpoint === undefined ? undefined : normalizeEndpoint(values.endpoint),
    out: values.out,
    format: values.out?.toLowerCase().endsWith(".csv") ? ("csv" as const) : ("ndjson" as const),
    concurrency: intInRange("--concurrency", values.concurrency, 1, 64, DEFAULT_CONCURRENCY),
    help,
  };
  if (help) return { ...base, source: undefined, job: values.job };
  if (values.model !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(values.model)) {
    throw new UsageError(`--model looks malformed: "${values.model}"`);
  }
  if (values.out === "") throw new UsageError("--out needs a file name");
  if (values.job !== undefined) {
    if (positionals.length > 0) throw new UsageError("give either a source or --job, not both");
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(values.job)) throw new UsageError(`--job looks malformed: "${values.job}"`);
    return { ...base, source: undefined, job: values.job };
  }
  if (positionals.length === 0) throw new UsageError("missing the source: a folder, a urls.txt file or r2://prefix");
  if (positionals.length > 1) throw new UsageError(`expected one source, got ${positionals.length}`);
  return { ...base, source: classifySource(positionals[0] as string, isDirectory), job: undefined };
}

function parseRaw(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      model: { type: "string" },
      "top-k": { type: "string" },
      endpoint: { type: "string" },
      out: { type: "string" },
      job: { type: "string" },
      concurrency: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
