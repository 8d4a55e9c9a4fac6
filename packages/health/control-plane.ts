import { parse, stringify } from 'yaml';
import { applyObjects, listNodes, readObject } from '#addons';
import { instanceIdOf } from '#bootstrap';
import { StepError, clusterEvent, isRecord, kubernetesReleaseOf } from '#core';
import { clusterApi, machineGroupsOf, runStep } from '#steps';
import type { ClusterRecord } from '#store';
import type { RemediationServices } from './remediate.ts';
import { type DrainPass, type PollResult, deleteNodeOfMachine, drainPass, removeEtcdMember } from './replace.ts';

/** Why the control plane's machines roll: a Kubernetes release to run, or certificates to renew. */
export type ControlPlaneRollReason = 'KubernetesUpgrade' | 'CertificateRenewal';

/** One control plane machine being replaced, and how far its replacement got. */
export interface RollingControlPlaneMachine extends Record<string, unknown> {
  instanceId: string;
  nodeName?: string;
  /** What its kubelet reported when the roll began. */
  kubeletVersion?: string;
  state: 'waiting' | 'surging' | 'draining' | 'replaced';
  /** The group's machines when the surge began: the replacement is the one not among them. */
  before?: string[];
  surgedAt?: string;
  replacement?: { instanceId: string; nodeName: string; kubeletVersion: string; readyAt: string };
  drainStartedAt?: string;
  evicted?: number;
  etcdMemberRemoved?: boolean;
}

interface ControlPlaneRollOutputs extends Record<string, unknown> {
  reason: ControlPlaneRollReason;
  /** The release the control plane runs at the end (kubeadm-config's kubernetesVersion). */
  kubernetesVersion: string;
  machines: RollingControlPlaneMachine[];
}

const KUBEADM_CONFIG = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeadm-config', namespace: 'kube-system' } };

/**
 * Points kubeadm-config's ClusterConfiguration at the release the order asks for, as `kubeadm upgrade apply` does:
 * a control plane machine that joins from now on deploys that release (kubeadm join reads it), and kubeadm refuses a
 * kubelet newer than it. Returns the release it names now.
 */
async function pointKubeadmConfigAt(services: RemediationServices, cluster: ClusterRecord, release: string): Promise<string> {
  const config = await clusterApi(services, cluster, 'roll-control-plane');
  const current = (await readObject(config, KUBEADM_CONFIG)) as { data?: Record<string, string> };
  const text = current.data?.ClusterConfiguration;
  const parsed: unknown = text === undefined ? undefined : parse(text);
  if (!isRecord(parsed)) throw new StepError('roll-control-plane', 'The kubeadm-config ConfigMap has no ClusterConfiguration.', false);
  if (parsed.kubernetesVersion === release) return release;
  await applyObjects(config, [{ ...KUBEADM_CONFIG, data: { ...current.data, ClusterConfiguration: stringify({ ...parsed, kubernetesVersion: release }) } }]);
  return release;
}

/**
 * Replaces the control plane machines one at a time, keeping etcd's quorum and the API server behind the load
 * balancer throughout: for an upgrade those whose kubelet is not the order's release (after kubeadm-config names it),
 * for a certificate renewal every one (kubeadm makes a machine's certificates when it joins, for a year). The group
 * grows by one (its maximum too), the new machine joins as a control plane member and its node is Ready; then the old
 * node is cordoned and drained, its etcd member removed through a peer, its machine terminated with the desired
 * capacity lowered, its Node deleted, and the group's bounds go back to the replica count. A surge machine that does
 * not join within the node startup timeout fails the operation with the old machines still serving.
 */
export async function rollControlPlaneStep(services: RemediationServices, input: unknown): Promise<PollResult> {
  const result = await runStep<ControlPlaneRollOutputs>(
    services,
    input,
    'roll-control-plane',
    async (context) => {
      const { cluster, operation } = context;
      const groups = machineGroupsOf(cluster, 'roll-control-plane');
      const { fleet } = services.inCluster(cluster);
      const members = (await fleet.machines(groups)).filter((machine) => machine.group.role === 'control-plane' && (machine.state === 'running' || machine.state === 'pending'));
      const config = await clusterApi(services, cluster, 'roll-control-plane');
      const nodes = await listNodes(config);
      const nodeOf = (instanceId: string) => nodes.find((node) => instanceIdOf(node.providerID) === instanceId);
      const replicas = cluster.spec.controlPlane.replicas;
      const earlier = (context.operation.steps['roll-control-plane']?.outputs ?? {}) as Partial<ControlPlaneRollOutputs>;
      let outputs: ControlPlaneRollOutputs;
      if (earlier.machines === undefined) {
        const release = kubernetesReleaseOf(cluster.spec.kubernetesVersion)?.patch;
        if (release === undefined) throw new StepError('roll-control-plane', `Kubernetes ${cluster.spec.kubernetesVersion} is not a release Kiln knows.`, false);
        const reason: ControlPlaneRollReason = operation.type === 'renew-certificates' ? 'CertificateRenewal' : 'KubernetesUpgrade';
        const kubernetesVersion = await pointKubeadmConfigAt(services, cluster, release);
        const rolling = members.filter((machine) => reason === 'CertificateRenewal' || nodeOf(machine.instanceId)?.kubeletVersion !== release);
        outputs = {
          reason,
          kubernetesVersion,
          machines: rolling.map((machine) => {
            const node = nodeOf(machine.instanceId);
            return { instanceId: machine.instanceId, ...(node === undefined ? {} : { nodeName: node.name, kubeletVersion: node.kubeletVersion }), state: 'waiting' };
          }),
        };
      } else {
        outputs = earlier as ControlPlaneRollOutputs;
      }
      const current = outputs.machines.find((machine) => machine.state !== 'replaced');
      if (current === undefined) return { done: true, outputs };
      const now = new Date().toISOString();
      const next = (changed: RollingControlPlaneMachine): ControlPlaneRollOutputs => ({
        ...outputs,
        machines: outputs.machines.map((machine) => (machine.instanceId === changed.instanceId ? changed : machine)),
      });

      if (current.state === 'waiting') {
        await fleet.resize(groups.controlPlane, { max: replicas + 1, desired: members.length + 1 });
        return { done: false, progress: next({ ...current, state: 'surging', before: members.map((machine) => machine.instanceId), surgedAt: now }) };
      }
      if (current.state === 'surging') {
        const joined = members.find((machine) => !(current.before ?? []).includes(machine.instanceId) && nodeOf(machine.instanceId)?.ready === true);
        const joinedNode = joined === undefined ? undefined : nodeOf(joined.instanceId);
        if (joined !== undefined && joinedNode !== undefined) {
          const replacement = { instanceId: joined.instanceId, nodeName: joinedNode.name, kubeletVersion: joinedNode.kubeletVersion, readyAt: now };
          return { done: false, progress: next({ ...current, state: 'draining', replacement, drainStartedAt: now, evicted: 0 }) };
        }
        const waitedMinutes = (Date.now() - Date.parse(current.surgedAt ?? now)) / 60_000;
        if (waitedMinutes >= cluster.spec.nodeHealth.nodeStartupTimeoutMinutes) {
          throw new StepError(
            'roll-control-plane',
            `The replacement of control plane machine ${current.instanceId} did not become a Ready node within nodeStartupTimeoutMinutes (${cluster.spec.nodeHealth.nodeStartupTimeoutMinutes}); the old machines still serve.`,
            false,
          );
        }
        return { done: false, progress: outputs };
      }
      // Draining: the replacement is a Ready member; empty the old node (or wait out the drain deadline), then let it go.
      // A machine that had no node when the roll began may have one now.
      const nodeName = current.nodeName ?? nodeOf(current.instanceId)?.name;
      const pass: DrainPass = nodeName === undefined ? { gone: true } : await drainPass(config, nodeName, current.drainStartedAt ?? now);
      const evicted = (current.evicted ?? 0) + (pass.gone ? 0 : pass.evicted);
      if (!pass.gone && !pass.empty && !pass.timedOut) return { done: false, progress: next({ ...current, evicted }) };
      // Without a node it may still hold an etcd member: a learner its death left behind, found by its address.
      const etcdMemberRemoved = await removeEtcdMember(services, cluster, { instanceId: current.instanceId, ...(nodeName === undefined ? {} : { nodeName }) }, 'roll-control-plane');
      await fleet.remove(current.instanceId);
      await fleet.resize(groups.controlPlane, { max: replicas });
      const nodeDeleted = nodeName === undefined ? false : await deleteNodeOfMachine(config, nodes, nodeName, current.instanceId);
      await services.store.appendEvents(cluster.tenantId, [
        clusterEvent('node.replaced', cluster.id, {
          instanceId: current.instanceId,
          ...(nodeName === undefined ? {} : { nodeName }),
          group: { role: 'control-plane' },
          reason: outputs.reason,
          operationId: operation.id,
          nodeDeleted,
          replacement: current.replacement,
        }),
      ]);
      const replaced = next({ ...current, ...(nodeName === undefined ? {} : { nodeName }), state: 'replaced', evicted, etcdMemberRemoved });
      return replaced.machines.every((machine) => machine.state === 'replaced') ? { done: true, outputs: replaced } : { done: false, progress: replaced };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}
