import { describe, expect, it } from 'vitest';
import { NodePoolSpec } from './cluster-spec.ts';
import { nodePoolChanges } from './cluster-patch.ts';

const pools = (...entries: Record<string, unknown>[]) => entries.map((entry) => NodePoolSpec.parse(entry));

describe('what a change of the node pools does to the machines', () => {
  const today = pools({ name: 'general', size: 3 }, { name: 'batch', size: 1 });

  it.each([
    ['nothing', today, { removesMachines: false, joinsMachines: false, changed: false, immutable: [] }],
    ['a pool grows', pools({ name: 'general', size: 5 }, { name: 'batch', size: 1 }), { removesMachines: false, joinsMachines: true, changed: true, immutable: [] }],
    ['a pool shrinks', pools({ name: 'general', size: 2 }, { name: 'batch', size: 1 }), { removesMachines: true, joinsMachines: false, changed: true, immutable: [] }],
    ['a pool goes', pools({ name: 'general', size: 3 }), { removesMachines: true, joinsMachines: false, changed: true, immutable: [] }],
    ['a pool is added', [...today, ...pools({ name: 'gpu', size: 1 })], { removesMachines: false, joinsMachines: true, changed: true, immutable: [] }],
    ['an empty pool is added', [...today, ...pools({ name: 'gpu', size: 0, max: 4 })], { removesMachines: false, joinsMachines: false, changed: true, immutable: [] }],
    ['labels and bounds change', pools({ name: 'general', size: 3, max: 6, labels: { team: 'a' } }, { name: 'batch', size: 1 }), { removesMachines: false, joinsMachines: false, changed: true, immutable: [] }],
    ['a renamed pool is one removed and one added', pools({ name: 'main', size: 3 }, { name: 'batch', size: 1 }), { removesMachines: true, joinsMachines: true, changed: true, immutable: [] }],
  ])('%s', (_case, after, expected) => {
    expect(nodePoolChanges(today, after)).toEqual(expected);
  });

  it('names the instance type of a pool that stays, at its place in the new list', () => {
    const after = pools({ name: 'batch', size: 1, instanceType: 'c7i.xlarge' }, { name: 'general', size: 3 });
    expect(nodePoolChanges(today, after).immutable).toEqual(['/nodePools/0/instanceType']);
  });
});
