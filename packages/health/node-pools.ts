import { listNodes } from '#addons';
import { instanceIdOf } from '#bootstrap';
import { StepError, clusterEvent, kubernetesReleaseOf } from '#core';
import { clusterApi, machineGroupsOf, runStep } from '#steps';
import type { ClusterRecord } from '#store';
import type { ObservedMachine } from './evaluate.ts';
import type { RemediationServices } from './remediate.ts';
import { type DrainPass, type PollResult, deleteNodeOfMachine, drainPass, publishJoinToken, replacementTokenTtlMs } from './replace.ts';

/** A machine a pool change takes away, chosen when the change starts, and how far its drain got. */
export interface LeavingMachine extends Record<string, unknown> {
  instanceId: string;
  nodeName?: string;
  pool: string;
  zone: string;
  /** The pool shrinks, or goes altogether. */
  reason: 'ScaledIn' | 'PoolRemoved';
  drained: boolean;
  evicted: number;
  blocked?: { pod: string; reason: string }[];
}

interface DrainNodesOutputs extends Record<string, unknown> {
  leaving: LeavingMachine[];
  /** The drain deadline passed with evictions still refused: the machines leave anyway, and `blocked` says what stayed. */
  timedOut?: boolean;
}

/**
 * Which machines leave: every machine of a pool the order no longer has, and of a pool that shrinks the surplus,
 * one at a time: a machine without a Ready node first (it serves nobody), then from the zone with the most of the
 * pool's machines (so the rest stay spread), the oldest there first.
 */
async function chooseLeaving(services: RemediationServices, cluster: ClusterRecord): Promise<LeavingMachine[]> {
  const groups = machineGroupsOf(cluster, 'drain-nodes');
  const machines = (await services.inCluster(cluster).fleet.machines(groups)).filter((machine) => machine.state !== 'terminated' && machine.state !== 'shutting-down');
  const nodes = await listNodes(await clusterApi(services, cluster, 'drain-nodes'));
  const nodeOf = (machine: ObservedMachine) => nodes.find((node) => instanceIdOf(node.providerID) === machine.instanceId);
  const leaving: LeavingMachine[] = [];
  for (const pool of Object.keys(groups.pools)) {
    const members = machines.filter((machine) => machine.group.role === 'worker' && machine.group.pool === pool);
    const wanted = cluster.spec.nodePools.find((candidate) => candidate.name === pool);
    const reason = wanted === undefined ? 'PoolRemoved' : 'ScaledIn';
    let staying = [...members];
    for (let surplus = staying.length - (wanted?.size ?? 0); surplus > 0; surplus -= 1) {
      const perZone = (zone: string) => staying.filter((machine) => machine.zone === zone).length;
      const unready = (machine: ObservedMachine) => (nodeOf(machine)?.ready === true ? 1 : 0);
      const [next] = [...staying].sort((a, b) => unready(a) - unready(b) || perZone(b.zone) - perZone(a.zone) || Date.parse(a.launchedAt) - Date.parse(b.launchedAt));
      if (next === undefined) break;
      staying = staying.filter((machine) => machine !== next);
      const nodeName = nodeOf(next)?.name;
      leaving.push({ instanceId: next.instanceId, ...(nodeName === undefined ? {} : { nodeName }), pool, zone: next.zone, reason, drained: false, evicted: 0 });
    }
  }
  return leaving;
}

/**
 * Chooses the machines a pool change takes away (once; later calls keep the choice), cordons their nodes and evicts
 * their pods through the Eviction API, so PodDisruptionBudgets hold, one pass per call, until every node is empty
 * or the drain deadline passes (then the blocked pods are named and the machines leave anyway: the order asked for
 * the smaller pool).
 */
export async function drainNodesStep(services: RemediationServices, input: unknown): Promise<PollResult> {
  const result = await runStep<DrainNodesOutputs>(
    services,
    input,
    'drain-nodes',
    async (context) => {
      const { cluster } = context;
      const earlier = (context.operation.steps['drain-nodes']?.outputs ?? {}) as Partial<DrainNodesOutputs>;
      const leaving = earlier.leaving ?? (await chooseLeaving(services, cluster));
      const config = await clusterApi(services, cluster, 'drain-nodes');
      const startedAt = context.operation.steps['drain-nodes']?.startedAt ?? new Date().toISOString();
      const results = await Promise.all(
        leaving.map(async (machine): Promise<{ machine: LeavingMachine; timedOut: boolean }> => {
          if (machine.drained || machine.nodeName === undefined) return { machine: { ...machine, drained: true }, timedOut: false };
          const pass = await drainPass(config, machine.nodeName, startedAt);
          if (pass.gone) return { machine: { ...machine, drained: true }, timedOut: false };
          const { blocked: _blocked, ...rest } = machine;
          const evicted = machine.evicted + pass.evicted;
          return { machine: { ...rest, evicted, drained: pass.empty, ...(pass.blocked.length === 0 ? {} : { blocked: pass.blocked }) }, timedOut: pass.timedOut };
        }),
      );
      const passes = results.map((result) => result.machine);
      if (passes.every((machine) => machine.drained)) return { done: true, outputs: { leaving: passes } };
      if (results.some((result) => result.timedOut)) return { done: true, outputs: { leaving: passes, timedOut: true } };
      return { done: false, progress: { leaving: passes } };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}

/**
 * Removes the drained machines: each group's minimum size comes down to the new order's (0 for a pool that goes),
 * then each machine is terminated with its group's desired capacity lowered, so Auto Scaling replaces none and
 * picks none of its own; its Node is deleted (nothing else would: there is no cloud controller manager), with a
 * `node.removed` event. The infrastructure step then declares the groups as the order says.
 */
export async function removeMachinesStep(services: RemediationServices, input: unknown): Promise<Record<string, unknown>> {
  const result = await runStep<Record<string, unknown>>(services, input, 'remove-machines', async (context) => {
    const { cluster, operation } = context;
    const groups = machineGroupsOf(cluster, 'remove-machines');
    const { leaving = [] } = context.outputsOf('drain-nodes') as Partial<DrainNodesOutputs>;
    const { fleet } = services.inCluster(cluster);
    for (const pool of new Set(leaving.map((machine) => machine.pool))) {
      const group = groups.pools[pool];
      const wanted = cluster.spec.nodePools.find((candidate) => candidate.name === pool);
      if (group !== undefined) await fleet.resize(group, { min: wanted === undefined ? 0 : (wanted.min ?? wanted.size) });
    }
    const config = await clusterApi(services, cluster, 'remove-machines');
    const nodes = await listNodes(config);
    const removed: { instanceId: string; nodeName?: string; pool: string; terminated: boolean; nodeDeleted: boolean }[] = [];
    for (const machine of leaving) {
      const terminated = await fleet.remove(machine.instanceId);
      const nodeDeleted = machine.nodeName === undefined ? false : await deleteNodeOfMachine(config, nodes, machine.nodeName, machine.instanceId);
      removed.push({ instanceId: machine.instanceId, ...(machine.nodeName === undefined ? {} : { nodeName: machine.nodeName }), pool: machine.pool, terminated, nodeDeleted });
    }
    await services.store.appendEvents(
      cluster.tenantId,
      leaving.map((machine) =>
        clusterEvent('node.removed', cluster.id, {
          instanceId: machine.instanceId,
          ...(machine.nodeName === undefined ? {} : { nodeName: machine.nodeName }),
          group: { role: 'worker', pool: machine.pool },
          reason: machine.reason,
          drained: machine.drained,
          operationId: operation.id,
        }),
      ),
    );
    return { done: true, outputs: { removed } };
  });
  return result.done ? result.outputs : {};
}

/**
 * A fresh bootstrap token for the machines an operation adds (the one from provisioning expired long ago), stored in
 * the cluster and published where the machines read it, before Pulumi raises the groups: for workers when pools grow
 * or roll, for control plane machines too when the control plane rolls.
 */
export async function joinTokenStep(services: RemediationServices, input: unknown): Promise<Record<string, unknown>> {
  const result = await runStep<Record<string, unknown>>(services, input, 'join-token', async ({ cluster, operation }) => {
    const expiresAt = new Date(Date.now() + replacementTokenTtlMs(cluster.spec));
    const workers = operation.steps['await-nodes'] !== undefined || operation.steps['roll-machines'] !== undefined;
    const controlPlane = operation.steps['roll-control-plane'] !== undefined;
    const outputs: Record<string, unknown> = {};
    if (workers) outputs.worker = await publishJoinToken(services, cluster, 'worker', expiresAt, `Kiln: join token for ${operation.type} ${operation.id}`, 'join-token');
    if (controlPlane) outputs.controlPlane = await publishJoinToken(services, cluster, 'control-plane', expiresAt, `Kiln: control plane join token for ${operation.type} ${operation.id}`, 'join-token');
    return { done: true, outputs };
  });
  return result.done ? result.outputs : {};
}

interface PoolProgress extends Record<string, unknown> {
  pool: string;
  size: number;
  ready: number;
  /** Machines of the group that have no Ready node yet. */
  joining: string[];
}

/**
 * Waits until every pool has exactly its size of running machines, each a Ready node, up to the cluster's node
 * startup timeout after the infrastructure step; a machine that does not join fails the update with that reason.
 */
export async function awaitNodesStep(services: RemediationServices, input: unknown): Promise<PollResult> {
  const result = await runStep<Record<string, unknown>>(
    services,
    input,
    'await-nodes',
    async (context) => {
      const { cluster } = context;
      const groups = machineGroupsOf(cluster, 'await-nodes');
      const machines = (await services.inCluster(cluster).fleet.machines(groups)).filter((machine) => machine.state === 'running' || machine.state === 'pending');
      const nodes = await listNodes(await clusterApi(services, cluster, 'await-nodes'));
      const pools = cluster.spec.nodePools.map((pool): PoolProgress => {
        const members = machines.filter((machine) => machine.group.role === 'worker' && machine.group.pool === pool.name);
        const ready = members.filter((machine) => nodes.some((node) => node.ready && instanceIdOf(node.providerID) === machine.instanceId));
        return { pool: pool.name, size: pool.size, ready: ready.length, joining: members.filter((machine) => !ready.includes(machine)).map((machine) => machine.instanceId) };
      });
      if (pools.every((pool) => pool.ready === pool.size && pool.joining.length === 0)) return { done: true, outputs: { pools } };
      const since = context.operation.steps.infrastructure?.finishedAt ?? context.operation.steps['await-nodes']?.startedAt ?? new Date().toISOString();
      const waitedMinutes = (Date.now() - Date.parse(since)) / 60_000;
      if (waitedMinutes >= cluster.spec.nodeHealth.nodeStartupTimeoutMinutes) {
        const short = pools.filter((pool) => pool.ready !== pool.size || pool.joining.length > 0).map((pool) => `${pool.pool} has ${pool.ready} of ${pool.size} Ready (${pool.joining.length} not joined: ${pool.joining.join(', ') || 'none launched'})`);
        throw new StepError('await-nodes', `The node pools did not reach their size within nodeStartupTimeoutMinutes (${cluster.spec.nodeHealth.nodeStartupTimeoutMinutes}): ${short.join('; ')}.`, false);
      }
      return { done: false, progress: { pools, waitedMinutes: Math.floor(waitedMinutes) } };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}

/** One machine of a pool whose launch template changed, and how far its replacement got. */
interface RollingMachine extends Record<string, unknown> {
  instanceId: string;
  pool: string;
  nodeName?: string;
  /** What changed: the pool's instance type, or the Kubernetes release (its kubelet runs another). */
  reason: 'InstanceTypeChanged' | 'KubernetesUpgrade';
  state: 'waiting' | 'surging' | 'draining' | 'replaced';
  /** The group's machines when the surge began: the replacement is the one not among them. */
  before?: string[];
  surgedAt?: string;
  replacement?: { instanceId: string; nodeName: string; readyAt: string };
  drainStartedAt?: string;
  evicted?: number;
  blocked?: { pod: string; reason: string }[];
}

interface RollOutputs extends Record<string, unknown> {
  machines: RollingMachine[];
}

/**
 * Replaces, one at a time, every machine of a pool that runs another instance type than the pool's, or whose kubelet
 * is not the release the order's minor installs (its launch template changed; the control plane rolled first): the group grows by one (its maximum too, for the surge), the new machine joins from the new
 * template and is Ready, then the old one is cordoned and drained (PodDisruptionBudgets, the drain deadline) and
 * removed with the desired capacity lowered, the group's maximum back to the order's. The pool never has fewer
 * Ready nodes than its size. A surge machine that does not join within the node startup timeout fails the update.
 */
export async function rollMachinesStep(services: RemediationServices, input: unknown): Promise<PollResult> {
  const result = await runStep<RollOutputs>(
    services,
    input,
    'roll-machines',
    async (context) => {
      const { cluster, operation } = context;
      const groups = machineGroupsOf(cluster, 'roll-machines');
      const { fleet } = services.inCluster(cluster);
      const live = (await fleet.machines(groups)).filter((machine) => machine.state === 'running' || machine.state === 'pending');
      const config = await clusterApi(services, cluster, 'roll-machines');
      const nodes = await listNodes(config);
      const nodeOf = (instanceId: string) => nodes.find((node) => instanceIdOf(node.providerID) === instanceId);
      const earlier = (context.operation.steps['roll-machines']?.outputs ?? {}) as Partial<RollOutputs>;
      const release = kubernetesReleaseOf(cluster.spec.kubernetesVersion)?.patch;
      const machines: RollingMachine[] =
        earlier.machines ??
        live.flatMap((machine) => {
          const { group } = machine;
          const pool = group.role === 'worker' ? cluster.spec.nodePools.find((candidate) => candidate.name === group.pool) : undefined;
          if (pool === undefined) return [];
          const node = nodeOf(machine.instanceId);
          const reason =
            machine.instanceType !== undefined && machine.instanceType !== pool.instanceType
              ? 'InstanceTypeChanged'
              : node !== undefined && release !== undefined && node.kubeletVersion !== release
                ? 'KubernetesUpgrade'
                : undefined;
          if (reason === undefined) return [];
          return [{ instanceId: machine.instanceId, pool: pool.name, ...(node === undefined ? {} : { nodeName: node.name }), reason, state: 'waiting' as const }];
        });
      const current = machines.find((machine) => machine.state !== 'replaced');
      if (current === undefined) return { done: true, outputs: { machines } };
      const pool = cluster.spec.nodePools.find((candidate) => candidate.name === current.pool);
      const group = groups.pools[current.pool];
      if (pool === undefined || group === undefined) throw new StepError('roll-machines', `The pool ${current.pool} is gone from the order.`, false);
      const members = live.filter((machine) => machine.group.role === 'worker' && machine.group.pool === current.pool);
      const now = new Date().toISOString();
      const next = (changed: RollingMachine): RollOutputs => ({ machines: machines.map((machine) => (machine.instanceId === changed.instanceId ? changed : machine)) });

      if (current.state === 'waiting') {
        await fleet.resize(group, { max: (pool.max ?? pool.size) + 1, desired: members.length + 1 });
        return { done: false, progress: next({ ...current, state: 'surging', before: members.map((machine) => machine.instanceId), surgedAt: now }) };
      }
      if (current.state === 'surging') {
        const joined = members.find((machine) => !(current.before ?? []).includes(machine.instanceId) && nodeOf(machine.instanceId)?.ready === true);
        const joinedNode = joined === undefined ? undefined : nodeOf(joined.instanceId);
        if (joined !== undefined && joinedNode !== undefined) {
          return { done: false, progress: next({ ...current, state: 'draining', replacement: { instanceId: joined.instanceId, nodeName: joinedNode.name, readyAt: now }, drainStartedAt: now, evicted: 0 }) };
        }
        const waitedMinutes = (Date.now() - Date.parse(current.surgedAt ?? now)) / 60_000;
        if (waitedMinutes >= cluster.spec.nodeHealth.nodeStartupTimeoutMinutes) {
          throw new StepError('roll-machines', `The replacement of ${current.instanceId} did not become a Ready node within nodeStartupTimeoutMinutes (${cluster.spec.nodeHealth.nodeStartupTimeoutMinutes}).`, false);
        }
        return { done: false, progress: { machines } };
      }
      // Draining: the replacement is Ready; empty the old node (or wait out the drain deadline), then remove its machine.
      const pass: DrainPass = current.nodeName === undefined ? { gone: true } : await drainPass(config, current.nodeName, current.drainStartedAt ?? now);
      const evicted = (current.evicted ?? 0) + (pass.gone ? 0 : pass.evicted);
      const blocked = pass.gone ? [] : pass.blocked;
      if (!pass.gone && !pass.empty && !pass.timedOut) return { done: false, progress: next({ ...current, evicted, blocked }) };
      await fleet.remove(current.instanceId);
      await fleet.resize(group, { max: pool.max ?? pool.size });
      const nodeDeleted = current.nodeName === undefined ? false : await deleteNodeOfMachine(config, nodes, current.nodeName, current.instanceId);
      await services.store.appendEvents(cluster.tenantId, [
        clusterEvent('node.replaced', cluster.id, {
          instanceId: current.instanceId,
          ...(current.nodeName === undefined ? {} : { nodeName: current.nodeName }),
          group: { role: 'worker', pool: current.pool },
          reason: current.reason,
          operationId: operation.id,
          nodeDeleted,
          replacement: current.replacement,
        }),
      ]);
      const { blocked: _blocked, ...rest } = current;
      const replaced = next({ ...rest, state: 'replaced', evicted, ...(blocked.length === 0 ? {} : { blocked }) });
      return replaced.machines.every((machine) => machine.state === 'replaced') ? { done: true, outputs: replaced } : { done: false, progress: replaced };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}
