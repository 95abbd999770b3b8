import { LIMITS } from "../limits";
import { checkFetchUrlSync } from "../security/url-policy";
import { toHex } from "../util/hash";

/**
 * Completion webhooks. The body is the job summary; the signature covers the
 * timestamp and the exact body bytes, so a receiver can reject replays:
 *
 *   X-Edgetag-Timestamp: <unix seconds>
 *   X-Edgetag-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 */
export async function signWebhook(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${timestamp}.${body}`));
  return `sha256=${toHex(new Uint8Array(mac))}`;
}

/** Verifies a signature in constant time (for receivers written in TS, and for our tests). */
export async function verifyWebhook(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
): Promise<boolean> {
  const expected = new TextEncoder().encode(await signWebhook(secret, Number(timestamp), body));
  const given = new TextEncoder().encode(signature);
  if (expected.byteLength !== given.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < expected.byteLength; i++) diff |= (expected[i] as number) ^ (given[i] as number);
  return diff === 0;
}

export async function deliverWebhook(
  hook: { url: string; secret: string },
  summary: unknown,
): Promise<{ ok: true } | { ok: false; error: string }> {
  const body = JSON.stringify({ event: "job.finished", job: summary });
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    // Same SSRF policy as image URLs (no private, loopback or metadata hosts); redirects are not followed.
    checkFetchUrlSync(hook.url, {}, "webhook URL");
    const res = await fetch(hook.url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "user-agent": "edgetag-webhook/1",
        "x-edgetag-timestamp": String(timestamp),
        "x-edgetag-signature": await signWebhook(hook.secret, timestamp, body),
      },
      signal: AbortSignal.timeout(LIMITS.webhook.timeoutMs),
      redirect: "manual",
    });
    // Drain so the connection can be reused.
    await res.body?.cancel();
    return res.ok ? { ok: true } : { ok: false, error: `HTTP ${res.status}` };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}
