import { cidrBlock, numberToIpv4 } from '#core';

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

export function planSubnets(vpcCidr: string, zoneCount: number): SubnetPlan {
  const { first: base, prefix, size: vpcSize } = cidrBlock(vpcCidr);
  if (!Number.isInteger(prefix) || prefix < 16 || prefix > SMALLEST_VPC_PREFIX) {
    throw new Error(`VPC range ${vpcCidr} must have a prefix between /16 and /${SMALLEST_VPC_PREFIX}`);
  }
  if (!Number.isInteger(zoneCount) || zoneCount < 1 || zoneCount > MAX_AVAILABILITY_ZONES) {
    throw new Error(`between 1 and ${MAX_AVAILABILITY_ZONES} availability zones are supported, got ${zoneCount}`);
  }
  // cidrBlock drops host bits set in the order (10.0.0.1/16), as AWS would reject them.
  const quarter = vpcSize / 4;
  const sixteenth = vpcSize / 16;
  const zones = Array.from({ length: zoneCount }, (_, index) => index);
  return {
    privateCidrs: zones.map((index) => `${numberToIpv4(base + index * quarter)}/${prefix + 2}`),
    publicCidrs: zones.map((index) => `${numberToIpv4(base + 3 * quarter + index * sixteenth)}/${prefix + 4}`),
  };
}
