#!/usr/bin/env node
/**
 * Writes build/ort/ort-wasm-simd-threaded.unshared.wasm: onnxruntime-web's
 * SIMD wasm binary with one byte changed, so that its imported memory is an
 * ordinary (non-shared) WebAssembly.Memory. The worker runs this file (see
 * src/inference/ort.ts for the other half: the glue is handed a non-shared
 * memory to match).
 *
 * Why: workerd does not enable V8's wasm trap handler, so V8 compiles every
 * wasm memory access with an explicit bounds check (Node enables it and
 * checks nothing). With a *shared* memory the bound can change under a running
 * loop (another thread may grow it), so V8 also reloads the memory size from
 * the instance on every loop iteration; with a non-shared memory only a call
 * can grow it, and the reload leaves the loop (the checks stay). ORT's int8 GEMM inner loop,
 * where DenseNet-121 spends most of its time, went from 131 to 113 ms per run
 * in workerd with this change (Node: ~100 ms), with bit-identical outputs. The
 * worker never starts a second wasm thread (numThreads = 1), so nothing needs
 * the memory to be shared.
 *
 * The change is the flags byte of the memory import's limits: 0x03 (has
 * maximum, shared) becomes 0x01 (has maximum). The input must be the exact
 * binary of the pinned onnxruntime-web (its sha256 is checked), so an upgrade
 * fails here loudly instead of shipping an unchecked patch. Idempotent; runs
 * on `npm install` / `npm ci` (postinstall) and before wrangler bundles
 * (wrangler.toml [build]).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SOURCE = join(root, "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm");
export const OUTPUT = join(root, "build/ort/ort-wasm-simd-threaded.unshared.wasm");
/** sha256 of onnxruntime-web 1.30.0's dist/ort-wasm-simd-threaded.wasm (package.json pins that version). */
export const SOURCE_SHA256 = "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/**
 * The offset of every memory import's limits flags byte, with its value.
 * Walks the module's sections and the import section's entries (wasm binary
 * format, section 2; limits flags: bit 0 = has maximum, bit 1 = shared).
 */
export function memoryImportFlags(bytes) {
  let p = 8; // magic + version
  const u32 = () => {
    let result = 0;
    let shift = 0;
    let byte;
    do {
      byte = bytes[p++];
      result |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return result >>> 0;
  };
  const found = [];
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u32();
    const end = p + size;
    if (id === 2) {
      const count = u32();
      for (let i = 0; i < count; i++) {
        // (Not `p += u32()`: that reads p before u32() moves it past the length.)
        const moduleName = u32();
        p += moduleName;
        const fieldName = u32();
        p += fieldName;
        const kind = bytes[p++];
        if (kind === 0)
          u32(); // function: type index
        else if (kind === 1) {
          p++; // table: reference type
          if (bytes[p++] & 1) u32();
          u32();
        } else if (kind === 2) {
          const at = p;
          const flags = bytes[p++];
          u32();
          if (flags & 1) u32();
          found.push({ offset: at, flags });
        } else if (kind === 3)
          p += 2; // global: value type, mutability
        else if (kind === 4) {
          p++; // tag: attribute
          u32();
        } else throw new Error(`unknown import kind ${kind}`);
      }
      if (p !== end) throw new Error("import section did not parse to its end");
    }
    p = end;
  }
  return found;
}

/** The patched binary for the given source bytes (throws if they are not the expected binary). */
export function unshare(source) {
  const got = sha256(source);
  if (got !== SOURCE_SHA256) {
    throw new Error(
      `onnxruntime-web's ort-wasm-simd-threaded.wasm has sha256 ${got}, expected ${SOURCE_SHA256} (1.30.0). ` +
        "After upgrading onnxruntime-web, re-check this patch (scripts/ort-wasm-unshared.mjs) and update SOURCE_SHA256.",
    );
  }
  const imports = memoryImportFlags(source);
  if (imports.length !== 1 || imports[0].flags !== 0x03) {
    throw new Error(`expected one shared memory import with a maximum (flags 0x03), found ${JSON.stringify(imports)}`);
  }
  const out = new Uint8Array(source);
  out[imports[0].offset] = 0x01;
  if (!WebAssembly.validate(out)) throw new Error("the patched binary does not validate");
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const source = readFileSync(SOURCE);
  const patched = unshare(source);
  const want = sha256(patched);
  if (existsSync(OUTPUT) && sha256(readFileSync(OUTPUT)) === want) process.exit(0);
  mkdirSync(dirname(OUTPUT), { recursive: true });
  writeFileSync(OUTPUT, patched);
  console.log(`ort-wasm-unshared: wrote ${OUTPUT.slice(root.length + 1)} (sha256 ${want})`);
}
