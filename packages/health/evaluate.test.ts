import { describe, expect, it } from 'vitest';
import { ClusterSpec } from '#core';
import { type HealthInput, type MachineGroup, type ObservedMachine, type ObservedNode, REMEDIATION_BUDGET_PER_DAY, decide, verdicts } from './evaluate.ts';

const NOW = new Date('2026-11-29T12:00:00Z');
const minutesAgo = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString();
const policy = (overrides: Record<string, unknown> = {}) =>
  ClusterSpec.parse({ name: 'h', region: 'eu-central-1', nodePools: [{ name: 'p', size: 1 }], nodeHealth: overrides }).nodeHealth;

const WORKERS: MachineGroup = { role: 'worker', pool: 'general' };
const CONTROL_PLANE: MachineGroup = { role: 'control-plane' };

/** A pool of machines, each with its node; `down` lists which are NotReady, and since when (minutes). */
function fleet(group: MachineGroup, count: number, down: Record<number, number> = {}, prefix = group.role === 'control-plane' ? 'cp' : 'w') {
  const machines: ObservedMachine[] = [];
  const nodes: ObservedNode[] = [];
  for (let index = 0; index < count; index++) {
    const instanceId = `i-${prefix}${index}`;
    machines.push({ instanceId, group, zone: 'eu-central-1a', state: 'running', launchedAt: minutesAgo(600) });
    const downFor = down[index];
    nodes.push({ name: `${prefix}-${index}`, instanceId, ready: downFor === undefined ? 'True' : 'False', readySince: minutesAgo(downFor ?? 500), kubeletVersion: 'v1.35.9' });
  }
  return { machines, nodes };
}

function input(parts: { machines: ObservedMachine[]; nodes: ObservedNode[] }[], overrides: Partial<HealthInput> = {}): HealthInput {
  return {
    policy: policy(),
    apiReachable: true,
    nodes: parts.flatMap((part) => part.nodes),
    machines: parts.flatMap((part) => part.machines),
    remediations: [],
    now: NOW,
    ...overrides,
  };
}

describe('node health verdicts', () => {
  it('waits unhealthyTimeoutMinutes before calling a NotReady node unhealthy', () => {
    const [young, old] = verdicts(input([fleet(WORKERS, 2, { 0: 4, 1: 6 })]));
    expect(young?.verdict).toEqual({ state: 'watching', reason: 'NotReady', since: minutesAgo(4) });
    expect(old?.verdict).toEqual({ state: 'unhealthy', reason: 'NotReady', since: minutesAgo(6) });
  });

  it('calls a machine without a node unhealthy after nodeStartupTimeoutMinutes', () => {
    const machines: ObservedMachine[] = [
      { instanceId: 'i-new', group: WORKERS, zone: 'a', state: 'running', launchedAt: minutesAgo(10) },
      { instanceId: 'i-stuck', group: WORKERS, zone: 'a', state: 'running', launchedAt: minutesAgo(25) },
    ];
    expect(verdicts({ policy: policy(), nodes: [], machines, now: NOW }).map((machine) => machine.verdict.state)).toEqual(['watching', 'unhealthy']);
  });

  it('finds a Node whose machine is gone, and remediates it (its Node and etcd member go)', () => {
    const pool = fleet(WORKERS, 3);
    pool.machines[2] = { ...(pool.machines[2] as ObservedMachine), state: 'terminated' };
    const decision = decide(input([pool]));
    expect(decision.orphanedNodes).toEqual(['w-2']);
    expect(decision.remediate.map((machine) => [machine.nodeName, machine.verdict.state === 'unhealthy' ? machine.verdict.reason : ''])).toEqual([['w-2', 'MachineGone']]);
  });

  it('judges a stopped machine by its node, as one that is down, not gone', () => {
    const pool = fleet(WORKERS, 3, { 1: 10 });
    pool.machines[1] = { ...(pool.machines[1] as ObservedMachine), state: 'stopped' };
    const [, stopped] = verdicts(input([pool]));
    expect(stopped?.verdict).toMatchObject({ state: 'unhealthy', reason: 'NotReady' });
  });
});

describe('remediation decisions', () => {
  it('remediates an unhealthy worker', () => {
    expect(decide(input([fleet(WORKERS, 5, { 1: 10 })])).remediate.map((machine) => machine.instanceId)).toEqual(['i-w1']);
  });

  it('freezes everything while the API server is unreachable', () => {
    const decision = decide(input([fleet(WORKERS, 5, { 1: 10 })], { apiReachable: false }));
    expect(decision.remediate).toEqual([]);
    expect(decision.holds).toEqual([{ kind: 'ApiServerUnreachable' }]);
  });

  it('does nothing, visibly, when more than maxUnhealthyPercent of a pool is down, and resumes below it', () => {
    const threeOfFive = decide(input([fleet(WORKERS, 5, { 0: 10, 1: 10, 2: 10 })], { policy: policy({ maxUnhealthyPercent: 40 }) }));
    expect(threeOfFive.remediate).toEqual([]);
    expect(threeOfFive.holds).toEqual([{ kind: 'TooManyUnhealthy', group: WORKERS, unhealthy: 3, total: 5, maxUnhealthyPercent: 40 }]);
    const oneOfFive = decide(input([fleet(WORKERS, 5, { 0: 10 })], { policy: policy({ maxUnhealthyPercent: 40 }) }));
    expect(oneOfFive.holds).toEqual([]);
    expect(oneOfFive.remediate).toHaveLength(1);
  });

  it('keeps at most maxInFlight remediations running, oldest failure first', () => {
    const pool = fleet(WORKERS, 10, { 3: 20, 7: 30 });
    expect(decide(input([pool], { policy: policy({ maxInFlight: 1 }) })).remediate.map((machine) => machine.instanceId)).toEqual(['i-w7']);
    const busy = decide(input([pool], { policy: policy({ maxInFlight: 1 }), remediations: [{ instanceId: 'i-w7', group: WORKERS, startedAt: minutesAgo(2), inFlight: true }] }));
    expect(busy.remediate).toEqual([]);
    expect(decide(input([pool], { policy: policy({ maxInFlight: 2 }) })).remediate.map((machine) => machine.instanceId)).toEqual(['i-w7', 'i-w3']);
  });

  it('stops at the day\'s retry budget of a group, visibly', () => {
    const spent = Array.from({ length: REMEDIATION_BUDGET_PER_DAY }, (_, index) => ({ instanceId: `i-old${index}`, group: WORKERS, startedAt: minutesAgo(60 * (index + 1)), inFlight: false }));
    const decision = decide(input([fleet(WORKERS, 5, { 2: 10 })], { remediations: spent }));
    expect(decision.remediate).toEqual([]);
    expect(decision.holds).toEqual([{ kind: 'RetryBudgetSpent', group: WORKERS, remediations: REMEDIATION_BUDGET_PER_DAY, budget: REMEDIATION_BUDGET_PER_DAY }]);
    const yesterday = spent.map((remediation) => ({ ...remediation, startedAt: minutesAgo(25 * 60) }));
    expect(decide(input([fleet(WORKERS, 5, { 2: 10 })], { remediations: yesterday })).remediate).toHaveLength(1);
  });

  it('replaces one dead control plane machine of three, but touches none when two are dead (etcd has no quorum)', () => {
    const oneDead = decide(input([fleet(CONTROL_PLANE, 3, { 0: 10 })], { policy: policy({ maxUnhealthyPercent: 100 }) }));
    expect(oneDead.remediate.map((machine) => machine.instanceId)).toEqual(['i-cp0']);
    const twoDead = decide(input([fleet(CONTROL_PLANE, 3, { 0: 10, 1: 10 })], { policy: policy({ maxUnhealthyPercent: 100 }) }));
    expect(twoDead.remediate).toEqual([]);
    expect(twoDead.holds).toEqual([{ kind: 'EtcdQuorumAtRisk', unhealthy: 2, total: 3 }]);
  });

  it('changes one control plane machine at a time, whatever maxInFlight allows', () => {
    const group = fleet(CONTROL_PLANE, 5, { 0: 10 });
    const busy = decide(input([group], { policy: policy({ maxInFlight: 5, maxUnhealthyPercent: 100 }), remediations: [{ instanceId: 'i-cp4', group: CONTROL_PLANE, startedAt: minutesAgo(1), inFlight: true }] }));
    expect(busy.remediate).toEqual([]);
  });

  it('remediates nothing when the order turned node health off', () => {
    const decision = decide(input([fleet(WORKERS, 3, { 0: 10 })], { policy: policy({ enabled: false }) }));
    expect(decision.remediate).toEqual([]);
    expect(decision.machines.find((machine) => machine.instanceId === 'i-w0')?.verdict.state).toBe('unhealthy');
  });
});
