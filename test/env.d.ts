declare namespace Cloudflare {
  interface Env {
    /** Test-only Node helper (vitest.config.ts): repo files and reference results. */
    REFERENCE: Fetcher;
  }
}
