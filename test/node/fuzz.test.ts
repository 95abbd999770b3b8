/**
 * The decode -> preprocess path against hostile bytes, in plain Node:
 *  - every corpus file (test/fixtures/corpus) sent as raw bytes gets its
 *    documented answer from the same entry the worker uses;
 *  - a short seeded run of scripts/fuzz.ts: every case ends in a well-formed
 *    tensor or a 4xx ApiError, and known-good images still decode afterwards.
 * The long run is `npm run fuzz -- --iterations 50000`.
 *
 * Run: npx vitest run --project node test/node/fuzz.test.ts
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { checkCanaries, formatReport, fuzz, loadPipeline, loadSeeds, makeCase, runCase } from "../../scripts/fuzz";
import { ApiError } from "../../src/errors";

const CORPUS = fileURLToPath(new URL("../fixtures/corpus/", import.meta.url));

interface Entry {
  file: string;
  send: { type: string; content_type: string };
  status: number;
  code?: string;
  answer?: string;
}

let pipeline: Awaited<ReturnType<typeof loadPipeline>>;

beforeAll(async () => {
  pipeline = await loadPipeline();
});

describe("the corpus through decode -> preprocess", () => {
  it("every raw-sent file gets its documented answer for every model", async () => {
    const entries: Entry[] = JSON.parse(readFileSync(`${CORPUS}index.json`, "utf8")).files;
    // Answered over HTTP before any decoder runs: zero bytes (empty_body) and refused content types.
    const decoded = entries.filter(
      (e) =>
        e.send.type === "raw" && e.status !== 400 && !["text/plain", "application/json"].includes(e.send.content_type),
    );
    expect(decoded.length).toBeGreaterThan(50);
    for (const e of decoded) {
      const bytes = new Uint8Array(readFileSync(`${CORPUS}${e.file}`));
      for (let m = 0; m < pipeline.models.length; m++) {
        const o = await runCase(pipeline, bytes, m);
        const want = e.answer === "classifies" ? "ok" : `${e.status} ${e.code}`;
        expect(o.class, `${e.file} / ${pipeline.models[m]?.id}: ${o.ok ? "" : o.detail}`).toBe(want);
      }
    }
    expect(await checkCanaries(pipeline)).toBeUndefined();
  });
});

describe("seeded mutational fuzzing", () => {
  it("2000 cases: a well-formed tensor or a 4xx ApiError every time, and the decoders keep working", async () => {
    const report = await fuzz({ iterations: 2000, seed: 20240607, pipeline });
    console.log(formatReport(report));
    expect(report.failures.map((f) => `#${f.iteration} ${f.class}: ${f.detail}`)).toEqual([]);
    const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
    expect(total).toBe(2000);
    // The mutations must reach every kind of outcome, or the run proves little.
    expect(report.counts.ok ?? 0).toBeGreaterThan(100);
    expect(report.counts["422 invalid_image"] ?? 0).toBeGreaterThan(500);
    expect(report.counts["415 unsupported_media_type"] ?? 0).toBeGreaterThan(20);
    expect(report.counts["413 image_too_large"] ?? 0).toBeGreaterThan(20);
  });

  it("case i of a seed is the same bytes every time (failures replay with --replay i)", () => {
    const seeds = loadSeeds();
    for (const i of [0, 17, 1999]) {
      const a = makeCase(seeds, 5, i);
      const b = makeCase(seeds, 5, i);
      expect(b.bytes).toEqual(a.bytes);
      expect(b.steps).toEqual(a.steps);
    }
    expect(makeCase(seeds, 5, 1).bytes).not.toEqual(makeCase(seeds, 6, 1).bytes);
  });

  it("counts anything but a tensor or a 4xx ApiError as a failure", async () => {
    const jpeg = new Uint8Array(readFileSync(`${CORPUS}1x1.jpg`));
    const broken = (e: unknown) => ({
      ...pipeline,
      decodeImageWithInfo: async () => {
        throw e;
      },
    });
    expect((await runCase(broken(new TypeError("x is undefined")), jpeg, 0)).class).toBe("exception TypeError");
    expect(await runCase(broken(new ApiError("internal", "boom")), jpeg, 0)).toMatchObject({
      ok: false,
      class: "500 internal",
    });
    expect(await runCase(broken(new ApiError("invalid_image", "bad")), jpeg, 0)).toMatchObject({ ok: true });
    const nan = { ...pipeline, preprocess: () => new Float32Array(3 * 224 * 224).fill(Number.NaN) };
    expect((await runCase(nan, jpeg, 0)).class).toBe("bad-output");
  });
});
