/**
 * edgetag benchmark (issue 7): one command, a markdown table of every figure
 * beside its target, and the raw samples as JSON.
 *
 *   npm run bench                      # everything (a few minutes on 2 cores)
 *   npm run bench -- --quick           # few iterations: a smoke run
 *   npm run bench -- --only infer,peer # sections: cold, memory, infer, peer, e2e, bulk
 *   npm run bench -- --port 8806       # wrangler dev port (inspector: port + 1)
 *   npm run bench -- --repeat 3        # three full runs; each figure is their median
 *
 * Offline and Python-free: the fp32 baselines are derived from the committed
 * int8 models, the test JPEGs are generated, TF.js and nsfwjs load from
 * node_modules, and the worker runs under `wrangler dev` with its own state
 * in bench-results/state. Output: bench-results/bench-<time>.{json,md} and
 * bench-results/latest.{json,md}.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { BenchContext, loadImages, loadModels } from "./context";
import { markdownTable, mergeRuns, type Row, verdict } from "./report";
import { bulkSection } from "./sections/bulk";
import { coldSection } from "./sections/cold";
import { e2eSection } from "./sections/e2e";
import { inferSection } from "./sections/infer";
import { memorySection } from "./sections/memory";
import { peerSection } from "./sections/peer";
import { proxyRetries, REPO, RESULTS_DIR, seedModels } from "./server";

/** Run order matters: sections that need a fresh isolate come first, then the shared server serves the rest. */
const SECTIONS = {
  cold: { run: coldSection, server: true },
  memory: { run: memorySection, server: true },
  infer: { run: inferSection, server: true },
  peer: { run: peerSection, server: false },
  e2e: { run: e2eSection, server: true },
  bulk: { run: bulkSection, server: true },
} as const;
type SectionName = keyof typeof SECTIONS;

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function parseArgs(argv: string[]): { quick: boolean; only: SectionName[]; port: number; repeat: number } {
  let quick = false;
  let port = 8806;
  let repeat = 1;
  const only: SectionName[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--quick") quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const v = a.includes("=") ? a.slice(7) : argv[++i];
      for (const s of (v ?? "").split(",").filter(Boolean)) {
        if (!(s in SECTIONS)) throw new Error(`unknown section "${s}"; sections: ${Object.keys(SECTIONS).join(", ")}`);
        only.push(s as SectionName);
      }
    } else if (a === "--port" || a.startsWith("--port=")) {
      port = Number(a.includes("=") ? a.slice(7) : argv[++i]);
      if (!Number.isInteger(port) || port < 1 || port > 65534) throw new Error("--port needs a port number");
    } else if (a === "--repeat" || a.startsWith("--repeat=")) {
      repeat = Number(a.includes("=") ? a.slice(9) : argv[++i]);
      if (!Number.isInteger(repeat) || repeat < 1 || repeat > 9)
        throw new Error("--repeat needs a whole number of runs, 1 to 9");
    } else if (a === "--help" || a === "-h") {
      process.stdout.write(
        "usage: npm run bench -- [--quick] [--only cold,memory,infer,peer,e2e,bulk] [--port N] [--repeat N]\n",
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return { quick, only, port, repeat };
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const chosen = (Object.keys(SECTIONS) as SectionName[]).filter(
    (s) => args.only.length === 0 || args.only.includes(s),
  );
  const t0 = performance.now();
  const loadStart = os.loadavg();
  log(
    `sections: ${chosen.join(", ")}${args.quick ? " (quick)" : ""}; load average ${loadStart.map((x) => x.toFixed(2)).join(" ")}`,
  );

  log("preparing images and fp32 twins (cached in bench-results/cache)");
  const images = loadImages();
  const models = await loadModels(images.small, log);

  const errors: Record<string, string> = {};
  const timing: Record<string, number> = {};
  const runs: Row[][] = [];
  const raws: Array<Record<string, unknown>> = [];
  for (let run = 1; run <= args.repeat; run++) {
    // A new context per run: its own servers, rows and raw samples; the images and models are reused.
    const ctx = new BenchContext(
      { quick: args.quick, port: args.port, inspectorPort: args.port + 1 },
      images,
      models,
      log,
    );
    if (args.repeat > 1) log(`══ run ${run} of ${args.repeat}`);
    // Every run starts from an empty local state, as a fresh clone does (and as one run always has):
    // an earlier run's leftovers (200 bulk images, jobs, cache entries) slow miniflare's simulators.
    if (chosen.some((s) => SECTIONS[s].server)) await seedModels(log);
    try {
      for (const name of chosen) {
        const s0 = performance.now();
        log(`── ${name}`);
        try {
          await SECTIONS[name].run(ctx);
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          errors[args.repeat > 1 ? `${name} (run ${run})` : name] = msg;
          log(`${name} failed: ${e instanceof Error ? (e.stack ?? msg) : msg}`);
          ctx.add({
            section: name,
            name: "section failed",
            value: null,
            unit: "",
            target: { op: ">=", value: 0 },
            note: msg.slice(0, 200),
          });
        }
        timing[name] = (timing[name] ?? 0) + Math.round(performance.now() - s0);
      }
    } finally {
      await ctx.stopShared();
    }
    runs.push(ctx.rows);
    raws.push(ctx.raw);
  }
  const rows = mergeRuns(runs);

  const totalS = (performance.now() - t0) / 1000;
  const loadEnd = os.loadavg();
  const header = [
    `edgetag benchmark — ${new Date().toISOString()} — commit ${gitCommit()}${args.quick ? " — QUICK (smoke run, few iterations)" : ""}${args.repeat > 1 ? ` — median of ${args.repeat} full runs, judged on the medians` : ""}`,
    `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}; load average at start ${loadStart[0]?.toFixed(2)}, at end ${loadEnd[0]?.toFixed(2)}; took ${totalS.toFixed(0)} s; ${proxyRetries.count} request(s) retried after wrangler's dev proxy dropped them`,
  ];
  const table = markdownTable(rows);
  const verdicts = rows.map(verdict);
  const summary = `${verdicts.filter((v) => v === "PASS").length} PASS, ${verdicts.filter((v) => v === "FAIL").length} FAIL, ${verdicts.filter((v) => v === "n/a").length} not measured`;
  const md = `${header.join("\n")}\n\n${table}\n\n${summary}\n`;
  process.stdout.write(`\n${md}`);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const json = {
    meta: {
      date: new Date().toISOString(),
      commit: gitCommit(),
      quick: args.quick,
      repeat: args.repeat,
      sections: chosen,
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadavg: { start: loadStart, end: loadEnd },
      seconds: totalS,
      sectionMs: timing,
      proxyRetries: proxyRetries.count,
      errors,
    },
    rows: rows.map((r) => ({ ...r, result: verdict(r) })),
    // One run: its raw samples, as before. Several: each run's rows and raw samples, in order.
    ...(args.repeat > 1 ? { runs: runs.map((r, i) => ({ rows: r, raw: raws[i] })) } : { raw: raws[0] }),
  };
  for (const base of [`bench-${stamp}`, "latest"]) {
    writeFileSync(join(RESULTS_DIR, `${base}.json`), `${JSON.stringify(json, null, 1)}\n`);
    writeFileSync(join(RESULTS_DIR, `${base}.md`), md);
  }
  log(`wrote bench-results/bench-${stamp}.{json,md} (and latest.*) in ${totalS.toFixed(0)} s`);
  if (Object.keys(errors).length) process.exitCode = 1;
}

// Exit explicitly: ORT-web and TF.js may keep handles open after their work is done.
main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    log(`FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
