import type { ClusterSpec } from '#core';

/**
 * Node health decisions, as pure functions of what the poller observed: the
 * cluster's Nodes (from its API server) and its machines (from Auto Scaling
 * and EC2). Like Cluster API's MachineHealthCheck, with the safety rails its
 * users asked for: a visible short-circuit when too much is unhealthy, a
 * limit on remediations in flight, a retry budget, a freeze when the API
 * server itself is unreachable, and an etcd quorum guard.
 */

export type MachineGroup = { role: 'control-plane' } | { role: 'worker'; pool: string };

export interface ObservedNode {
  name: string;
  /** The instance id from the node's provider ID; absent when the kubelet was not told it. */
  instanceId?: string;
  ready: 'True' | 'False' | 'Unknown';
  /** When the Ready condition last changed. */
  readySince: string;
  kubeletVersion: string;
  /** Where the node's labels put it: the group of a Node whose machine is gone. */
  group?: MachineGroup;
}

export interface ObservedMachine {
  instanceId: string;
  group: MachineGroup;
  zone: string;
  state: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';
  launchedAt: string;
  /** As EC2 describes it (absent when it does not say). */
  instanceType?: string;
  /** Its private address, as EC2 describes it (a terminated instance has none). */
  privateIp?: string;
}

export type HealthVerdict =
  | { state: 'healthy' }
  /** Not Ready yet, or not for long enough to act on. */
  | { state: 'watching'; reason: UnhealthyReason; since: string }
  | { state: 'unhealthy'; reason: UnhealthyReason; since: string };

export type UnhealthyReason = 'NotReady' | 'ReadyUnknown' | 'NoNode' | 'MachineGone';

export interface MachineHealth {
  /** The instance, or for a Node whose machine is gone, absent. */
  instanceId?: string;
  nodeName?: string;
  group: MachineGroup;
  zone?: string;
  kubeletVersion?: string;
  verdict: HealthVerdict;
}

/** A remediation Kiln started, as the store keeps it. */
export interface RemediationRecord {
  instanceId: string;
  group: MachineGroup;
  startedAt: string;
  /** Still running (an operation of type remediate-node). */
  inFlight: boolean;
}

export interface HealthInput {
  policy: ClusterSpec['nodeHealth'];
  /** The cluster's API server answered the poll; without it nothing is known about the nodes. */
  apiReachable: boolean;
  nodes: readonly ObservedNode[];
  machines: readonly ObservedMachine[];
  /** Remediations of the last day, in flight or finished. */
  remediations: readonly RemediationRecord[];
  now: Date;
}

export type HoldReason =
  | { kind: 'ApiServerUnreachable' }
  | { kind: 'TooManyUnhealthy'; group: MachineGroup; unhealthy: number; total: number; maxUnhealthyPercent: number }
  | { kind: 'EtcdQuorumAtRisk'; unhealthy: number; total: number }
  | { kind: 'RetryBudgetSpent'; group: MachineGroup; remediations: number; budget: number };

export interface HealthDecision {
  machines: MachineHealth[];
  /** Unhealthy machines to remediate now, oldest first, within maxInFlight. */
  remediate: MachineHealth[];
  /** Node objects whose machine is gone: deleted, nothing to reboot or replace. */
  orphanedNodes: string[];
  /** Why unhealthy machines are left alone: each a condition and an event the cluster shows. */
  holds: HoldReason[];
}

/** Remediations a group may start in a day before Kiln stops and asks for a person. */
export const REMEDIATION_BUDGET_PER_DAY = 3;
const DAY_MS = 24 * 60 * 60 * 1000;

export function groupKey(group: MachineGroup): string {
  return group.role === 'control-plane' ? 'control-plane' : `pool/${group.pool}`;
}

function minutesSince(time: string, now: Date): number {
  return (now.getTime() - Date.parse(time)) / 60_000;
}

/** A stopped machine is still the group's, and still there to be rebooted or replaced; a terminating one is gone. */
const LIVE_STATES: ReadonlySet<ObservedMachine['state']> = new Set(['pending', 'running', 'stopping', 'stopped']);

/** Each machine's verdict, and each Node whose machine is gone. */
export function verdicts(input: Pick<HealthInput, 'policy' | 'nodes' | 'machines' | 'now'>): MachineHealth[] {
  const { policy, now } = input;
  const nodeByInstance = new Map(input.nodes.flatMap((node) => (node.instanceId === undefined ? [] : [[node.instanceId, node] as const])));
  const live = input.machines.filter((machine) => LIVE_STATES.has(machine.state));
  const liveIds = new Set(live.map((machine) => machine.instanceId));

  const ofMachines = live.map((machine): MachineHealth => {
    const node = nodeByInstance.get(machine.instanceId);
    const base = { instanceId: machine.instanceId, group: machine.group, zone: machine.zone };
    if (node === undefined) {
      const verdict: HealthVerdict =
        minutesSince(machine.launchedAt, now) >= policy.nodeStartupTimeoutMinutes
          ? { state: 'unhealthy', reason: 'NoNode', since: machine.launchedAt }
          : { state: 'watching', reason: 'NoNode', since: machine.launchedAt };
      return { ...base, verdict };
    }
    const described = { ...base, nodeName: node.name, kubeletVersion: node.kubeletVersion };
    if (node.ready === 'True') return { ...described, verdict: { state: 'healthy' } };
    const reason: UnhealthyReason = node.ready === 'False' ? 'NotReady' : 'ReadyUnknown';
    const state = minutesSince(node.readySince, now) >= policy.unhealthyTimeoutMinutes ? 'unhealthy' : 'watching';
    return { ...described, verdict: { state, reason, since: node.readySince } };
  });

  // A Node whose instance no longer runs: its machine is gone, the Node object is left over.
  const orphans = input.nodes
    .filter((node) => node.instanceId !== undefined && !liveIds.has(node.instanceId))
    .map((node): MachineHealth => {
      const machine = input.machines.find((candidate) => candidate.instanceId === node.instanceId);
      return {
        ...(node.instanceId === undefined ? {} : { instanceId: node.instanceId }),
        nodeName: node.name,
        group: machine?.group ?? node.group ?? { role: 'worker', pool: 'unknown' },
        kubeletVersion: node.kubeletVersion,
        verdict: { state: 'unhealthy', reason: 'MachineGone', since: node.readySince },
      };
    });
  return [...ofMachines, ...orphans];
}

function quorum(members: number): number {
  return Math.floor(members / 2) + 1;
}

/**
 * What to do about the cluster's machines now. Nothing while the API server
 * is unreachable (the nodes are not the problem); per group, nothing when
 * more than maxUnhealthyPercent is unhealthy or the day's budget is spent;
 * for the control plane, nothing unless a quorum of etcd members stays
 * healthy, and never more than one at a time; overall, at most maxInFlight
 * remediations at once, oldest failure first.
 */
export function decide(input: HealthInput): HealthDecision {
  const all = verdicts(input);
  const isOrphan = (machine: MachineHealth) => machine.verdict.state === 'unhealthy' && machine.verdict.reason === 'MachineGone';
  const orphanedNodes = all.filter(isOrphan).flatMap((machine) => (machine.nodeName === undefined ? [] : [machine.nodeName]));
  // A Node whose machine is gone is remediated like any unhealthy machine (its etcd member and Node removed), under the same rails.
  const machines = all;
  const holds: HoldReason[] = [];
  if (!input.apiReachable) return { machines: all, remediate: [], orphanedNodes: [], holds: [{ kind: 'ApiServerUnreachable' }] };
  if (!input.policy.enabled) return { machines: all, remediate: [], orphanedNodes: [], holds: [] };

  const inFlight = input.remediations.filter((remediation) => remediation.inFlight);
  const inFlightIds = new Set(inFlight.map((remediation) => remediation.instanceId));
  const since = input.now.getTime() - DAY_MS;
  const candidates: MachineHealth[] = [];

  const groups = new Map<string, MachineHealth[]>();
  for (const machine of machines) groups.set(groupKey(machine.group), [...(groups.get(groupKey(machine.group)) ?? []), machine]);
  for (const members of groups.values()) {
    const group = members[0]?.group;
    if (group === undefined) continue;
    const unhealthy = members.filter((member) => member.verdict.state === 'unhealthy');
    if (unhealthy.length === 0) continue;
    const total = members.length;
    const unhealthyMachines = unhealthy.length;
    // The more telling reason first: a control plane that lost etcd quorum would also be over the percentage.
    if (group.role === 'control-plane' && total - unhealthyMachines < quorum(total)) {
      holds.push({ kind: 'EtcdQuorumAtRisk', unhealthy: unhealthyMachines, total });
      continue;
    }
    if ((unhealthyMachines * 100) / total > input.policy.maxUnhealthyPercent) {
      holds.push({ kind: 'TooManyUnhealthy', group, unhealthy: unhealthyMachines, total, maxUnhealthyPercent: input.policy.maxUnhealthyPercent });
      continue;
    }
    const spent = input.remediations.filter((remediation) => groupKey(remediation.group) === groupKey(group) && Date.parse(remediation.startedAt) >= since).length;
    const waiting = unhealthy.filter((member) => member.instanceId === undefined || !inFlightIds.has(member.instanceId));
    if (waiting.length > 0 && spent >= REMEDIATION_BUDGET_PER_DAY) {
      holds.push({ kind: 'RetryBudgetSpent', group, remediations: spent, budget: REMEDIATION_BUDGET_PER_DAY });
      continue;
    }
    // One control plane machine at a time, whatever maxInFlight allows: etcd changes one member at a time.
    const controlPlaneBusy = group.role === 'control-plane' && inFlight.some((remediation) => remediation.group.role === 'control-plane');
    if (controlPlaneBusy) continue;
    candidates.push(...(group.role === 'control-plane' ? waiting.slice(0, 1) : waiting.slice(0, REMEDIATION_BUDGET_PER_DAY - spent)));
  }

  const room = Math.max(0, input.policy.maxInFlight - inFlight.length);
  const sinceOf = (machine: MachineHealth) => (machine.verdict.state === 'healthy' ? '' : machine.verdict.since);
  const remediate = candidates.sort((a, b) => sinceOf(a).localeCompare(sinceOf(b))).slice(0, room);
  return { machines: all, remediate, orphanedNodes, holds };
}
