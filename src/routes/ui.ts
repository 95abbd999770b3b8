import { Hono } from "hono";
import { PAGE_HTML, PAGE_SCRIPT, PAGE_STYLE } from "../ui/page";

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Response headers for the page, computed once per isolate. The CSP allows
 * exactly the inline script and stylesheet by hash (no 'unsafe-inline'), and
 * lets the page talk only to this origin: labels or error messages that
 * somehow contained markup could not run anything. Images may come from
 * anywhere because the URL mode previews the remote image itself.
 */
let pageHeaders: Promise<Record<string, string>> | undefined;
function headers(): Promise<Record<string, string>> {
  pageHeaders ??= (async () => {
    const [script, style, page] = await Promise.all([sha256(PAGE_SCRIPT), sha256(PAGE_STYLE), sha256(PAGE_HTML)]);
    return {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": [
        "default-src 'none'",
        `script-src 'sha256-${base64(script)}'`,
        `style-src 'sha256-${base64(style)}'`,
        "img-src 'self' blob: data: http: https:",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
      ].join("; "),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      // Revalidate every time (the page changes with each deploy); the ETag makes that a 304.
      "cache-control": "no-cache",
      etag: `"${hex(page).slice(0, 32)}"`,
    };
  })();
  return pageHeaders;
}

/** The demo page. Mounted at "/" in app.ts; everything it does goes through the public API. */
export const uiRoutes = new Hono<{ Bindings: Env }>().get("/", async (c) => {
  const h = await headers();
  const etag = h.etag ?? "";
  if (c.req.header("if-none-match") === etag) return c.body(null, 304, { etag, "cache-control": "no-cache" });
  return c.body(PAGE_HTML, 200, h);
});
