/**
 * Cold start: a new `wrangler dev` (new workerd process, so a new isolate with
 * nothing initialised), then the first POST /v1/classify for the model, timed
 * by the client from sending the request to the full answer, at the user
 * worker's own workerd socket as in the e2e section (wrangler's dev proxy, a
 * second local workerd that forwards every request, added 25-35 ms to a cold
 * request: it is local tooling, not part of the isolate's cold start). The
 * worker's `timings_ms` of that request split it: ort_init (ORT wasm instantiation and
 * self-test), model_fetch (R2 get + sha256 verify), session_create (ORT
 * session build) and infer (the first run). ORT init and the R2 fetch overlap
 * the image decode (the service starts loading before decoding), and each
 * other (both count from the start of the load), so the parts need not add up
 * to the total. Models alternate across repetitions.
 */
import type { BenchContext, ModelId } from "../context";
import type { Row } from "../report";
import { classify, ProxyDropped } from "../server";
import { median, round2 } from "../stats";

const TARGETS: Partial<Record<ModelId, number>> = { "mobilenet-v2": 600, "densenet-121": 1200 };

interface ColdSample {
  clientMs: number;
  /** Where the request went: the user worker's own socket, or the dev proxy if that was not found. */
  via: "workerd socket" | "dev proxy";
  timings: Record<string, number>;
  warmInferMs: number;
  startupMs: number;
}

export async function coldSection(ctx: BenchContext): Promise<void> {
  const reps = ctx.settings.quick ? 1 : 3;
  const ids = Object.keys(TARGETS) as ModelId[];
  const samples: Record<string, ColdSample[]> = Object.fromEntries(ids.map((id) => [id, []]));
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? ids : [...ids].reverse();
    for (const id of order) {
      for (let attempt = 1; ; attempt++) {
        const server = await ctx.startFresh(`dev-cold-${id}-${rep}.log`);
        const url = server.direct ?? server.base;
        try {
          // No retry for the cold request: a retried one may land on a warm isolate.
          const first = await classify(url, ctx.fresh(ctx.images.small), id, { retry: false });
          if (first.timings.ort_init === undefined) throw new Error("the first request did not load the model");
          const warm = await classify(url, ctx.fresh(ctx.images.small), id);
          samples[id]?.push({
            clientMs: first.clientMs,
            via: server.direct ? "workerd socket" : "dev proxy",
            timings: first.timings,
            warmInferMs: warm.timings.infer ?? Number.NaN,
            startupMs: server.startupMs,
          });
          ctx.log(`cold ${id} #${rep + 1}: ${first.clientMs.toFixed(0)} ms (${JSON.stringify(first.timings)})`);
          break;
        } catch (e) {
          if (!(e instanceof ProxyDropped) || attempt >= 3) throw e;
          ctx.log(`cold ${id} #${rep + 1}: the dev proxy dropped the request; starting over with a fresh server`);
        } finally {
          await server.stop();
        }
      }
    }
  }
  ctx.raw.cold = samples;

  for (const id of ids) {
    const list = samples[id] ?? [];
    const med = (f: (s: ColdSample) => number) => round2(median(list.map(f)));
    const sec = `cold start ${id}${ctx.model(id).manifest.trained ? "" : " (untrained)"}`;
    const rows: Row[] = [
      {
        section: sec,
        name: `first request → answer, fresh isolate (p50 of ${list.length})`,
        value: med((s) => s.clientMs),
        unit: "ms",
        target: { op: "<=", value: TARGETS[id] as number },
        note: `client at the ${[...new Set(list.map((s) => s.via))].join(" / ")}`,
      },
      {
        section: sec,
        name: "the isolate's own time (timings_ms.total)",
        value: med((s) => s.timings.total ?? Number.NaN),
        unit: "ms",
      },
      { section: sec, name: "ORT init", value: med((s) => s.timings.ort_init ?? Number.NaN), unit: "ms" },
      { section: sec, name: "R2 fetch + sha256", value: med((s) => s.timings.model_fetch ?? Number.NaN), unit: "ms" },
      { section: sec, name: "session creation", value: med((s) => s.timings.session_create ?? Number.NaN), unit: "ms" },
      {
        section: sec,
        name: "first run",
        value: med((s) => s.timings.infer ?? Number.NaN),
        unit: "ms",
        note: `second request's run: ${med((s) => s.warmInferMs)} ms`,
      },
      {
        section: sec,
        name: "decode + preprocess (overlaps ORT init / fetch)",
        value: med((s) => (s.timings.decode ?? 0) + (s.timings.preprocess ?? 0)),
        unit: "ms",
      },
      {
        section: sec,
        name: "wrangler dev start → healthy",
        value: med((s) => s.startupMs),
        unit: "ms",
        note: "bundling + workerd start, before the isolate's first request; not part of the target",
      },
    ];
    for (const r of rows) ctx.add(r);
  }
}
