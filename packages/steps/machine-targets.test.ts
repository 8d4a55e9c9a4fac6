import { describe, expect, it } from 'vitest';
import { controlPlaneTargets } from './machine-targets.ts';

const members = [
  { instanceId: 'i-0aaa', group: { role: 'control-plane' as const } },
  { instanceId: 'i-0bbb', group: { role: 'control-plane' as const } },
  { instanceId: 'i-0ccc', group: { role: 'worker' as const, pool: 'default' } },
];

describe('controlPlaneTargets', () => {
  it('names each control plane group member by its Node, and nothing a Node names outside the group', () => {
    const nodes = [
      { name: 'control-plane-1', providerID: 'aws:///eu-central-1b/i-0bbb' },
      { name: 'control-plane-0', providerID: 'aws:///eu-central-1a/i-0aaa' },
      // Written by a cluster-admin: another cluster's machine, a worker of this one, and none at all.
      { name: 'control-plane-00', providerID: 'aws:///eu-central-1a/i-0f0reign' },
      { name: 'control-plane-9', providerID: 'aws:///eu-central-1a/i-0ccc' },
      { name: 'control-plane-8' },
    ];
    expect([...controlPlaneTargets(members, nodes)]).toEqual([
      ['control-plane-0', 'i-0aaa'],
      ['control-plane-1', 'i-0bbb'],
    ]);
  });

  it('has no target when the group has no members', () => {
    expect(controlPlaneTargets([], [{ name: 'control-plane-0', providerID: 'aws:///eu-central-1a/i-0aaa' }]).size).toBe(0);
  });
});
