/**
 * `.edgetag/last-job.json`: written right after a job is submitted, so a
 * Ctrl-C, a closed laptop or a crash never loses the job id. `--job <id>` (or
 * `--job last`) reads it back to reuse the endpoint and output path.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const RESUME_DIR = ".edgetag";
export const RESUME_FILE = "last-job.json";

export interface ResumeInfo {
  job_id: string;
  endpoint: string;
  out: string;
  format: "ndjson" | "csv";
  submitted_at: string;
}

export const resumePath = (baseDir: string) => join(baseDir, RESUME_DIR, RESUME_FILE);

export async function writeResume(baseDir: string, info: ResumeInfo): Promise<string> {
  const path = resumePath(baseDir);
  await mkdir(join(baseDir, RESUME_DIR), { recursive: true });
  // Write then rename: a crash mid-write must not leave a half file that hides the job id.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(info, null, 2)}\n`);
  await rename(tmp, path);
  return path;
}

/** The saved job, or null if there is none. A file that is not ours (bad JSON, wrong shape) throws with the path. */
export async function readResume(baseDir: string): Promise<ResumeInfo | null> {
  const path = resumePath(baseDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${path} is not valid JSON; delete it or pass --job <id>`);
  }
  const o = v as Partial<ResumeInfo>;
  if (typeof o.job_id !== "string" || typeof o.endpoint !== "string" || typeof o.out !== "string") {
    throw new Error(`${path} lacks job_id/endpoint/out; delete it or pass --job <id>`);
  }
  return {
    job_id: o.job_id,
    endpoint: o.endpoint,
    out: o.out,
    format: o.format === "csv" ? "csv" : "ndjson",
    submitted_at: typeof o.submitted_at === "string" ? o.submitted_at : "",
  };
}

export interface ResolvedJob {
  jobId: string;
  endpoint: string;
  out: string | undefined;
}

/**
 * What `--job` follows. "last" means the saved job. For an explicit id, the
 * saved endpoint and output are reused only when the ids match: they belong to
 * that job, not to whatever job the user names. Flags always win.
 */
export function resolveResume(
  job: string,
  flags: { endpoint: string | undefined; out: string | undefined },
  saved: ResumeInfo | null,
  defaultEndpoint: string,
): ResolvedJob {
  if (job === "last" && !saved) throw new Error(`--job last: no saved job (${RESUME_DIR}/${RESUME_FILE} not found)`);
  const jobId = job === "last" ? (saved as ResumeInfo).job_id : job;
  const same = saved !== null && saved.job_id === jobId;
  return {
    jobId,
    endpoint: flags.endpoint ?? (same ? saved.endpoint : defaultEndpoint),
    out: flags.out ?? (same ? saved.out : undefined),
  };
}
