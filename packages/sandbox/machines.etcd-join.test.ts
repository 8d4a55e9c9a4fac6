import { afterEach, describe, expect, it } from 'vitest';
import { ETCD_MEMBER_SCRIPT, machineSecretPath } from '#bootstrap';
import { ClusterSpec, cidrBlock, ipv4ToNumber } from '#core';
import { planSubnets } from '#infra';
import { type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { waitUntil } from './kube/testing.ts';
import { SandboxMachines, groupsForOrder } from './machines.ts';

const CLUSTER_ID = 'cl_etcd_join';
const GROUP_NAMES = { controlPlane: `${CLUSTER_ID}-cp`, pools: {} };
const IMAGE = { providerIdAtBoot: true, ssmManaged: true, scripts: [ETCD_MEMBER_SCRIPT] };

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

  async function bootControlPlane(replicas: number, bootMs: number, etcdApiCallTimeoutMs?: number, dyingLearners = 0): Promise<{ machines: SandboxMachines; target: SandboxCluster }> {
    alive = true;
    const target = await startSandboxCluster({ name: 'etcd-join' });
    cluster = target;
    const parameters = new Map([[machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), 'abcdef.0123456789abcdef']]);
    const machines = new SandboxMachines((_scope, name) => parameters.get(name), bootMs);
    if (etcdApiCallTimeoutMs !== undefined) machines.kubeadmEtcdApiCallTimeoutMs = etcdApiCallTimeoutMs;
    machines.powerOffAfterLearnerAdded(dyingLearners);
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
    expect(failed[0]?.bootError).toBe('kubeadm join: error execution phase etcd-join: etcdserver: too many learner members in cluster');
    expect(machines.etcdOf(CLUSTER_ID).members).toEqual(['control-plane-0']);
  });

  it('register each Node after its etcd member was promoted, with the instance\'s private address as InternalIP', async () => {
    const { machines, target } = await bootControlPlane(3, 50);
    await waitUntil('three control plane nodes', () => target.objects({ kind: 'Node' }).length === 3, 10_000);
    const subnets = planSubnets(order(3).network.vpcCidr, 3).privateCidrs.map(cidrBlock);
    for (const instance of machines.instancesOfCluster(CLUSTER_ID)) {
      const [node] = target.objects({ kind: 'Node', name: instance.nodeName ?? '' });
      const addresses = (node?.status as { addresses: { type: string; address: string }[] }).addresses;
      expect(addresses).toContainEqual({ type: 'InternalIP', address: instance.privateIp });
      // In the private subnet of its zone, past the four addresses AWS keeps.
      const subnet = subnets[['a', 'b', 'c'].indexOf(instance.zone.slice(-1))];
      expect(ipv4ToNumber(instance.privateIp) - (subnet?.first ?? 0)).toBeGreaterThanOrEqual(4);
      expect(ipv4ToNumber(instance.privateIp)).toBeLessThanOrEqual(subnet?.last ?? 0);
    }
    const members = machines.etcdOf(CLUSTER_ID);
    expect(members.history.map((change) => change.change)).toEqual(['add', 'add', 'add']);
    expect(members.learner).toBeUndefined();
  });

  it('keep the learner of a machine that died before its etcd started: unnamed, no Node, and every later join refused', async () => {
    const { machines, target } = await bootControlPlane(3, 100, 300, 1);
    await waitUntil('a join to give up', () => machines.instancesOfCluster(CLUSTER_ID).some((instance) => instance.bootError !== undefined), 5000);
    const { learner, members } = machines.etcdOf(CLUSTER_ID);
    const dead = machines.instancesOfCluster(CLUSTER_ID).find((instance) => instance.instanceId === learner?.instanceId);
    expect(dead?.state).toBe('stopped');
    expect(learner).toEqual({ instanceId: dead?.instanceId, peerUrl: `https://${dead?.privateIp ?? ''}:2380` });
    expect(members).toEqual(['control-plane-0']);
    expect(target.objects({ kind: 'Node' }).map((node) => (node.metadata as { name: string }).name)).toEqual(['control-plane-0']);
    const [refused] = machines.instancesOfCluster(CLUSTER_ID).filter((instance) => instance.bootError !== undefined);
    expect(refused?.bootError).toBe('kubeadm join: error execution phase etcd-join: etcdserver: too many learner members in cluster');
  });

  it('remove an unstarted learner by its peer address only, as etcdctl over `member list` finds it', async () => {
    // Two machines: control-plane-0 runs kubeadm init, control-plane-1 adds its learner and dies.
    const { machines } = await bootControlPlane(2, 100, 60_000, 1);
    await waitUntil('the learner of the dead machine', () => machines.instancesOfCluster(CLUSTER_ID).some((instance) => instance.state === 'stopped'), 5000);
    await waitUntil('the first machine to run etcd', () => machines.etcdOf(CLUSTER_ID).members.length === 1, 5000);
    const instances = machines.instancesOfCluster(CLUSTER_ID);
    const first = instances.find((instance) => instance.nodeName === 'control-plane-0');
    const dead = instances.find((instance) => instance.instanceId === machines.etcdOf(CLUSTER_ID).learner?.instanceId);
    const remove = (...args: string[]) => machines.run({ accountId: '000000000000', region: order(2).region }, first?.instanceId ?? '', [`${ETCD_MEMBER_SCRIPT} remove ${args.join(' ')}`]);
    // Its etcd never started: the name kubeadm gave it is not in `member list`.
    expect(await remove('control-plane-1')).toEqual({ ok: true, output: 'control-plane-1 is not an etcd member' });
    expect(machines.etcdOf(CLUSTER_ID).learner).toBeDefined();
    expect(await remove('-')).toMatchObject({ ok: false, output: expect.stringContaining('usage') });
    expect(await remove('-', dead?.privateIp ?? '')).toEqual({ ok: true, output: 'Member control-plane-1 removed from cluster' });
    expect(machines.etcdOf(CLUSTER_ID).learner).toBeUndefined();
    // A retried removal finds nothing and succeeds; the voting member stays.
    expect(await remove('control-plane-1', dead?.privateIp ?? '')).toEqual({ ok: true, output: `control-plane-1 or https://${dead?.privateIp ?? ''}:2380 is not an etcd member` });
    expect(machines.etcdOf(CLUSTER_ID).members).toEqual(['control-plane-0']);
  });
});
