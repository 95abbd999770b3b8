/**
 * IP literal parsing and classification for the URL fetch policy.
 *
 * The WHATWG URL parser (workerd and Node both use ada) already turns every
 * IPv4 spelling — `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`, full-width
 * digits — into dotted decimal, and IPv6 into its compressed hex form. We
 * still parse the number forms ourselves so the policy does not depend on the
 * runtime's URL serialisation being exactly that.
 *
 * Policy: only globally routable unicast addresses may be fetched. Rather than
 * listing what is private, IPv6 outside 2000::/3 is refused wholesale, and the
 * IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are
 * judged by that IPv4 address.
 */

/** Why an address is refused, for the error message; undefined = allowed. */
export type AddressVerdict = string | undefined;

/** [network, prefix length, name] — IANA IPv4 special-purpose registry and friends. */
const V4_BLOCKED: ReadonlyArray<readonly [number, number, string]> = [
  [v4(0, 0, 0, 0), 8, "'this network' (0.0.0.0/8)"],
  [v4(10, 0, 0, 0), 8, "private (10.0.0.0/8)"],
  [v4(100, 64, 0, 0), 10, "carrier-grade NAT (100.64.0.0/10)"],
  [v4(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"],
  [v4(169, 254, 0, 0), 16, "link-local (169.254.0.0/16, includes cloud metadata endpoints)"],
  [v4(172, 16, 0, 0), 12, "private (172.16.0.0/12)"],
  [v4(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"],
  [v4(192, 0, 2, 0), 24, "documentation (192.0.2.0/24)"],
  [v4(192, 88, 99, 0), 24, "6to4 relay anycast (192.88.99.0/24)"],
  [v4(192, 168, 0, 0), 16, "private (192.168.0.0/16)"],
  [v4(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"],
  [v4(198, 51, 100, 0), 24, "documentation (198.51.100.0/24)"],
  [v4(203, 0, 113, 0), 24, "documentation (203.0.113.0/24)"],
  [v4(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"],
  [v4(240, 0, 0, 0), 4, "reserved (240.0.0.0/4, includes broadcast)"],
];

function v4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function classifyIpv4(addr: number): AddressVerdict {
  for (const [net, len, name] of V4_BLOCKED) {
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    if ((addr & mask) >>> 0 === net) return name;
  }
  return undefined;
}

export function formatIpv4(addr: number): string {
  return [addr >>> 24, (addr >>> 16) & 255, (addr >>> 8) & 255, addr & 255].join(".");
}

/**
 * The WHATWG IPv4 parser: 1-4 dot-separated parts, each decimal, 0x-hex or
 * 0-prefixed octal; the last part fills the remaining bytes. A trailing dot is
 * allowed. Returns undefined for anything that is not an IPv4 number form (a
 * domain name), or a number > 2^32-1 (which the URL parser rejects anyway).
 */
export function parseIpv4(host: string): number | undefined {
  let parts = host.split(".");
  if (parts.length > 1 && parts[parts.length - 1] === "") parts = parts.slice(0, -1);
  if (parts.length === 0 || parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const part of parts) {
    const n = parseIpv4Number(part);
    if (n === undefined) return undefined;
    nums.push(n);
  }
  const last = nums.pop() as number;
  if (nums.some((n) => n > 255)) return undefined;
  if (last >= 256 ** (4 - nums.length)) return undefined;
  let addr = last;
  nums.forEach((n, i) => {
    addr += n * 256 ** (3 - i);
  });
  return addr;
}

function parseIpv4Number(part: string): number | undefined {
  if (part === "") return undefined;
  let digits = part;
  let radix = 10;
  if (/^0[xX]/.test(part)) {
    digits = part.slice(2);
    radix = 16;
    if (digits === "") return 0; // "0x" alone is zero in WHATWG
  } else if (part.length > 1 && part.startsWith("0")) {
    digits = part.slice(1);
    radix = 8;
  }
  const valid = radix === 16 ? /^[0-9a-fA-F]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return undefined;
  // BigInt: "0x00000000007f" and 30-digit decimals must not lose precision.
  const value = BigInt(radix === 16 ? `0x${digits}` : radix === 8 ? `0o${digits}` : digits);
  return value > 0xffffffffn ? Number.POSITIVE_INFINITY : Number(value);
}

/** Parses an IPv6 literal (no brackets, no zone) into 8 16-bit groups. */
export function parseIpv6(text: string): number[] | undefined {
  if (text.length === 0 || text.length > 64 || text.includes("%")) return undefined;
  let head = text;
  const tail: number[] = [];
  // An embedded dotted IPv4 address supplies the last two groups.
  const lastColon = head.lastIndexOf(":");
  if (head.slice(lastColon + 1).includes(".")) {
    const dotted = head.slice(lastColon + 1);
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(dotted)) return undefined;
    const bytes = dotted.split(".").map(Number);
    if (bytes.some((b) => b > 255)) return undefined;
    const [a, b, c, d] = bytes as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    head = head.slice(0, lastColon + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const group = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const left = group(halves[0] ?? "");
  const right = halves.length === 2 ? group(halves[1] ?? "") : [];
  if (!left || !right) return undefined;
  const given = left.length + right.length + tail.length;
  if (halves.length === 1) return given === 8 ? [...left, ...tail] : undefined;
  if (given > 7) return undefined;
  return [...left, ...new Array<number>(8 - given).fill(0), ...right, ...tail];
}

const embeddedV4 = (g: number[]): number => (((g[6] ?? 0) << 16) | (g[7] ?? 0)) >>> 0;

export function classifyIpv6(g: number[]): AddressVerdict {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, , g7 = 0] = g;
  const zeroTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroTo(8)) return "unspecified (::)";
  if (zeroTo(7) && g7 === 1) return "loopback (::1)";
  const viaV4 = (form: string): AddressVerdict => {
    const inner = classifyIpv4(embeddedV4(g));
    return inner ? `${form} of ${formatIpv4(embeddedV4(g))}, ${inner}` : undefined;
  };
  if (zeroTo(5) && g5 === 0xffff) return viaV4("IPv4-mapped address");
  if (zeroTo(4) && g4 === 0xffff && g5 === 0) return viaV4("IPv4-translated address");
  if (zeroTo(6)) return viaV4("IPv4-compatible address") ?? "deprecated IPv4-compatible address (::/96)";
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return viaV4("NAT64 address");
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return "local-use NAT64 (64:ff9b:1::/48)";
  if (g0 === 0x2002) {
    // 6to4 carries the IPv4 address in groups 1-2.
    const inner = ((g1 << 16) | g2) >>> 0;
    const verdict = classifyIpv4(inner);
    if (verdict) return `6to4 address of ${formatIpv4(inner)}, ${verdict}`;
    return undefined;
  }
  if ((g0 & 0xfe00) === 0xfc00) return "unique local (fc00::/7)";
  if ((g0 & 0xffc0) === 0xfe80) return "link-local (fe80::/10)";
  if ((g0 & 0xffc0) === 0xfec0) return "site-local (fec0::/10)";
  if ((g0 & 0xff00) === 0xff00) return "multicast (ff00::/8)";
  if (g0 === 0x2001 && g1 === 0x0db8) return "documentation (2001:db8::/32)";
  if ((g0 & 0xfff0) === 0x3ff0) return "documentation (3fff::/20)";
  if (g0 === 0x2001 && g1 < 0x0200) return "IETF protocol assignments incl. Teredo (2001::/23)";
  if ((g0 & 0xe000) !== 0x2000) return "not global unicast (outside 2000::/3)";
  return undefined;
}
