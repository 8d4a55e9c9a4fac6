import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Where Kiln will not send a webhook: addresses inside Kiln's own network or the machine it runs on. Checked for the
 * address every delivery connects to (not just when the endpoint is created: a name can resolve elsewhere later).
 */
function refusedList(): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of [
    ['0.0.0.0', 8], // "this" network
    ['10.0.0.0', 8], // private
    ['100.64.0.0', 10], // carrier-grade NAT
    ['127.0.0.0', 8], // loopback
    ['169.254.0.0', 16], // link-local, the instance metadata service (169.254.169.254) among them
    ['172.16.0.0', 12], // private
    ['192.0.0.0', 24], // IETF protocol assignments
    ['192.168.0.0', 16], // private
    ['198.18.0.0', 15], // benchmarking
    ['224.0.0.0', 4], // multicast
    ['240.0.0.0', 4], // reserved, broadcast
  ] as const) {
    list.addSubnet(network, prefix, 'ipv4');
  }
  for (const [network, prefix] of [
    ['::', 128], // unspecified
    ['::1', 128], // loopback
    ['fc00::', 7], // unique local
    ['fe80::', 10], // link-local
    ['ff00::', 8], // multicast
    ['fd00:ec2::254', 128], // the instance metadata service over IPv6
    ['::', 96], // IPv4-compatible (::a.b.c.d, deprecated by RFC 4291 2.5.5.1): any IPv4 address, private ones included
    ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): a translator inside someone's network
    ['2002::', 16], // 6to4 (RFC 3056): embeds any IPv4 address, private ones included
  ] as const) {
    list.addSubnet(network, prefix, 'ipv6');
  }
  return list;
}

function loopbackList(): BlockList {
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addAddress('::1', 'ipv6');
  return list;
}

/** Built on first use: the API loads this module at every cold start, and building the lists took 5 to 8 ms of it. */
const lists: { refused?: BlockList; loopback?: BlockList } = {};

/** The IPv4 address an IPv6 address stands for (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96), if it does. */
function embeddedIpv4(address: string): string | undefined {
  const mapped = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex?.[1] === undefined || hex[2] === undefined) return undefined;
  const [high, low] = [Number.parseInt(hex[1], 16), Number.parseInt(hex[2], 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

export interface AddressPolicy {
  /** Local mode only: let customers test with a receiver on 127.0.0.1 or ::1 (never the metadata address). */
  allowLoopback: boolean;
  /** The ports a webhook URL may name; https's own (443) when absent. A loopback receiver in local mode may use any. */
  allowedPorts?: readonly number[];
}

/** The port a URL connects to: the one it names, else its scheme's. */
function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'http:' ? 80 : 443;
}

/** Why Kiln will not connect to this IP address, or undefined when it will. */
export function addressRefusal(address: string, policy: AddressPolicy): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  const v4 = family === 6 ? embeddedIpv4(address.toLowerCase()) : address;
  const [checked, type] = v4 === undefined ? [address, 'ipv6' as const] : [v4, 'ipv4' as const];
  if (policy.allowLoopback && (lists.loopback ??= loopbackList()).check(checked, type)) return undefined;
  return (lists.refused ??= refusedList()).check(checked, type) ? `${address} is a private, loopback, link-local or reserved address` : undefined;
}

/** Why a webhook URL is refused before any lookup: its scheme, credentials in it, or a literal address. */
export function urlRefusal(raw: string, policy: AddressPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopbackHttp = policy.allowLoopback && url.protocol === 'http:' && isIP(host) !== 0 && addressRefusal(host, { allowLoopback: false }) !== undefined && addressRefusal(host, policy) === undefined;
  if (url.protocol !== 'https:' && !loopbackHttp) return 'must be https';
  const ports = policy.allowedPorts ?? [443];
  // Any other port could reach a service that is not a web server (SMTP, a database) behind an allowed address.
  if (!loopbackHttp && !ports.includes(portOf(url))) return `must use port ${ports.join(' or ')}`;
  if (isIP(host) !== 0) {
    const refused = addressRefusal(host, policy);
    if (refused !== undefined) return `points at ${refused}`;
  }
  return undefined;
}

/**
 * Resolves the host as a delivery would and returns the address to connect to, or why none is allowed: every address
 * the name resolves to must be allowed (a name with one private address among public ones is refused whole).
 */
export async function resolveAllowed(hostname: string, policy: AddressPolicy): Promise<{ address: string; family: 4 | 6 } | { refused: string }> {
  const host = hostname.replace(/^\[|\]$/g, '');
  const family = isIP(host);
  const addresses = family !== 0 ? [{ address: host, family }] : await lookup(host, { all: true, verbatim: true }).catch(() => []);
  if (addresses.length === 0) return { refused: `${hostname} does not resolve` };
  for (const candidate of addresses) {
    const refused = addressRefusal(candidate.address, policy);
    if (refused !== undefined) return { refused: `${hostname} resolves to ${refused}` };
  }
  const [first] = addresses;
  return first === undefined ? { refused: `${hostname} does not resolve` } : { address: first.address, family: first.family === 6 ? 6 : 4 };
}
