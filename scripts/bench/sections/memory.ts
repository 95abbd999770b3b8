/**
 * Peak memory of the isolate with both ImageNet int8 models (mobilenet-v2,
 * densenet-121) loaded while a 12 MP JPEG is classified, on a fresh workerd.
 *
 * Three views, from tight to loose:
 *  - wasm linear memories of the isolate (inspector: every WebAssembly.Memory;
 *    ORT's is the big one). A wasm memory never shrinks, so its size after the
 *    request is its peak — exact.
 *  - JS heap of the isolate (inspector Runtime.getHeapUsage: V8 heap plus
 *    ArrayBuffer backing stores), polled every few ms during the request. The
 *    poll is only answered when the isolate yields, so this is a lower bound on
 *    the true peak (a synchronous decode may allocate and free in between).
 *  - the whole workerd process's peak RSS (VmHWM), an upper bound: it also
 *    holds the runtime, V8's compiled code for ORT's 14 MB wasm, and
 *    miniflare's own helper services (KV, R2, Queues, Durable Objects
 *    simulators) that a production isolate does not carry.
 * The verdict is given on wasm + JS heap (the isolate's own allocations).
 */
import type { BenchContext } from "../context";
import { type HeapUsage, Inspector } from "../inspector";
import { classify, procMemory, proxyRetries } from "../server";
import { round2 } from "../stats";

const MB = 1024 * 1024;

export async function memorySection(ctx: BenchContext): Promise<void> {
  const server = await ctx.startFresh("dev-memory.log");
  const retriesBefore = proxyRetries.count;
  ctx.adopt(server); // later sections reuse it (after this, its peak figures no longer matter)
  await new Promise((r) => setTimeout(r, 500));
  const sec = "peak memory: both models + 12 MP JPEG";
  const idle = procMemory(server.workerdPid);

  let insp: Inspector | undefined;
  let inspectorError: string | undefined;
  try {
    insp = await Inspector.connect(server.inspectorPort);
  } catch (e) {
    inspectorError = e instanceof Error ? e.message : String(e);
    ctx.log(`memory: inspector unavailable: ${inspectorError}`);
  }
  const heapIdle = insp ? await insp.heapUsage() : undefined;

  await classify(server.base, ctx.fresh(ctx.images.small), "mobilenet-v2");
  await classify(server.base, ctx.fresh(ctx.images.small), "densenet-121");
  const loaded = procMemory(server.workerdPid);
  const heapLoaded = insp ? await insp.heapUsage() : undefined;
  const wasmLoaded = insp ? await insp.wasmMemories() : undefined;

  // The 12 MP request, with the heap polled while it runs.
  const polls: HeapUsage[] = [];
  let done = false;
  const poller = (async () => {
    while (insp && !done) {
      try {
        polls.push(await insp.heapUsage());
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const res = await classify(server.base, ctx.fresh(ctx.images.large), "mobilenet-v2");
  done = true;
  await poller;
  const after = procMemory(server.workerdPid);
  const heapAfter = insp ? await insp.heapUsage() : undefined;
  const wasmAfter = insp ? await insp.wasmMemories() : undefined;
  insp?.close();
  // A dropped-and-retried request may mean wrangler replaced the isolate mid-way: then the peaks are not one isolate's.
  if (proxyRetries.count !== retriesBefore)
    throw new Error("wrangler's dev proxy dropped a request during the measurement; run again");

  const heapBytes = (h: HeapUsage) => h.usedSize + (h.backingStorageSize ?? 0);
  const all = [heapLoaded, heapAfter, ...polls].filter((h): h is HeapUsage => h !== undefined);
  const jsPeak = all.length ? Math.max(...all.map(heapBytes)) : undefined;
  const wasmTotal = wasmAfter?.reduce((a, b) => a + b, 0);
  ctx.raw.memory = {
    workerdPid: server.workerdPid,
    proc: { idle, loaded, after },
    heap: { idle: heapIdle, loaded: heapLoaded, after: heapAfter, polls: polls.length },
    wasm: { loaded: wasmLoaded, after: wasmAfter },
    request: res.timings,
    inspectorError,
  };

  const na = inspectorError ? `not measured: ${inspectorError}` : undefined;
  ctx.add({
    section: sec,
    name: "isolate: wasm memories + JS heap peak",
    value: wasmTotal !== undefined && jsPeak !== undefined ? round2((wasmTotal + jsPeak) / MB) : null,
    unit: "MB",
    target: { op: "<=", value: 100 },
    note: na ?? "wasm exact; JS heap sampled, a lower bound",
  });
  ctx.add({
    section: sec,
    name: "ORT wasm heap (largest wasm memory)",
    value: wasmAfter?.[0] !== undefined ? round2(wasmAfter[0] / MB) : null,
    unit: "MB",
    note:
      na ??
      `after loading both: ${round2((wasmLoaded?.[0] ?? 0) / MB)} MB; ${wasmAfter?.length ?? 0} wasm memories, ${round2((wasmTotal ?? 0) / MB)} MB in all`,
  });
  ctx.add({
    section: sec,
    name: `JS heap peak, used + ArrayBuffers (${polls.length} polls)`,
    value: jsPeak !== undefined ? round2(jsPeak / MB) : null,
    unit: "MB",
    note:
      na ??
      `idle ${round2(heapBytes(heapIdle as HeapUsage) / MB)} MB, models loaded ${round2(heapBytes(heapLoaded as HeapUsage) / MB)} MB`,
  });
  ctx.add({
    section: sec,
    name: "workerd process peak RSS (VmHWM)",
    value: round2(after.hwmMb),
    unit: "MB",
    note: `upper bound: whole local runtime; idle before the first request ${round2(idle.rssMb)} MB, after loading both models ${round2(loaded.rssMb)} MB`,
  });
  ctx.add({
    section: sec,
    name: "workerd peak RSS growth over idle",
    value: round2(after.hwmMb - idle.rssMb),
    unit: "MB",
    note: "what serving added to the process, incl. V8 code for ORT's wasm",
  });
}
