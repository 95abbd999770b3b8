// Types for scripts/ort-wasm-unshared.mjs (plain JS: it runs on postinstall, before any TypeScript tooling).
export const SOURCE: string;
export const OUTPUT: string;
export const SOURCE_SHA256: string;
export function memoryImportFlags(bytes: Uint8Array): { offset: number; flags: number }[];
export function unshare(source: Uint8Array): Uint8Array;
