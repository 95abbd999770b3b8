/**
 * Which URLs the service may fetch on a client's behalf (SSRF policy).
 *
 * Checked here, without any network access: the URL's length and syntax,
 * scheme (http/https), embedded credentials, and the host — IP literals in
 * any non-public range (every spelling the URL parser accepts), `localhost`,
 * single-label names and special-use/private suffixes. A Worker cannot
 * resolve DNS, so a public-looking name that resolves to a private address
 * (e.g. `127.0.0.1.nip.io`, or DNS rebinding) is NOT caught here; callers
 * that can resolve (Node tools, tests) may pass `resolveHost` and every
 * address it returns goes through the same range checks. See the README's
 * "Security model — URL fetching" for what that leaves open and why.
 */
import { ApiError, type ErrorCode } from "../errors";
import { LIMITS } from "../limits";
import { type AddressVerdict, classifyIpv4, classifyIpv6, parseIpv4, parseIpv6 } from "./ip";

/**
 * An ApiError from fetching a URL. `transient` marks faults worth retrying
 * (origin 5xx/429, network error, timeout); a job item hit by one is retried,
 * a refusal fails it for good.
 */
export class UrlFetchError extends ApiError {
  override name = "UrlFetchError";
  constructor(
    code: ErrorCode,
    message: string,
    readonly transient = false,
  ) {
    super(code, message);
  }
}

export interface UrlPolicyOptions {
  maxUrlLength?: number;
  /**
   * Resolves a host name to IP addresses. Workers have no DNS API, so the
   * worker passes nothing; Node callers and tests may pass one.
   */
  resolveHost?: (host: string) => Promise<readonly string[]>;
}

/** Names that only ever mean something inside a private network (RFC 6761, 6762, 8375, ICANN .internal). */
const PRIVATE_SUFFIXES = [
  "localhost",
  "local",
  "localdomain",
  "internal",
  "intranet",
  "private",
  "corp",
  "home",
  "lan",
  "arpa", // in-addr.arpa, ip6.arpa, home.arpa
  "onion",
];

/** Shortens a URL for an error message (it is client-supplied; never echo 2 KB back). */
export function shortUrl(url: string): string {
  const clean = url.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}

const refuse = (code: ErrorCode, message: string): UrlFetchError => new UrlFetchError(code, message);

/**
 * Parses and checks `raw`; returns the URL to fetch or throws a UrlFetchError
 * (400 url_invalid / url_too_long / url_scheme_not_allowed /
 * url_credentials_not_allowed, 403 url_host_not_allowed). `what` names the
 * URL in messages ("URL", "redirect target #2").
 */
export async function checkFetchUrl(raw: string, opts: UrlPolicyOptions = {}, what = "URL"): Promise<URL> {
  const url = checkFetchUrlSync(raw, opts, what);
  const host = hostOf(url);
  if (opts.resolveHost && !isIpLiteral(host)) {
    let addresses: readonly string[];
    try {
      addresses = await opts.resolveHost(host);
    } catch (e) {
      throw new UrlFetchError(
        "source_fetch_failed",
        `${what} host ${host} could not be resolved: ${e instanceof Error ? e.message : String(e)}`,
        true,
      );
    }
    for (const address of addresses) {
      const v = checkAddress(address);
      if (v) throw refuse("url_host_not_allowed", `${what} host ${host} resolves to ${address}, ${v}`);
    }
  }
  return url;
}

/** The synchronous part of `checkFetchUrl`: everything but name resolution. */
export function checkFetchUrlSync(raw: string, opts: UrlPolicyOptions = {}, what = "URL"): URL {
  const url = checkUrlSyntax(raw, opts, what);
  const host = hostOf(url);
  const verdict = checkHostName(host);
  if (verdict) throw refuse("url_host_not_allowed", `${what} host ${host} is not allowed: ${verdict}`);
  return url;
}

function checkUrlSyntax(raw: string, opts: UrlPolicyOptions, what: string): URL {
  const max = opts.maxUrlLength ?? LIMITS.maxUrlLength;
  if (typeof raw !== "string" || raw.length === 0) throw refuse("url_invalid", `${what} is empty`);
  if (raw.length > max) throw refuse("url_too_long", `${what} is ${raw.length} characters; the limit is ${max}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse("url_invalid", `${what} "${shortUrl(raw)}" is not a valid absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw refuse(
      "url_scheme_not_allowed",
      `${what} scheme "${url.protocol.replace(/:$/, "").slice(0, 20)}" is not allowed: only http and https URLs are fetched`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw refuse(
      "url_credentials_not_allowed",
      `${what} must not carry credentials (user:password@); use a URL that needs no login`,
    );
  }
  if (url.href.length > max) {
    throw refuse("url_too_long", `${what} is ${url.href.length} characters once normalised; the limit is ${max}`);
  }
  return url;
}

/** Lower-case host name without trailing dots (IPv6 keeps its brackets). */
function hostOf(url: URL): string {
  return url.hostname.toLowerCase().replace(/\.+$/, "");
}

const isIpLiteral = (host: string): boolean => host.startsWith("[") || parseIpv4(host) !== undefined;

/** Returns why `host` (a URL hostname) may not be fetched, or undefined if it may. */
export function checkHostName(host: string): AddressVerdict {
  const h = host.toLowerCase().replace(/\.+$/, "");
  if (h === "") return "empty host";
  if (h.startsWith("[")) {
    if (!h.endsWith("]")) return "malformed IPv6 literal";
    const groups = parseIpv6(h.slice(1, -1));
    if (!groups) return "malformed IPv6 literal";
    return classifyIpv6(groups);
  }
  const v4 = parseIpv4(h);
  if (v4 !== undefined) {
    if (!Number.isFinite(v4)) return "IPv4 literal out of range";
    return classifyIpv4(v4);
  }
  const labels = h.split(".");
  const tld = labels[labels.length - 1] ?? "";
  if (labels.length === 1) return "single-label host names only resolve inside private networks";
  if (PRIVATE_SUFFIXES.includes(tld)) return `.${tld} names are private or special-use`;
  // A numeric final label (e.g. "1.2.3.4.5") is neither a domain nor an address.
  if (/^(0x[0-9a-f]*|\d+)$/.test(tld)) return "host is neither a domain name nor a valid IP address";
  return undefined;
}

/** Classifies a bare IP address string (as a resolver returns it). */
export function checkAddress(address: string): AddressVerdict {
  const a = address.trim().toLowerCase();
  if (a.includes(":")) {
    const groups = parseIpv6(a.replace(/^\[|\]$/g, ""));
    return groups ? classifyIpv6(groups) : "unparseable IPv6 address";
  }
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(a) ? parseIpv4(a) : undefined;
  if (v4 === undefined || !Number.isFinite(v4)) return "unparseable IPv4 address";
  return classifyIpv4(v4);
}
