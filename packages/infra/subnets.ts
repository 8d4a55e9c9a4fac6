/**
 * Splits the VPC range into one private subnet per availability zone (a
 * quarter of the VPC each, for machines) and one small public subnet per zone
 * (a sixteenth each, inside the last quarter) that only the NAT gateways and
 * the load balancer use.
 */
export interface SubnetPlan {
  privateCidrs: string[];
  publicCidrs: string[];
}

export const MAX_AVAILABILITY_ZONES = 3;
/** A /24 VPC yields /28 public subnets, the smallest AWS allows. */
const SMALLEST_VPC_PREFIX = 24;

function toNumber(address: string): number {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw new Error(`'${address}' is not an IPv4 address`);
  }
  return octets.reduce((acc, octet) => acc * 256 + octet, 0);
}

function toAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function planSubnets(vpcCidr: string, zoneCount: number): SubnetPlan {
  const [address = '', prefixText = ''] = vpcCidr.split('/');
  const prefix = Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 16 || prefix > SMALLEST_VPC_PREFIX) {
    throw new Error(`VPC range ${vpcCidr} must have a prefix between /16 and /${SMALLEST_VPC_PREFIX}`);
  }
  if (!Number.isInteger(zoneCount) || zoneCount < 1 || zoneCount > MAX_AVAILABILITY_ZONES) {
    throw new Error(`between 1 and ${MAX_AVAILABILITY_ZONES} availability zones are supported, got ${zoneCount}`);
  }
  const vpcSize = 2 ** (32 - prefix);
  // Host bits set in the order (10.0.0.1/16) are dropped, as AWS would reject them.
  const base = toNumber(address) - (toNumber(address) % vpcSize);
  const quarter = vpcSize / 4;
  const sixteenth = vpcSize / 16;
  const zones = Array.from({ length: zoneCount }, (_, index) => index);
  return {
    privateCidrs: zones.map((index) => `${toAddress(base + index * quarter)}/${prefix + 2}`),
    publicCidrs: zones.map((index) => `${toAddress(base + 3 * quarter + index * sixteenth)}/${prefix + 4}`),
  };
}
