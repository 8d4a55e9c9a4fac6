import { describe, expect, it } from 'vitest';
import { ClusterSpec, newId } from '#core';
import { ClusterProgramInput } from './program-input.ts';

const BOUNDARY = 'arn:aws:iam::111122223333:policy/kiln/kiln-prod-MachineRoleBoundary';

function input(order: Record<string, unknown>, machineRoleBoundaryArn?: string) {
  const spec = ClusterSpec.parse({ name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }], ...order });
  return {
    tenantId: newId('tenant'),
    clusterId: newId('cluster'),
    spec,
    availabilityZones: ['eu-central-1a'],
    machineOs: '13',
    kilnEgressCidrs: ['198.51.100.7/32'],
    ...(machineRoleBoundaryArn === undefined ? {} : { machineRoleBoundaryArn }),
    userData: { controlPlane: '#cloud-config\n', pools: { default: '#cloud-config\n' } },
  };
}

describe("the machines' permissions boundary in the program input", () => {
  it("is a managed policy's ARN, for a cluster in Kiln's account", () => {
    expect(ClusterProgramInput.safeParse(input({}, BOUNDARY)).success).toBe(true);
    const wrong = ClusterProgramInput.safeParse(input({}, 'arn:aws:iam::111122223333:role/kiln/x'));
    expect(wrong.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['machineRoleBoundaryArn']);
  });

  it("is refused for a cluster in the tenant's account, whose roles cannot carry a policy of Kiln's", () => {
    const account = { roleArn: 'arn:aws:iam::444455556666:role/kiln', externalId: 'kiln-issued-external-id' };
    const parsed = ClusterProgramInput.safeParse(input({ account }, BOUNDARY));
    expect(parsed.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['machineRoleBoundaryArn']);
    expect(ClusterProgramInput.safeParse(input({ account })).success).toBe(true);
  });
});
