import { describe, expect, it } from 'vitest';
import { StepError, newId } from '#core';
import { resourcePrefix } from './cluster-program.ts';
import { stackName } from './driver.ts';

describe('stackName', () => {
  it('names one stack per tenant and cluster', () => {
    const tenantId = newId('tenant');
    const clusterId = newId('cluster');
    expect(stackName({ tenantId, clusterId })).toBe(`${tenantId}.${clusterId}`);
    expect(stackName({ tenantId: newId('tenant'), clusterId })).not.toBe(stackName({ tenantId, clusterId }));
  });

  it('rejects ids that cannot form a stack name, as a permanent failure', () => {
    expect(() => stackName({ tenantId: 'ten/../x', clusterId: newId('cluster') })).toThrow(
      expect.objectContaining({ retriable: false, name: 'Kiln.Permanent' }),
    );
    expect(() => stackName({ tenantId: 'ten/../x', clusterId: newId('cluster') })).toThrow(StepError);
  });
});

describe('resourcePrefix', () => {
  it('is short, stable and differs between clusters', () => {
    const clusterId = newId('cluster');
    expect(resourcePrefix(clusterId)).toMatch(/^kiln-[0-9a-f]{10}$/);
    expect(resourcePrefix(clusterId)).toBe(resourcePrefix(clusterId));
    expect(resourcePrefix(newId('cluster'))).not.toBe(resourcePrefix(clusterId));
  });
});
