import type { KubeConfig } from '@kubernetes/client-node';
import { type NodeSummary, applyObjects, cordonNode, deleteNode, drainNode, listNodes } from '#addons';
import { ETCD_MEMBER_SCRIPT, bootstrapTokenId, bootstrapTokenSecret, controlPlanePkiFiles, instanceIdOf, newBootstrapToken } from '#bootstrap';
import { type ClusterSpec, StepError, clusterEvent } from '#core';
import { clusterApi, controlPlaneTargets, machineGroupsOf, runStep, unsealClusterPki } from '#steps';
import type { ClusterRecord } from '#store';
import { groupKey } from './evaluate.ts';
import { type RemediationServices, targetOf } from './remediate.ts';

/**
 * How long a drain waits for evictions that PodDisruptionBudgets block. The
 * machine is unhealthy already, so its pods serve nobody: after the deadline
 * it is replaced anyway, and the step's outputs name the pods that blocked.
 */
export const DRAIN_TIMEOUT_MINUTES = 10;
/** How long the control plane machine running `etcdctl member remove` has for it. */
const ETCD_COMMAND_TIMEOUT_SECONDS = 120;

/** Where one drain pass left a node: gone (nothing to drain), or what it evicted and whether to stop waiting. */
export type DrainPass =
  | { gone: true }
  | { gone: false; empty: boolean; timedOut: boolean; evicted: number; blocked: { pod: string; reason: string }[] };

/**
 * Cordons the node and evicts its pods through the Eviction API, so PodDisruptionBudgets hold (DaemonSet and static
 * pods stay, as with kubectl drain), one pass; `timedOut` once the drain deadline after `startedAt` has passed with
 * pods still there. A node that does not exist is `gone`.
 */
export async function drainPass(config: KubeConfig, nodeName: string, startedAt: string): Promise<DrainPass> {
  if (!(await cordonNode(config, nodeName))) return { gone: true };
  const pass = await drainNode(config, nodeName);
  const empty = pass.remaining === 0;
  return { gone: false, empty, timedOut: !empty && Date.now() - Date.parse(startedAt) >= DRAIN_TIMEOUT_MINUTES * 60_000, evicted: pass.evicted.length, blocked: pass.blocked };
}

/**
 * Deletes a machine's Node (nothing else would: there is no cloud controller manager), unless the name now belongs to
 * another machine (a name reused). False when there was none of its own to delete.
 */
export async function deleteNodeOfMachine(config: KubeConfig, nodes: readonly NodeSummary[], nodeName: string, instanceId: string): Promise<boolean> {
  const node = nodes.find((candidate) => candidate.name === nodeName);
  const owner = instanceIdOf(node?.providerID);
  if (node === undefined || (owner !== undefined && owner !== instanceId)) return false;
  return deleteNode(config, nodeName);
}

/** A polling step's answer to the workflow: done, or look again after this many seconds. */
export interface PollResult extends Record<string, unknown> {
  ready: boolean;
  retryAfterSeconds: number;
}

/**
 * The join token a replacement boots with lives long enough for the machine
 * to join (its startup timeout, twice over, and at least an hour) and no
 * longer: a leaked token is worthless soon after.
 */
export function replacementTokenTtlMs(spec: Pick<ClusterSpec, 'nodeHealth'>): number {
  return Math.max(60, 2 * spec.nodeHealth.nodeStartupTimeoutMinutes) * 60_000;
}

/**
 * Mints a bootstrap token, stores it in the cluster (as `kubeadm token create` would) and publishes it where the
 * role's machines read their join token: machines launched from now on join with it until it expires.
 */
export async function publishJoinToken(
  services: RemediationServices,
  cluster: ClusterRecord,
  role: 'control-plane' | 'worker',
  expiresAt: Date,
  description: string,
  step: string,
): Promise<{ joinTokenId: string; joinTokenExpiresAt: string }> {
  const token = newBootstrapToken();
  await applyObjects(await clusterApi(services, cluster, step), [bootstrapTokenSecret(token, expiresAt, description)]);
  const { machineSecrets } = services.inCluster(cluster);
  // A control plane machine joins with the cluster's CA and service-account keys, withdrawn when the last join ended.
  if (role === 'control-plane') {
    for (const [file, value] of Object.entries(controlPlanePkiFiles(await unsealClusterPki(services, cluster, step)))) {
      await machineSecrets.publish(cluster.id, 'control-plane', `pki/${file}`, value, cluster.clusterKeyArn);
    }
  }
  // The token last: machines start joining as soon as they see it.
  await machineSecrets.publish(cluster.id, role, 'join-token', token, cluster.clusterKeyArn);
  return { joinTokenId: bootstrapTokenId(token), joinTokenExpiresAt: expiresAt.toISOString() };
}

interface DrainOutputs extends Record<string, unknown> {
  drained: boolean;
  evicted: number;
  blocked?: { pod: string; reason: string }[];
  skipped?: string;
}

/**
 * Cordons the machine's node and evicts its pods through the Eviction API,
 * so PodDisruptionBudgets hold (DaemonSet and static pods stay, as with
 * kubectl drain), one pass per call; blocked evictions are tried again on the
 * next call until the drain deadline. A machine that is gone, or never
 * became a node, has nothing to drain.
 */
export async function drainStep(services: RemediationServices, input: unknown): Promise<PollResult> {
  const result = await runStep<DrainOutputs>(
    services,
    input,
    'drain',
    async (context) => {
      const target = targetOf(context.operation, 'drain');
      if (target.nodeName === undefined) return { done: true, outputs: { drained: false, evicted: 0, skipped: 'The machine never became a node.' } };
      if (target.reason === 'MachineGone') return { done: true, outputs: { drained: false, evicted: 0, skipped: 'The machine is gone; its pods went with it.' } };
      const config = await clusterApi(services, context.cluster, 'drain');
      const pass = await drainPass(config, target.nodeName, context.operation.steps.drain?.startedAt ?? new Date().toISOString());
      if (pass.gone) return { done: true, outputs: { drained: false, evicted: 0, skipped: 'The node is gone.' } };
      const earlier = (context.operation.steps.drain?.outputs ?? {}) as Partial<DrainOutputs>;
      const evicted = (earlier.evicted ?? 0) + pass.evicted;
      if (pass.empty) return { done: true, outputs: { drained: true, evicted } };
      if (pass.timedOut) return { done: true, outputs: { drained: false, evicted, blocked: pass.blocked } };
      return { done: false, progress: { drained: false, evicted, blocked: pass.blocked } };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}

interface ReplaceOutputs extends Record<string, unknown> {
  etcdMemberRemoved: boolean;
  terminated: boolean;
  terminatedAt?: string;
  previousInstanceIds?: string[];
  joinTokenId?: string;
  joinTokenExpiresAt?: string;
}

/**
 * Removes a control plane machine's etcd member through another control plane machine with a Ready node (etcd's
 * strict reconfiguration check refuses a removal that would lose quorum, and the step fails with its answer). The
 * member is found by the node's name or by the machine's address (the advertise address in the peer URL kubeadm gave
 * it: its Node's InternalIP, else its private address as EC2 describes it): a machine that died while kubeadm joined
 * it has a learner that never started, which etcd lists without a name, and which would hold etcd's one learner slot
 * against every later join. A machine that never became a node may itself be one that such a learner kept out, left
 * by a machine its Auto Scaling group has replaced already (EC2 health checks): so every learner at no address of
 * the group's other machines goes too. False when nothing was there to ask etcd about.
 */
export async function removeEtcdMember(services: RemediationServices, cluster: ClusterRecord, target: { instanceId: string; nodeName?: string }, step: string): Promise<boolean> {
  const nodes = await listNodes(await clusterApi(services, cluster, step));
  const ownNode = nodes.find((node) => {
    const owner = instanceIdOf(node.providerID);
    return owner === target.instanceId || (owner === undefined && node.name === target.nodeName);
  });
  const neverANode = ownNode === undefined && target.nodeName === undefined;
  const groupMachines = (await services.inCluster(cluster).fleet.machines(machineGroupsOf(cluster, step))).filter((machine) => machine.group.role === 'control-plane');
  const address = ownNode?.internalIP ?? groupMachines.find((machine) => machine.instanceId === target.instanceId)?.privateIp;
  // The addresses of the machines that stay: none of their learners is touched.
  const kept = neverANode ? groupMachines.flatMap((machine) => (machine.instanceId === target.instanceId || machine.privateIp === undefined ? [] : [machine.privateIp])) : [];
  if (target.nodeName === undefined && address === undefined && kept.length === 0) return false;
  // etcdctl runs on a machine of the group whose Node is Ready: a Node alone (anyone with cluster-admin writes one) names no machine.
  const readyPeers = controlPlaneTargets(groupMachines, nodes.filter((node) => node.role === 'control-plane' && node.ready && node.name !== target.nodeName));
  const peer = [...readyPeers.values()].find((instanceId) => instanceId !== target.instanceId);
  const machine = target.nodeName ?? target.instanceId;
  if (peer === undefined) throw new StepError(step, `No healthy control plane machine is left to remove the etcd member of ${machine} through.`, false);
  const etcdctl = async (command: string[]) => {
    const outcome = await services.inCluster(cluster).machineCommands.run(peer, [ETCD_MEMBER_SCRIPT, ...command], ETCD_COMMAND_TIMEOUT_SECONDS);
    if (!outcome.ok) throw new StepError(step, `etcd did not remove the member of ${machine}: ${outcome.output}`, false);
  };
  if (target.nodeName !== undefined || address !== undefined) await etcdctl(['remove', target.nodeName ?? '-', ...(address === undefined ? [] : [address])]);
  if (kept.length > 0) await etcdctl(['prune-learners', ...kept]);
  return true;
}

/**
 * Replaces the machine: a control plane machine's etcd member goes first, so
 * the replacement joins a healthy membership; then a fresh bootstrap token
 * (the one from provisioning expired long ago) is stored in the cluster and
 * published where the machines read it; then the machine is terminated
 * through its Auto Scaling group, which launches the replacement at the same
 * capacity. A machine that is gone needs only its etcd member removed.
 */
export async function replaceStep(services: RemediationServices, input: unknown): Promise<ReplaceOutputs> {
  const result = await runStep<ReplaceOutputs>(services, input, 'replace', async (context) => {
    const { cluster } = context;
    const target = targetOf(context.operation, 'replace');
    // A control plane machine that never became a node may still hold an etcd member (a learner its death left behind).
    const etcdMemberRemoved = target.group.role === 'control-plane' && (await removeEtcdMember(services, cluster, target, 'replace'));
    if (target.reason === 'MachineGone') return { done: true, outputs: { etcdMemberRemoved, terminated: false } };

    const groups = machineGroupsOf(cluster, 'replace');
    const { fleet } = services.inCluster(cluster);
    const expiresAt = new Date(Date.now() + replacementTokenTtlMs(cluster.spec));
    const { joinTokenId } = await publishJoinToken(services, cluster, target.group.role, expiresAt, `Kiln: join token for the replacement of ${target.instanceId}`, 'replace');

    const previousInstanceIds = (await fleet.machines(groups)).filter((machine) => groupKey(machine.group) === groupKey(target.group)).map((machine) => machine.instanceId);
    const terminatedAt = new Date().toISOString();
    const terminated = await fleet.terminate(target.instanceId);
    return {
      done: true,
      outputs: { etcdMemberRemoved, terminated, terminatedAt, previousInstanceIds, joinTokenId, joinTokenExpiresAt: expiresAt.toISOString() },
    };
  });
  if (!result.done) throw new StepError('replace', 'The replacement did not finish.', true);
  return result.outputs;
}

/**
 * Waits for the Auto Scaling group's new machine to become a Ready node, up
 * to the cluster's node startup timeout after the termination; a replacement
 * that does not join fails the remediation with that reason.
 */
export async function awaitReplacementStep(services: RemediationServices, input: unknown): Promise<PollResult> {
  const result = await runStep<Record<string, unknown>>(
    services,
    input,
    'await-replacement',
    async (context) => {
      const { cluster } = context;
      const target = targetOf(context.operation, 'await-replacement');
      const replaced = context.outputsOf('replace') as Partial<ReplaceOutputs>;
      if (replaced.terminatedAt === undefined) return { done: true, outputs: { skipped: 'Nothing was terminated.' } };
      const groups = machineGroupsOf(cluster, 'await-replacement');
      const previous = new Set(replaced.previousInstanceIds ?? []);
      const launched = (await services.inCluster(cluster).fleet.machines(groups))
        .filter((machine) => groupKey(machine.group) === groupKey(target.group) && !previous.has(machine.instanceId))
        .map((machine) => machine.instanceId);
      const joined = (await listNodes(await clusterApi(services, cluster, 'await-replacement'))).find((node) => {
        const instanceId = instanceIdOf(node.providerID);
        return node.ready && instanceId !== undefined && launched.includes(instanceId);
      });
      if (joined !== undefined) return { done: true, outputs: { instanceId: instanceIdOf(joined.providerID), nodeName: joined.name } };
      const waitedMinutes = (Date.now() - Date.parse(replaced.terminatedAt)) / 60_000;
      if (waitedMinutes >= cluster.spec.nodeHealth.nodeStartupTimeoutMinutes) {
        const seen = launched.length === 0 ? 'The group launched no machine' : `Its new machine ${launched.join(', ')} did not become a Ready node`;
        throw new StepError(
          'await-replacement',
          `${seen} within nodeStartupTimeoutMinutes (${cluster.spec.nodeHealth.nodeStartupTimeoutMinutes}) of terminating ${target.instanceId}.`,
          false,
        );
      }
      return { done: false, progress: { launched, waitedMinutes: Math.floor(waitedMinutes) } };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}

/**
 * Deletes the old machine's Node (nothing else would: there is no cloud
 * controller manager) and says what replaced it: `node.replaced`, or
 * `node.removed` for a machine that was already gone.
 */
export async function retireNodeStep(services: RemediationServices, input: unknown): Promise<Record<string, unknown>> {
  const result = await runStep<Record<string, unknown>>(services, input, 'retire', async (context) => {
    const { cluster, operation } = context;
    const target = targetOf(context.operation, 'retire');
    const replacement = context.outputsOf('await-replacement') as { instanceId?: string; nodeName?: string };
    let nodeDeleted = false;
    if (target.nodeName !== undefined) {
      const config = await clusterApi(services, cluster, 'retire');
      nodeDeleted = await deleteNodeOfMachine(config, await listNodes(config), target.nodeName, target.instanceId);
    }
    const event =
      replacement.instanceId === undefined
        ? clusterEvent('node.removed', cluster.id, { ...target, operationId: operation.id, nodeDeleted })
        : clusterEvent('node.replaced', cluster.id, { ...target, operationId: operation.id, replacement: { instanceId: replacement.instanceId, nodeName: replacement.nodeName } });
    await services.store.appendEvents(cluster.tenantId, [event]);
    return { done: true, outputs: { nodeDeleted, ...(replacement.instanceId === undefined ? {} : { replacedBy: replacement }) } };
  });
  return result.done ? result.outputs : {};
}
