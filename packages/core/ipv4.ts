/** IPv4 addresses as numbers, and CIDR blocks as the range of addresses they cover. */
export function ipv4ToNumber(address: string): number {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw new Error(`'${address}' is not an IPv4 address`);
  }
  return octets.reduce((acc, octet) => acc * 256 + octet, 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export interface Ipv4Block {
  /** The network address, host bits dropped (10.0.0.1/16 starts at 10.0.0.0). */
  first: number;
  last: number;
  prefix: number;
  size: number;
}

export function cidrBlock(cidr: string): Ipv4Block {
  const [address = '', prefixText = '32'] = cidr.split('/');
  const prefix = Number(prefixText);
  const size = 2 ** (32 - prefix);
  const base = ipv4ToNumber(address);
  const first = base - (base % size);
  return { first, last: first + size - 1, prefix, size };
}
