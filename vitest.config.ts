import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { outboundService, referenceService } from "./test/reference/service";

export default defineConfig({
  test: {
    projects: [
      {
        // Pure stages (decode, preprocess, postprocess) and reference parity, in plain Node.
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The demo page in Debian's chromium (playwright-core) against a real `wrangler dev` on
        // port 8814, started and seeded by the global setup.
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/browser/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        // The worker itself, inside workerd, with real local R2 and KV. Each file
        // pays ~15 s to import ORT's 14 MB wasm, so keep these files few and full.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // Node-side helper reachable from tests as env.REFERENCE: serves the
              // repo's model and fixture files (to seed the real local R2) and the
              // independent onnxruntime-node reference results.
              serviceBindings: { REFERENCE: referenceService },
              // The worker's own fetch() (URL sources, webhooks) goes to a Node stand-in for the internet.
              outboundService,
              bindings: {
                // Transient-fault retries wait 1 s, 2 s, ... instead of 5 s, 10 s, ...
                JOB_RETRY_BASE_SECONDS: "1",
                // The API_KEY_HASHES secret as a deploy would set it: one valid entry (sha256 of
                // SECRET_LIST_TEST_KEY in test/workerd/access.test.ts) and one malformed entry that must be skipped.
                API_KEY_HASHES: "47c2bec339779a086a404d4efa80fe2d1e60f32dad37d614290abd32b2402e10:standard, not-a-hash",
              },
            },
          }),
        ],
        test: {
          name: "workerd",
          include: ["test/workerd/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
