/**
 * A minimal Chrome DevTools Protocol client for the worker's isolate, through
 * the inspector proxy `wrangler dev` serves on --inspector-port. It reads
 * what /proc cannot separate out of the workerd process: the isolate's JS
 * heap (Runtime.getHeapUsage) and the sizes of its WebAssembly memories
 * (Runtime.queryObjects on WebAssembly.Memory.prototype), i.e. ORT's wasm
 * heap — which only ever grows, so its size after a request is its peak.
 *
 * Needs a global WebSocket: Node 22+, or Node 20 with --experimental-websocket
 * (the `bench` npm script passes it).
 */

export interface HeapUsage {
  /** V8 heap in use / reserved, bytes. */
  usedSize: number;
  totalSize: number;
  /** ArrayBuffer backing stores and external strings, bytes (not the V8 heap). */
  backingStorageSize?: number;
  embedderHeapUsedSize?: number;
}

export class Inspector {
  private nextId = 0;
  private readonly pending = new Map<number, (m: { result?: unknown; error?: { message: string } }) => void>();
  private contextId: number | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const msg = JSON.parse(String(e.data)) as {
        id?: number;
        method?: string;
        params?: { context?: { id: number; name?: string } };
        result?: unknown;
        error?: { message: string };
      };
      if (msg.method === "Runtime.executionContextCreated" && msg.params?.context) {
        this.contextId = msg.params.context.id;
      }
      if (msg.id !== undefined) {
        this.pending.get(msg.id)?.(msg);
        this.pending.delete(msg.id);
      }
    });
  }

  static async connect(port: number): Promise<Inspector> {
    if (typeof WebSocket === "undefined") {
      throw new Error("no global WebSocket (run Node 20 with --experimental-websocket, as `npm run bench` does)");
    }
    // Wrangler's inspector proxy insists on an Origin header (a browser DevTools check).
    const WS = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;
    const ws = new WS(`ws://127.0.0.1:${port}/ws`, { headers: { Origin: "http://localhost" } });
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`inspector on port ${port}: connection failed`)), {
        once: true,
      });
    });
    const insp = new Inspector(ws);
    // Wrangler's proxy enabled Runtime already (and swallowed the context events before we came):
    // a disable/enable cycle makes V8 announce the execution context again.
    await insp.send("Runtime.disable");
    await insp.send("Runtime.enable");
    for (let i = 0; i < 50 && insp.contextId === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    if (insp.contextId === undefined) throw new Error("inspector: the worker's execution context was not announced");
    return insp;
  }

  send<T = unknown>(method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector: ${method} timed out`));
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        if (m.error) reject(new Error(`inspector: ${method}: ${m.error.message}`));
        else resolve(m.result as T);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  heapUsage(): Promise<HeapUsage> {
    return this.send<HeapUsage>("Runtime.getHeapUsage");
  }

  /** Byte sizes of every live WebAssembly.Memory in the isolate (ORT's heap, codec heaps), largest first. */
  async wasmMemories(): Promise<number[]> {
    const proto = await this.send<{ result: { objectId: string } }>("Runtime.evaluate", {
      expression: "WebAssembly.Memory.prototype",
      contextId: this.contextId,
    });
    const found = await this.send<{ objects: { objectId: string } }>("Runtime.queryObjects", {
      prototypeObjectId: proto.result.objectId,
    });
    const sizes = await this.send<{ result: { value: number[] } }>("Runtime.callFunctionOn", {
      objectId: found.objects.objectId,
      functionDeclaration: "function () { return this.map((m) => m.buffer.byteLength); }",
      returnByValue: true,
    });
    await this.send("Runtime.releaseObjectGroup", { objectGroup: "" }).catch(() => undefined);
    return [...sizes.result.value].sort((a, b) => b - a);
  }

  close(): void {
    this.ws.close();
  }
}
