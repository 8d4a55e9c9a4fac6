import { afterEach, describe, expect, it } from 'vitest';
import { machineSecretPath } from '#bootstrap';
import { ClusterSpec } from '#core';
import { type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { waitUntil } from './kube/testing.ts';
import { SandboxMachines, groupsForOrder } from './machines.ts';

const CLUSTER_ID = 'cl_etcd_join';
const GROUP_NAMES = { controlPlane: `${CLUSTER_ID}-cp`, pools: {} };
const IMAGE = { providerIdAtBoot: true, ssmManaged: false };

function order(replicas: number): ClusterSpec {
  return ClusterSpec.parse({ name: 'etcd-join', region: 'eu-central-1', controlPlane: { replicas }, nodePools: [{ name: 'default', size: 0 }] });
}

/**
 * Control plane machines of one order boot together, as Auto Scaling launches them: the first runs `kubeadm init`, the
 * others `kubeadm join --control-plane` at once, each adding its etcd member as a learner through etcd's one learner slot.
 */
describe('control plane machines joining at once', () => {
  let cluster: SandboxCluster | undefined;
  let alive = true;

  afterEach(async () => {
    alive = false;
    await cluster?.close();
  });

  async function bootControlPlane(replicas: number, bootMs: number, etcdApiCallTimeoutMs?: number): Promise<{ machines: SandboxMachines; target: SandboxCluster }> {
    alive = true;
    const target = await startSandboxCluster({ name: 'etcd-join' });
    cluster = target;
    const parameters = new Map([[machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), 'abcdef.0123456789abcdef']]);
    const machines = new SandboxMachines((_scope, name) => parameters.get(name), bootMs);
    if (etcdApiCallTimeoutMs !== undefined) machines.kubeadmEtcdApiCallTimeoutMs = etcdApiCallTimeoutMs;
    const spec = order(replicas);
    machines.boot(CLUSTER_ID, target, spec, () => alive, groupsForOrder(spec, { controlPlane: IMAGE }, GROUP_NAMES));
    return { machines, target };
  }

  it('join one learner at a time: each member is promoted only after the previous one has caught up', async () => {
    const bootMs = 150;
    const { machines, target } = await bootControlPlane(5, bootMs);
    await waitUntil('five control plane nodes', () => target.objects({ kind: 'Node' }).length === 5, 10_000);
    const { members, history, quorumViolations } = machines.etcdOf(CLUSTER_ID);
    expect(members).toHaveLength(5);
    expect(quorumViolations).toEqual([]);
    // The four joins took etcd's learner slot in turn, each for at least the time its etcd needed to start.
    const promotions = history.slice(1).map((change) => Date.parse(change.at));
    const gaps = promotions.slice(1).map((at, index) => at - (promotions[index] ?? 0));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(bootMs - 5);
  });

  it("fail with etcd's error when another machine's learner is not promoted within kubeadm's retries", async () => {
    // The first joiner's etcd takes a minute to start; the other's kubeadm gives up on the add first.
    const { machines } = await bootControlPlane(3, 60_000, 300);
    await waitUntil('a join to give up', () => machines.instancesOfCluster(CLUSTER_ID).some((instance) => instance.bootError !== undefined), 5000);
    const failed = machines.instancesOfCluster(CLUSTER_ID).filter((instance) => instance.bootError !== undefined);
    expect(failed).toHaveLength(1);
    expect(failed[0]?.bootError).toBe('kubeadm join: error execution phase control-plane-join/etcd: etcdserver: too many learner members in cluster');
    expect(machines.etcdOf(CLUSTER_ID).members).toEqual(['control-plane-0']);
  });
});
