/**
 * SSRF-safe image fetching (src/security/*), in two halves:
 *  - the policy, as pure functions: every spelling of a private address and
 *    every special name is refused, public ones pass;
 *  - the transport against a real HTTP server on 127.0.0.1. The policy refuses
 *    loopback (as it must), so these tests inject a transport that carries
 *    requests for `*.fixture.example` to the local server. Redirect targets the
 *    server names are re-checked by the real policy, so a redirect to
 *    127.0.0.1 is refused exactly as in production. The injection is a code
 *    parameter; nothing in env or config can set it.
 *
 * Run: npx vitest run --project node test/node/safe-fetch.test.ts
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../src/errors";
import { parseIpv4, parseIpv6 } from "../../src/security/ip";
import { type FetchLike, safeFetchImage, UrlFetchError } from "../../src/security/safe-fetch";
import { checkAddress, checkFetchUrl, checkHostName } from "../../src/security/url-policy";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const JPEG = new Uint8Array(readFileSync(`${FIXTURES}images/jpeg_baseline_420.jpg`));
const PNG = new Uint8Array(readFileSync(`${FIXTURES}images/png_rgb8.png`));
const PDF = new Uint8Array(readFileSync(`${FIXTURES}bad/document.pdf`));

async function refusal(p: Promise<unknown>): Promise<UrlFetchError> {
  const outcome = await p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  if (outcome.ok) throw new Error(`expected a refusal, got ${JSON.stringify(outcome.v).slice(0, 200)}`);
  expect(outcome.e).toBeInstanceOf(UrlFetchError);
  const e = outcome.e as UrlFetchError;
  expect(e.status).toBe(ERROR_STATUS[e.code]);
  expect(e.status).toBeGreaterThanOrEqual(400);
  expect(e.status).toBeLessThan(500);
  expect(e.message.length).toBeGreaterThan(10);
  return e;
}

describe("IP literal parsing", () => {
  it("reads every IPv4 number form the URL standard accepts", () => {
    const loop = 0x7f000001;
    for (const s of [
      "127.0.0.1",
      "2130706433",
      "0x7f000001",
      "0x7f.1",
      "0177.0.0.1",
      "127.1",
      "127.0.1",
      "017700000001",
    ])
      expect(parseIpv4(s), s).toBe(loop);
    expect(parseIpv4("0x00000000007f.1")).toBe(loop);
    expect(parseIpv4("1.2.3.4.")).toBe(0x01020304);
    expect(parseIpv4("0")).toBe(0);
    for (const s of ["256.1.1.1", "1.2.3.256", "1.2.65536", "example.com", "1.2.3.4.5", "0x7g.1", "08.1.1.1", ""])
      expect(parseIpv4(s), s).toBeUndefined();
    expect(parseIpv4("4294967296")).toBeUndefined();
  });

  it("reads IPv6 with compression and embedded IPv4", () => {
    expect(parseIpv6("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6("::ffff:127.0.0.1")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]);
    expect(parseIpv6("2001:db8::8:800:200c:417a")).toEqual([0x2001, 0xdb8, 0, 0, 8, 0x800, 0x200c, 0x417a]);
    expect(parseIpv6("1:2:3:4:5:6:7:8")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const s of ["1:2:3:4:5:6:7", "1::2::3", "12345::", "::ffff:1.2.3", "fe80::1%eth0", ":::"])
      expect(parseIpv6(s), s).toBeUndefined();
  });
});

describe("URL policy", () => {
  const refusedHosts = [
    // loopback, every spelling
    "http://127.0.0.1/",
    "http://127.8.9.10/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.0.1./",
    "http://127\u30020\u30020\u30021/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    // unspecified / this network
    "http://0/",
    "http://0.0.0.0/",
    "http://[::]/",
    // private, CGNAT, link-local (metadata), multicast, reserved
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://100.127.255.255/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    // IPv6 ranges and IPv4 embedded in IPv6
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[2001:db8::1]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[2002:c0a8:0101::1]/",
    "http://[2001:0:4136:e378::1]/",
    "http://[100::1]/",
    // names
    "http://localhost/",
    "http://LOCALHOST./",
    "http://localhost:8787/",
    "http://api.localhost/",
    "http://%6c%6f%63%61%6c%68%6f%73%74/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/",
    "http://nas.home.arpa/",
    "http://1.0.0.127.in-addr.arpa/",
    "http://router.lan/",
    "http://intranet/",
    "http://metadata/",
  ];

  it.each(refusedHosts)("refuses %s with 403 url_host_not_allowed", async (url) => {
    const e = await refusal(checkFetchUrl(url));
    expect(e.code).toBe("url_host_not_allowed");
    expect(e.status).toBe(403);
  });

  it("allows public addresses and names, right at the edges of the blocked ranges", async () => {
    for (const url of [
      "https://example.com/cat.jpg",
      "http://images.test/a.jpg",
      "http://example.com.:8080/x?y=1#z",
      "http://1.1.1.1/",
      "http://8.8.8.8/",
      "http://172.15.255.255/",
      "http://172.32.0.0/",
      "http://100.63.255.255/",
      "http://100.128.0.0/",
      "http://11.0.0.0/",
      "http://126.255.255.255/",
      "http://128.0.0.0/",
      "http://169.253.255.255/",
      "http://192.169.0.0/",
      "http://223.255.255.255/",
      "http://[2606:4700:4700::1111]/",
      "http://[::ffff:8.8.8.8]/",
      "http://[64:ff9b::8.8.8.8]/",
      "http://[2002:0808:0808::1]/",
    ]) {
      await expect(checkFetchUrl(url), url).resolves.toBeInstanceOf(URL);
    }
  });

  it("refuses other schemes, credentials, over-long and malformed URLs with specific 400s", async () => {
    for (const url of [
      "ftp://example.com/a.jpg",
      "file:///etc/passwd",
      "data:image/png;base64,iVBORw0KGgo=",
      "javascript:alert(1)",
      "gopher://example.com/",
      "ws://example.com/",
    ]) {
      expect((await refusal(checkFetchUrl(url))).code, url).toBe("url_scheme_not_allowed");
    }
    for (const url of ["http://user:pw@example.com/a.jpg", "https://user@example.com/", "http://:pw@example.com/"]) {
      const e = await refusal(checkFetchUrl(url));
      expect(e.code, url).toBe("url_credentials_not_allowed");
      expect(e.message).not.toContain("pw"); // never echo the secret back
    }
    const long = `https://example.com/${"a".repeat(2100)}`;
    expect((await refusal(checkFetchUrl(long))).code).toBe("url_too_long");
    for (const url of ["not a url", "/relative/path.jpg", "http://", "http://exa mple.com/", "http://[::1/"]) {
      expect((await refusal(checkFetchUrl(url))).code, url).toBe("url_invalid");
    }
    expect((await refusal(checkFetchUrl(""))).code).toBe("url_invalid");
  });

  it("checks resolved addresses when a resolver is available", async () => {
    const resolveTo = (addrs: string[]) => ({ resolveHost: async () => addrs });
    const e = await refusal(checkFetchUrl("https://rebind.example.com/", resolveTo(["93.184.216.34", "10.0.0.7"])));
    expect(e.code).toBe("url_host_not_allowed");
    expect(e.message).toContain("10.0.0.7");
    await expect(
      checkFetchUrl("https://ok.example.com/", resolveTo(["93.184.216.34", "2606:4700::1"])),
    ).resolves.toBeInstanceOf(URL);
    expect((await refusal(checkFetchUrl("https://x.example.com/", resolveTo(["::ffff:192.168.0.1"])))).code).toBe(
      "url_host_not_allowed",
    );
  });

  it("classifies bare addresses and host names consistently", () => {
    expect(checkAddress("127.0.0.1")).toMatch(/loopback/);
    expect(checkAddress("fe80::abcd")).toMatch(/link-local/);
    expect(checkAddress("8.8.4.4")).toBeUndefined();
    expect(checkAddress("not-an-ip")).toMatch(/unparseable/);
    expect(checkHostName("1.2.3.4.5")).toMatch(/neither/);
    expect(checkHostName("example.com")).toBeUndefined();
  });
});

// ------------------------------------------------------------ transport ----

type Route = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let port = 0;
const hits: string[] = [];
const routes = new Map<string, Route>();

/** Requests for *.fixture.example go to the local server; the Host header keeps the name for the routes. */
const toLocal: FetchLike = (url, init) => {
  const u = new URL(url);
  if (!u.hostname.endsWith(".fixture.example")) throw new TypeError(`test transport: no route to ${u.hostname}`);
  const headers = new Headers(init.headers);
  headers.set("x-fixture-host", u.hostname);
  return fetch(`http://127.0.0.1:${port}${u.pathname}${u.search}`, { ...init, headers });
};

function send(body: Uint8Array | string, headers: Record<string, string> = {}, status = 200): Route {
  return (_req, res) => {
    res.writeHead(status, headers);
    res.end(body);
  };
}

beforeAll(async () => {
  const redirect =
    (to: string, status = 302): Route =>
    (_req, res) => {
      res.writeHead(status, { location: to });
      res.end();
    };
  routes.set("/cat.jpg", send(JPEG, { "content-type": "image/jpeg" }));
  routes.set("/no-type.png", send(PNG));
  routes.set("/octet.png", send(PNG, { "content-type": "application/octet-stream" }));
  routes.set("/html-type.jpg", send(JPEG, { "content-type": "text/html; charset=utf-8" }));
  routes.set("/html-bytes.jpg", send("<!doctype html><html><body>hi</body></html>", { "content-type": "image/jpeg" }));
  routes.set("/pdf-bytes.png", send(PDF, { "content-type": "image/png" }));
  routes.set("/empty.jpg", send(new Uint8Array(0), { "content-type": "image/jpeg" }));
  routes.set("/r1", redirect("http://b.fixture.example/r2", 301));
  routes.set("/r2", redirect("/r3", 307)); // relative Location
  routes.set("/r3", redirect("http://c.fixture.example/cat.jpg", 308));
  routes.set("/to-loopback", redirect(`http://127.0.0.1:${0}/secret`));
  routes.set("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/iam/"));
  routes.set("/to-localhost", redirect("http://localhost/secret"));
  routes.set("/to-ftp", redirect("ftp://a.fixture.example/cat.jpg"));
  routes.set("/to-creds", redirect("http://admin:hunter2@a.fixture.example/cat.jpg"));
  routes.set("/no-location", (_req, res) => {
    res.writeHead(302);
    res.end();
  });
  routes.set("/bad-location", redirect("http://[zz::1]/"));
  routes.set("/loop", redirect("/loop"));
  routes.set("/missing.jpg", send("not found", { "content-type": "text/plain" }, 404));
  routes.set("/down.jpg", send("down", {}, 503));
  routes.set("/slow-down.jpg", send("slow down", { "retry-after": "5" }, 429));
  routes.set("/multiple", send("choose", {}, 300));
  routes.set("/big-declared.jpg", send(JPEG, { "content-type": "image/jpeg" })); // Content-Length > maxBytes
  routes.set("/big-chunked.jpg", (_req, res) => {
    res.writeHead(200, { "content-type": "image/jpeg" }); // no Content-Length: chunked
    res.write(JPEG.subarray(0, 4000));
    res.end(JPEG.subarray(4000));
  });
  routes.set("/stall-headers", () => undefined); // never answers
  routes.set("/stall-body", (_req, res) => {
    res.writeHead(200, { "content-type": "image/jpeg" });
    res.write(JPEG.subarray(0, 100)); // then nothing, forever
  });
  routes.set("/secret", send("internal", { "content-type": "image/jpeg" }));

  server = createServer((req, res) => {
    hits.push(`${req.headers["x-fixture-host"] ?? req.headers.host}${req.url}`);
    const route = routes.get((req.url ?? "").split("?")[0] ?? "");
    if (route) route(req, res);
    else send("no route", {}, 404)(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  routes.set("/to-loopback", redirect(`http://127.0.0.1:${port}/secret`));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const get = (path: string, opts: Parameters<typeof safeFetchImage>[1] = {}) =>
  safeFetchImage(`http://a.fixture.example${path}`, { fetch: toLocal, ...opts });

describe("safeFetchImage against a real HTTP server", () => {
  it("fetches an image and reports its format from the bytes", async () => {
    const got = await get("/cat.jpg");
    expect(got.bytes).toEqual(JPEG);
    expect(got.info).toMatchObject({ format: "jpeg", width: 320, height: 240 });
    expect(got.redirects).toBe(0);
    expect(got.contentType).toBe("image/jpeg");
  });

  it("accepts application/octet-stream and a missing Content-Type (the bytes decide)", async () => {
    expect((await get("/octet.png")).info.format).toBe("png");
    expect((await get("/no-type.png")).info.format).toBe("png");
  });

  it("refuses a non-image Content-Type with 415 source_not_image", async () => {
    const e = await refusal(get("/html-type.jpg"));
    expect(e.code).toBe("source_not_image");
    expect(e.message).toContain("text/html");
  });

  it("refuses non-image bytes under an image Content-Type by magic bytes", async () => {
    expect((await refusal(get("/html-bytes.jpg"))).code).toBe("unsupported_media_type");
    const pdf = await refusal(get("/pdf-bytes.png"));
    expect(pdf.code).toBe("unsupported_media_type");
    expect(pdf.message).toContain("PDF");
    expect((await refusal(get("/empty.jpg"))).code).toBe("unsupported_media_type");
  });

  it("follows redirects by hand (absolute, relative, 301/307/308), re-checking every hop", async () => {
    const got = await get("/r1");
    expect(got.redirects).toBe(3);
    expect(got.url).toBe("http://c.fixture.example/cat.jpg");
    expect(got.bytes).toEqual(JPEG);
  });

  it("refuses a redirect into loopback, metadata or localhost, without requesting it", async () => {
    for (const path of ["/to-loopback", "/to-metadata", "/to-localhost"]) {
      hits.length = 0;
      const e = await refusal(get(path));
      expect(e.code, path).toBe("url_host_not_allowed");
      expect(e.status).toBe(403);
      expect(e.message, path).toContain("redirect target #1");
      expect(hits, path).toEqual([`a.fixture.example${path}`]); // the forbidden target was never requested
    }
  });

  it("refuses redirects to other schemes or with credentials, and broken redirects", async () => {
    expect((await refusal(get("/to-ftp"))).code).toBe("url_scheme_not_allowed");
    const creds = await refusal(get("/to-creds"));
    expect(creds.code).toBe("url_credentials_not_allowed");
    expect(creds.message).not.toContain("hunter2");
    expect((await refusal(get("/no-location"))).code).toBe("source_bad_redirect");
    expect((await refusal(get("/bad-location"))).code).toBe("source_bad_redirect");
  });

  it("stops a redirect loop at the limit", async () => {
    hits.length = 0;
    const e = await refusal(get("/loop", { maxRedirects: 4 }));
    expect(e.code).toBe("source_too_many_redirects");
    expect(e.transient).toBe(false);
    expect(hits).toHaveLength(5); // the first request + 4 followed redirects
  });

  it("maps origin errors: 4xx permanent, 5xx and 429 transient", async () => {
    const missing = await refusal(get("/missing.jpg"));
    expect(missing).toMatchObject({ code: "source_fetch_failed", transient: false });
    expect(missing.message).toContain("404");
    expect(await refusal(get("/down.jpg"))).toMatchObject({ code: "source_fetch_failed", transient: true });
    expect(await refusal(get("/slow-down.jpg"))).toMatchObject({ code: "source_fetch_failed", transient: true });
    expect(await refusal(get("/multiple"))).toMatchObject({ code: "source_fetch_failed", transient: false });
  });

  it("caps the body by Content-Length and while streaming", async () => {
    const declared = await refusal(get("/big-declared.jpg", { maxBytes: 5000 }));
    expect(declared.code).toBe("payload_too_large");
    expect(declared.status).toBe(413);
    expect((await refusal(get("/big-chunked.jpg", { maxBytes: 5000 }))).code).toBe("payload_too_large");
    // The same file under a cap it fits is fine.
    expect((await get("/big-chunked.jpg", { maxBytes: JPEG.length })).bytes).toEqual(JPEG);
  });

  it("times out as a whole: before the headers and in the middle of the body", async () => {
    for (const path of ["/stall-headers", "/stall-body"]) {
      const e = await refusal(get(path, { timeoutMs: 300 }));
      expect(e.code, path).toBe("source_timeout");
      expect(e.transient, path).toBe(true);
    }
  });

  it("reports a connection failure as a transient source_fetch_failed", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const e = await refusal(
      safeFetchImage("http://a.fixture.example/cat.jpg", {
        fetch: (_url, init) => fetch(`http://127.0.0.1:${deadPort}/cat.jpg`, init),
      }),
    );
    expect(e).toMatchObject({ code: "source_fetch_failed", transient: true });
  });

  it("gives up when the caller aborts", async () => {
    const controller = new AbortController();
    const pending = get("/stall-headers", { signal: controller.signal });
    controller.abort(new Error("client went away"));
    await expect(pending).rejects.toThrow("client went away");
  });

  it("with the default transport, never connects to a loopback server at all", async () => {
    hits.length = 0;
    const e = await refusal(safeFetchImage(`http://127.0.0.1:${port}/cat.jpg`));
    expect(e.code).toBe("url_host_not_allowed");
    expect(hits).toEqual([]);
  });
});
