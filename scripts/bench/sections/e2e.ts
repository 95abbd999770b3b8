/**
 * End-to-end HTTP latency of POST /v1/classify (default model, mobilenet-v2)
 * for a 640x480 and a 4032x3024 photo-like JPEG, measured by the client
 * (request sent → full response read) over loopback. Miss = bytes never seen
 * (a fresh COM segment, same pixels); hit = the same bytes again (KV result
 * cache). All four kinds alternate in one loop.
 */
import { type BenchContext, iterations } from "../context";
import { type ClassifyResponse, classify } from "../server";
import { alternate, median, round2, summarize } from "../stats";

const MODEL = "mobilenet-v2";

export async function e2eSection(ctx: BenchContext): Promise<void> {
  const dev = await ctx.dev();
  const hitImages = { small: ctx.fresh(ctx.images.small), large: ctx.fresh(ctx.images.large) };
  // Prime the cache for the hit images; the KV write happens after the response (waitUntil).
  for (const img of Object.values(hitImages)) await classify(dev.base, img, MODEL);
  for (const img of Object.values(hitImages)) {
    let cached = false;
    for (let i = 0; i < 50 && !cached; i++) {
      cached = (await classify(dev.base, img, MODEL)).cached;
      if (!cached) await new Promise((r) => setTimeout(r, 100));
    }
    if (!cached) throw new Error("the result cache never answered for a repeated image");
  }

  const responses: Record<string, ClassifyResponse[]> = {
    "640 miss": [],
    "640 hit": [],
    "12MP miss": [],
    "12MP hit": [],
  };
  const contender = (name: string, image: () => Uint8Array, expectCached: boolean) => ({
    name,
    run: async () => {
      const res = await classify(dev.base, image(), MODEL);
      if (res.cached !== expectCached) throw new Error(`${name}: cached=${res.cached}`);
      responses[name]?.push(res);
      return res.clientMs;
    },
  });
  const it = iterations(ctx.settings, { warmup: 2, iterations: 20 });
  const samples = await alternate(
    [
      contender("640 miss", () => ctx.fresh(ctx.images.small), false),
      contender("640 hit", () => hitImages.small, true),
      contender("12MP miss", () => ctx.fresh(ctx.images.large), false),
      contender("12MP hit", () => hitImages.large, true),
    ],
    it,
  );
  // Server-side stage medians of the measured (post-warm-up) misses: where the time goes.
  const stages = (name: string) => {
    const measured = (responses[name] ?? []).slice(it.warmup);
    const keys = new Set(measured.flatMap((r) => Object.keys(r.timings)));
    return Object.fromEntries([...keys].map((k) => [k, round2(median(measured.map((r) => r.timings[k] ?? 0)))]));
  };
  const st = { "640 miss": stages("640 miss"), "12MP miss": stages("12MP miss") };
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)]));
  ctx.raw.e2e = {
    model: MODEL,
    samples,
    summary: s,
    serverStageMedians: st,
    bytes: { small: ctx.images.small.length, large: ctx.images.large.length },
  };

  const infer = st["640 miss"].infer ?? Number.NaN;
  const sec = `e2e POST /v1/classify (${MODEL})`;
  const small = s["640 miss"];
  const large = s["12MP miss"];
  ctx.add({ section: sec, name: "640×480 miss p50", value: round2(small?.median ?? Number.NaN), unit: "ms" });
  ctx.add({ section: sec, name: "640×480 miss p95", value: round2(small?.p95 ?? Number.NaN), unit: "ms" });
  ctx.add({
    section: sec,
    name: "640×480 miss p50 ÷ pure inference",
    value: round2((small?.median ?? Number.NaN) / infer),
    unit: "x",
    target: { op: "<=", value: 1.25 },
    note: `inference = worker's infer p50 in the same requests, ${infer.toFixed(1)} ms; decode ${st["640 miss"].decode ?? "?"} ms, preprocess ${st["640 miss"].preprocess ?? "?"} ms`,
  });
  ctx.add({
    section: sec,
    name: "640×480 hit p50",
    value: round2(s["640 hit"]?.median ?? Number.NaN),
    unit: "ms",
    target: { op: "<=", value: 10 },
  });
  ctx.add({ section: sec, name: "4032×3024 miss p50", value: round2(large?.median ?? Number.NaN), unit: "ms" });
  ctx.add({
    section: sec,
    name: "4032×3024 miss p95",
    value: round2(large?.p95 ?? Number.NaN),
    unit: "ms",
    note: `${(ctx.images.large.length / 1e6).toFixed(1)} MB; worker decode ${st["12MP miss"].decode ?? "?"} ms, infer ${st["12MP miss"].infer ?? "?"} ms`,
  });
  ctx.add({
    section: sec,
    name: "4032×3024 hit p50",
    value: round2(s["12MP hit"]?.median ?? Number.NaN),
    unit: "ms",
    note: "upload + sha256 of the body dominate",
  });
}
