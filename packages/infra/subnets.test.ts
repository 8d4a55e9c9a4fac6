import { describe, expect, it } from 'vitest';
import { planSubnets } from './subnets.ts';

describe('planSubnets', () => {
  it('gives each zone a private quarter and a small public subnet in the last quarter', () => {
    expect(planSubnets('10.0.0.0/16', 3)).toEqual({
      privateCidrs: ['10.0.0.0/18', '10.0.64.0/18', '10.0.128.0/18'],
      publicCidrs: ['10.0.192.0/20', '10.0.208.0/20', '10.0.224.0/20'],
    });
  });

  it('drops host bits and still fits AWS limits in a /24', () => {
    expect(planSubnets('192.168.7.9/24', 2)).toEqual({
      privateCidrs: ['192.168.7.0/26', '192.168.7.64/26'],
      publicCidrs: ['192.168.7.192/28', '192.168.7.208/28'],
    });
  });

  it('refuses ranges too small for /28 public subnets, and more than three zones', () => {
    expect(() => planSubnets('10.0.0.0/25', 1)).toThrow(/between \/16 and \/24/);
    expect(() => planSubnets('10.0.0.0/16', 4)).toThrow(/availability zones/);
  });
});
