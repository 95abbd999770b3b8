/**
 * scripts/ort-wasm-unshared.mjs: the worker's copy of onnxruntime-web's wasm
 * binary, identical but for its memory import, which must link against a
 * non-shared memory (and no longer against a shared one). That the worker runs
 * it, passes ORT's self-test and gives the reference results is checked in
 * workerd (test/workerd/api.test.ts, parity.test.ts).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../scripts/model-files";
import { memoryImportFlags, OUTPUT, SOURCE, SOURCE_SHA256, unshare } from "../../scripts/ort-wasm-unshared.mjs";

const stock = new Uint8Array(readFileSync(SOURCE));

/** Instantiates `bytes` with every function import stubbed and `memory` as its memory. */
async function link(bytes: Uint8Array, memory: WebAssembly.Memory): Promise<void> {
  // (The test tsconfig carries the Workers types, where Module cannot be constructed; Node's can.)
  const { Module } = WebAssembly as unknown as { Module: new (b: Uint8Array) => WebAssembly.Module };
  const module = new Module(bytes);
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const i of WebAssembly.Module.imports(module)) {
    imports[i.module] ??= {};
    (imports[i.module] as Record<string, WebAssembly.ImportValue>)[i.name] = i.kind === "memory" ? memory : () => 0;
  }
  await WebAssembly.instantiate(module, imports);
}

const memory = (shared: boolean) => new WebAssembly.Memory({ initial: 256, maximum: 65536, shared });

describe("the worker's onnxruntime-web binary (scripts/ort-wasm-unshared.mjs)", () => {
  it("is the pinned binary with exactly one byte changed: the memory import's limits flags, shared off", () => {
    expect(sha256Hex(stock)).toBe(SOURCE_SHA256);
    const [before] = memoryImportFlags(stock);
    expect(memoryImportFlags(stock)).toHaveLength(1);
    expect(before?.flags).toBe(0x03); // has maximum + shared
    const patched = unshare(stock);
    expect(patched.length).toBe(stock.length);
    const differing: number[] = [];
    for (let i = 0; i < stock.length; i++) if (patched[i] !== stock[i]) differing.push(i);
    expect(differing).toEqual([before?.offset]);
    expect(memoryImportFlags(patched)).toEqual([{ offset: before?.offset, flags: 0x01 }]);
  });

  it("is what postinstall wrote to build/ort, the file the worker imports", () => {
    expect(sha256Hex(new Uint8Array(readFileSync(OUTPUT)))).toBe(sha256Hex(unshare(stock)));
  });

  it("links against a non-shared memory and no longer against a shared one (the stock binary: the reverse)", async () => {
    const patched = unshare(stock);
    await expect(link(patched, memory(false))).resolves.toBeUndefined();
    await expect(link(patched, memory(true))).rejects.toMatchObject({ name: "LinkError" });
    await expect(link(stock, memory(true))).resolves.toBeUndefined();
    await expect(link(stock, memory(false))).rejects.toMatchObject({ name: "LinkError" });
  });

  it("refuses any other binary, e.g. after an onnxruntime-web upgrade, instead of patching it unchecked", () => {
    const other = new Uint8Array(stock);
    other[other.length - 1] = (other[other.length - 1] ?? 0) ^ 1;
    expect(() => unshare(other)).toThrow(/sha256 [0-9a-f]{64}, expected 3398c10d/);
  });
});
