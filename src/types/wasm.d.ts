// wrangler's default module rules turn `*.wasm` imports into a WebAssembly.Module
// compiled at upload time (workerd forbids compiling wasm from bytes at runtime).
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
