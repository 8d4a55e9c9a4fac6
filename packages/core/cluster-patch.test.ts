import { describe, expect, it } from 'vitest';
import { NodePoolSpec } from './cluster-spec.ts';
import { nodePoolChanges } from './cluster-patch.ts';

const pools = (...entries: Record<string, unknown>[]) => entries.map((entry) => NodePoolSpec.parse(entry));

describe('what a change of the node pools does to the machines', () => {
  const today = pools({ name: 'general', size: 3 }, { name: 'batch', size: 1 });

  it.each([
    ['nothing', today, { removesMachines: false, joinsMachines: false, rollsMachines: false, changed: false }],
    ['a pool grows', pools({ name: 'general', size: 5 }, { name: 'batch', size: 1 }), { removesMachines: false, joinsMachines: true, rollsMachines: false, changed: true }],
    ['a pool shrinks', pools({ name: 'general', size: 2 }, { name: 'batch', size: 1 }), { removesMachines: true, joinsMachines: false, rollsMachines: false, changed: true }],
    ['a pool goes', pools({ name: 'general', size: 3 }), { removesMachines: true, joinsMachines: false, rollsMachines: false, changed: true }],
    ['a pool is added', [...today, ...pools({ name: 'gpu', size: 1 })], { removesMachines: false, joinsMachines: true, rollsMachines: false, changed: true }],
    ['an empty pool is added', [...today, ...pools({ name: 'gpu', size: 0, max: 4 })], { removesMachines: false, joinsMachines: false, rollsMachines: false, changed: true }],
    ['labels and bounds change', pools({ name: 'general', size: 3, max: 6, labels: { team: 'a' } }, { name: 'batch', size: 1 }), { removesMachines: false, joinsMachines: false, rollsMachines: false, changed: true }],
    ['a renamed pool is one removed and one added', pools({ name: 'main', size: 3 }, { name: 'batch', size: 1 }), { removesMachines: true, joinsMachines: true, rollsMachines: false, changed: true }],
  ])('%s', (_case, after, expected) => {
    expect(nodePoolChanges(today, after)).toEqual(expected);
  });

  it('rolls the machines of a pool that stays and changes its instance type, and of no other', () => {
    expect(nodePoolChanges(today, pools({ name: 'batch', size: 1, instanceType: 'c7i.xlarge' }, { name: 'general', size: 3 }))).toEqual({
      removesMachines: false,
      joinsMachines: false,
      rollsMachines: true,
      changed: true,
    });
    // A pool with no machines has nothing to roll.
    const empty = pools({ name: 'general', size: 0, max: 3 });
    expect(nodePoolChanges(empty, pools({ name: 'general', size: 0, max: 3, instanceType: 'c7i.xlarge' })).rollsMachines).toBe(false);
  });
});
