// Secrets are not declared in wrangler.toml, so `wrangler types` cannot see them.
declare namespace Cloudflare {
  interface Env {
    /**
     * Optional secret (`wrangler secret put API_KEY_HASHES`): API keys given as
     * comma-separated `<sha256 hex>[:<tier>]` entries. They need no KV read, so
     * they keep working when KV does not; revoking one means redeploying the secret.
     */
    API_KEY_HASHES?: string;
  }
}
