/**
 * onnxruntime-web's profiler output, captured. ORT-web prints each profile
 * (Chrome trace JSON, one event per line) on stdout through Emscripten's
 * `fs.writeSync(1, …)` when a session ends profiling. While a capture is
 * running, fd 1 is read instead of printed, and every node event's kernel time
 * goes into `sink` (each node's fastest, in µs); other fds pass through.
 * Used by `npm run models:profile` and scripts/quantize-variants.ts.
 */
import fs from "node:fs";

export class KernelTimeCapture {
  /** Where the next profile lines go; undefined discards them (e.g. a flush-only session's). */
  sink: Map<string, number> | undefined;
  private pending = "";
  private readonly original = fs.writeSync;

  constructor() {
    const original = this.original;
    fs.writeSync = ((fd: number, data: string | Uint8Array, ...rest: unknown[]) => {
      if (fd !== 1) return (original as (...a: unknown[]) => number)(fd, data, ...rest);
      this.take(typeof data === "string" ? data : new TextDecoder().decode(data));
      return data.length;
    }) as typeof fs.writeSync;
  }

  /** Puts fs.writeSync back. */
  stop(): void {
    fs.writeSync = this.original;
  }

  private take(chunk: string): void {
    this.pending += chunk;
    for (let nl = this.pending.indexOf("\n"); nl >= 0; nl = this.pending.indexOf("\n")) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      const m = /"dur" :(\d+).*"name" :"([^"]*)_kernel_time"/.exec(line);
      if (m && this.sink && line.includes('"cat" : "Node"')) {
        const name = m[2] as string;
        this.sink.set(name, Math.min(this.sink.get(name) ?? Number.POSITIVE_INFINITY, Number(m[1])));
      }
    }
  }
}
