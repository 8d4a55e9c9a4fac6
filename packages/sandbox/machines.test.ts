import { randomBytes } from 'node:crypto';
import { V1Namespace, V1Pod, V1Secret } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ADMISSION_CONFIG_SCRIPT, ENCRYPTION_CONFIG_SCRIPT, ETCD_MEMBER_SCRIPT, admissionConfigurationFile, encryptionConfiguration, instanceIdOf, machineSecretPath, renderUserData, toYamlDocuments } from '#bootstrap';
import { ClusterSpec } from '#core';
import { type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { clientsFor, failureOf, manifest, runCniAgent, statusOf, waitUntil } from './kube/testing.ts';
import { apiServerAdmissionOf } from './cloud-init/validate.ts';
import { BARE_MACHINE, type MachineImage, SandboxMachines, groupsForOrder } from './machines.ts';

const CLUSTER_ID = 'cl_machines';
const CONFIG_PARAMETER = machineSecretPath(CLUSTER_ID, 'control-plane', 'encryption-config');
const spec = ClusterSpec.parse({ name: 'machines', region: 'eu-central-1', nodePools: [{ name: 'default', size: 0 }], encryption: { atRest: { provider: 'aescbc' } } });
const GROUP_NAMES = { controlPlane: `${CLUSTER_ID}-cp`, pools: {} };
const JOIN_TOKEN = 'abcdef.0123456789abcdef';
const material = new Map(['key-1', 'key-2'].map((name) => [name, randomBytes(32).toString('base64')]));

/** A control plane machine from Kiln's user data: the provider ID, the SSM agent and the scripts Run Command runs. */
const CONTROL_PLANE_IMAGE = { providerIdAtBoot: true, ssmManaged: true, scripts: [ENCRYPTION_CONFIG_SCRIPT, ETCD_MEMBER_SCRIPT] };

/** The account and region the machines boot in: Kiln's own account, the order's region. */
const SCOPE = { accountId: '000000000000', region: spec.region };

function configYaml(keys: readonly string[]): string {
  return toYamlDocuments([encryptionConfiguration(spec, keys.map((name) => ({ name, secret: material.get(name) ?? '' })))]);
}

describe('sandbox machines', () => {
  let cluster: SandboxCluster;
  let parameters: Map<string, string>;
  let machines: SandboxMachines;
  let instanceId: string;

  const write = () => machines.run(SCOPE, instanceId, [`${ENCRYPTION_CONFIG_SCRIPT} write ${CONFIG_PARAMETER}`]);
  const restart = () => machines.run(SCOPE, instanceId, [`${ENCRYPTION_CONFIG_SCRIPT} restart`]);
  /** Which key a Secret written now is stored under: the first key of the config the API server runs. */
  const writeKey = async (name: string) => {
    await clientsFor(cluster).core.createNamespacedSecret({ namespace: 'default', body: manifest(V1Secret, { metadata: { name }, stringData: { value: name } }) });
    return cluster.storedSecretKeys().find((stored) => stored.name === name)?.key;
  };

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'machines' });
    parameters = new Map([
      [machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), JOIN_TOKEN],
      [machineSecretPath(CLUSTER_ID, 'worker', 'join-token'), JOIN_TOKEN],
      [CONFIG_PARAMETER, configYaml(['key-1'])],
    ]);
    machines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
    machines.boot(CLUSTER_ID, cluster, spec, () => true, groupsForOrder(spec, { controlPlane: CONTROL_PLANE_IMAGE }, GROUP_NAMES));
    await waitUntil('the control plane machines to join', () => cluster.objects({ kind: 'Node' }).length === spec.controlPlane.replicas);
    const [first] = cluster.objects({ kind: 'Node', name: 'control-plane-0' });
    instanceId = instanceIdOf((first?.spec as { providerID?: string } | undefined)?.providerID) ?? '';
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('fails only the write of a config with exactly the targeted keys, in order', async () => {
    machines.failCommands('write', 1, { keys: ['key-2', 'key-1'] });

    parameters.set(CONFIG_PARAMETER, configYaml(['key-1', 'key-2']));
    expect(await write()).toEqual({ ok: true, output: '' });
    expect(machines.unusedCommandFaults()).toBe(1);

    parameters.set(CONFIG_PARAMETER, configYaml(['key-2', 'key-1']));
    expect(await write()).toMatchObject({ ok: false, output: expect.stringContaining('injected fault: write failed on control-plane-0') });
    expect(machines.unusedCommandFaults()).toBe(0);
    // The failed write left the disk as it was: a restart loads [key-1, key-2], which still encrypts with key-1.
    expect(await restart()).toMatchObject({ ok: true });
    expect(await writeKey('after-failed-write')).toBe('key-1');

    expect(await write()).toEqual({ ok: true, output: '' });
    expect(await restart()).toMatchObject({ ok: true });
    expect(await writeKey('after-write')).toBe('key-2');
  });

  it('fails only a restart while the config on disk has the targeted keys, leaving the API server on its old config', async () => {
    machines.failCommands('restart', 1, { keys: ['key-2', 'key-1'] });
    expect(await restart()).toMatchObject({ ok: true });
    expect(machines.unusedCommandFaults()).toBe(1);

    parameters.set(CONFIG_PARAMETER, configYaml(['key-2', 'key-1']));
    expect(await write()).toMatchObject({ ok: true });
    expect(await restart()).toMatchObject({ ok: false, output: expect.stringContaining('injected fault: restart failed') });
    expect(machines.unusedCommandFaults()).toBe(0);
    expect(await writeKey('after-failed-restart')).toBe('key-1');

    expect(await restart()).toMatchObject({ ok: true });
    expect(await writeKey('after-restart')).toBe('key-2');
  });

  it('still fails the next commands of a verb on any config when no target is given', async () => {
    machines.failCommands('write', 2);
    expect(await write()).toMatchObject({ ok: false });
    parameters.set(CONFIG_PARAMETER, configYaml(['key-2']));
    expect(await write()).toMatchObject({ ok: false });
    expect(await restart()).toMatchObject({ ok: true });
    expect(machines.unusedCommandFaults()).toBe(0);
    expect(await write()).toMatchObject({ ok: true });
  });

  it('gives a node no provider ID and takes no Run Command when the machine was not configured for them', async () => {
    const bare = await startSandboxCluster({ name: 'bare' });
    try {
      const bareMachines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
      bareMachines.boot(CLUSTER_ID, bare, spec, () => true, groupsForOrder(spec, { controlPlane: BARE_MACHINE }, GROUP_NAMES));
      await waitUntil('the bare machines to join', () => bare.objects({ kind: 'Node' }).length === spec.controlPlane.replicas);
      expect(bare.objects({ kind: 'Node' }).map((node) => (node.spec as { providerID?: string } | undefined)?.providerID)).toEqual([undefined, undefined, undefined]);
      expect(machines.managed(SCOPE, instanceId)).toBe(true);
      expect(machines.managed({ ...SCOPE, region: 'us-west-2' }, instanceId)).toBe(false);
    } finally {
      await bare.close();
    }
  });
});

describe('Run Command on a sandbox machine', () => {
  it('runs only the scripts its user data wrote', async () => {
    const cluster = await startSandboxCluster({ name: 'scriptless' });
    const parameters = new Map([[machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), JOIN_TOKEN]]);
    try {
      const machines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
      machines.boot(CLUSTER_ID, cluster, spec, () => true, groupsForOrder(spec, { controlPlane: { providerIdAtBoot: true, ssmManaged: true, scripts: [ETCD_MEMBER_SCRIPT] } }, GROUP_NAMES));
      await waitUntil('the machines to join', () => cluster.objects({ kind: 'Node' }).length === spec.controlPlane.replicas);
      const instanceId = instanceIdOf((cluster.objects({ kind: 'Node' })[0]?.spec as { providerID: string }).providerID) ?? '';
      expect(await machines.run(SCOPE, instanceId, [`${ENCRYPTION_CONFIG_SCRIPT} restart`])).toEqual({ ok: false, output: `${ENCRYPTION_CONFIG_SCRIPT}: No such file or directory` });
      // The script it has runs (and answers for itself).
      expect((await machines.run(SCOPE, instanceId, [`${ETCD_MEMBER_SCRIPT} remove control-plane-9`])).output).not.toContain('No such file');
    } finally {
      await cluster.close();
    }
  });
});

describe('sandbox Auto Scaling groups, join tokens and etcd', () => {
  const groupSpec = ClusterSpec.parse({ name: 'groups', region: 'eu-central-1', nodePools: [{ name: 'general', size: 2, min: 1 }] });
  const groups = { controlPlane: 'kiln-groups-cp', pools: { general: 'kiln-groups-general' } };
  const image = { ...CONTROL_PLANE_IMAGE, joinTokenTtlMs: 2 * 60 * 60_000 };
  let cluster: SandboxCluster;
  let parameters: Map<string, string>;
  let machines: SandboxMachines;

  const nodeNames = () => cluster.objects({ kind: 'Node' }).map((node) => (node.metadata as { name: string }).name).sort();
  const instanceOf = (nodeName: string) => machines.instancesOfCluster(CLUSTER_ID).find((instance) => instance.nodeName === nodeName && instance.state !== 'terminated');
  const readyNode = (name: string) =>
    cluster.objects({ kind: 'Node', name }).some((node) => (node.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const removeMember = (on: string, member: string) => machines.run(SCOPE, instanceOf(on)?.instanceId ?? '', [`${ETCD_MEMBER_SCRIPT} remove ${member}`]);

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'groups' });
    parameters = new Map([
      [machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), JOIN_TOKEN],
      [machineSecretPath(CLUSTER_ID, 'worker', 'join-token'), JOIN_TOKEN],
    ]);
    machines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
    machines.boot(CLUSTER_ID, cluster, groupSpec, () => true, groupsForOrder(groupSpec, { controlPlane: image, pools: { general: image } }, groups));
    await waitUntil('every machine to join', () => nodeNames().length === 5);
  });

  it('keeps a joined node NotReady, tainted not-ready, until a CNI agent runs on it; then every node turns Ready', async () => {
    const readyCondition = (name: string) =>
      (cluster.objects({ kind: 'Node', name })[0]?.status as { conditions?: { type: string; status: string; message: string }[] } | undefined)?.conditions?.find((c) => c.type === 'Ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(nodeNames().filter(readyNode)).toEqual([]);
    expect(readyCondition('general-0')).toMatchObject({ status: 'False', message: expect.stringMatching(/NetworkReady=false.*cni plugin not initialized/) });
    expect((cluster.objects({ kind: 'Node', name: 'general-0' })[0]?.spec as { taints?: { key: string }[] }).taints).toContainEqual(expect.objectContaining({ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }));

    runCniAgent(cluster);
    await waitUntil('every node to be Ready', () => nodeNames().every(readyNode));
  });

  afterEach(async () => {
    vi.useRealTimers();
    await cluster.close();
  });

  it('stores the join token as kubeadm init does, with the TTL of the rendered configuration', () => {
    const [secret] = cluster.objects({ kind: 'Secret', namespace: 'kube-system', name: 'bootstrap-token-abcdef' });
    const data = (secret?.data ?? {}) as Record<string, string>;
    const field = (key: string) => Buffer.from(data[key] ?? '', 'base64').toString();
    expect(secret?.type).toBe('bootstrap.kubernetes.io/token');
    expect(field('token-secret')).toBe('0123456789abcdef');
    expect(Date.parse(field('expiration')) - Date.now()).toBeGreaterThan(119 * 60_000);
    expect(Date.parse(field('expiration')) - Date.now()).toBeLessThanOrEqual(120 * 60_000);
  });

  it('launches a replacement in the same zone without lowering the desired capacity, and keeps the old Node', async () => {
    runCniAgent(cluster);
    const victim = instanceOf('general-0');
    expect(machines.terminateInGroup(SCOPE, victim?.instanceId ?? '', false)).toMatchObject({ state: 'terminated' });
    expect(machines.capacityOf(SCOPE, groups.pools.general)?.desired).toBe(2);
    await waitUntil('the replacement to be Ready', () => readyNode('general-2'));
    expect(instanceOf('general-2')?.zone).toBe(victim?.zone);
    expect(instanceOf('general-2')?.instanceId).not.toBe(victim?.instanceId);
    expect(machines.instancesOfGroups(SCOPE, [groups.pools.general])).toHaveLength(2);
    // Nothing in a kubeadm cluster deletes the Node of a machine that is gone.
    expect(nodeNames()).toContain('general-0');
    expect(readyNode('general-0')).toBe(false);
  });

  it('lowers the desired capacity and launches nothing when asked to', async () => {
    machines.terminateInGroup(SCOPE, instanceOf('general-1')?.instanceId ?? '', true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(machines.capacityOf(SCOPE, groups.pools.general)?.desired).toBe(1);
    expect(machines.instancesOfGroups(SCOPE, [groups.pools.general])).toHaveLength(1);
    // Not below the group's minimum size, as Auto Scaling refuses it.
    expect(machines.terminateInGroup(SCOPE, instanceOf('general-0')?.instanceId ?? '', true)).toEqual({ refused: expect.stringMatching(/min size constraint/) });
    expect(machines.updateGroup(SCOPE, groups.pools.general, { min: 0 })).toEqual({ ok: true });
    expect(machines.terminateInGroup(SCOPE, instanceOf('general-0')?.instanceId ?? '', true)).toMatchObject({ state: 'terminated' });
    expect(machines.capacityOf(SCOPE, groups.pools.general)).toEqual({ min: 0, max: 2, desired: 0 });
  });

  it('scales a group out and in as the stack declares it, terminating by its own policy, and deletes a group the stack dropped', async () => {
    runCniAgent(cluster);
    const declared = (general: number, extra?: number) =>
      groupsForOrder(ClusterSpec.parse({ ...groupSpec, nodePools: [{ name: 'general', size: general }, ...(extra === undefined ? [] : [{ name: 'extra', size: extra }])] }), { controlPlane: image, pools: { general: image, extra: image } }, groups);
    machines.boot(CLUSTER_ID, cluster, groupSpec, () => true, declared(4, 1));
    await waitUntil('the new machines to be Ready', () => ['general-2', 'general-3', 'extra-0'].every(readyNode));
    // Zones stay balanced: two groups of machines in a, one each in b and c.
    expect(machines.instancesOfGroups(SCOPE, [groups.pools.general]).map((instance) => instance.zone).sort()).toEqual(['eu-central-1a', 'eu-central-1a', 'eu-central-1b', 'eu-central-1c']);

    machines.boot(CLUSTER_ID, cluster, groupSpec, () => true, declared(3));
    // Auto Scaling picks the oldest machine of the fullest zone, drained or not; the stack's dropped group goes with its machines.
    expect(instanceOf('general-0')).toBeUndefined();
    expect(machines.instancesOfGroups(SCOPE, [groups.pools.general])).toHaveLength(3);
    expect(machines.instancesOfGroups(SCOPE, [`${groups.controlPlane}-pool-extra`])).toEqual([]);
    expect(machines.capacityOf(SCOPE, `${groups.controlPlane}-pool-extra`)).toBeUndefined();
    expect(readyNode('extra-0')).toBe(false);
  });

  it('registers each node with the labels and taints its join configuration gives the kubelet, and refuses labels the kubelet may not set', async () => {
    runCniAgent(cluster);
    const labelled: MachineImage = { ...image, nodeRegistration: { labels: { 'kiln.dev/pool': 'gpu', team: 'ml' }, taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] } };
    const forbidden: MachineImage = { ...image, nodeRegistration: { labels: { 'node-role.kubernetes.io/gpu': '' }, taints: [] } };
    const order = ClusterSpec.parse({ ...groupSpec, nodePools: [...groupSpec.nodePools, { name: 'gpu', size: 1 }, { name: 'bad', size: 1 }] });
    machines.boot(CLUSTER_ID, cluster, order, () => true, groupsForOrder(order, { controlPlane: image, pools: { general: image, gpu: labelled, bad: forbidden } }, groups));
    await waitUntil('the gpu machine to be Ready', () => readyNode('gpu-0'));
    const [node] = cluster.objects({ kind: 'Node', name: 'gpu-0' });
    expect((node?.metadata as { labels: Record<string, string> }).labels).toMatchObject({ 'kiln.dev/pool': 'gpu', team: 'ml' });
    expect((node?.spec as { taints: unknown[] }).taints).toContainEqual({ key: 'gpu', value: 'true', effect: 'NoSchedule' });
    await waitUntil('the bad machine to give up', () => machines.instancesOfGroups(SCOPE, [`${groups.controlPlane}-pool-bad`]).some((instance) => instance.bootError !== undefined));
    expect(machines.instancesOfGroups(SCOPE, [`${groups.controlPlane}-pool-bad`])[0]?.bootError).toMatch(/unknown 'kubernetes.io' or 'k8s.io' labels.*node-role.kubernetes.io\/gpu/);
  });

  it('refuses a machine the join token whose TTL has passed, and joins one with a fresh token the cluster holds', async () => {
    runCniAgent(cluster);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 3 * 60 * 60_000);
    // The token cleaner removes the expired token, and the bootstrap signer its signature on cluster-info.
    await waitUntil('the token cleaner to remove the expired token', () => cluster.objects({ kind: 'Secret', namespace: 'kube-system', name: 'bootstrap-token-abcdef' }).length === 0);
    await waitUntil('the signature to go', () => !JSON.stringify(cluster.objects({ kind: 'ConfigMap', namespace: 'kube-public', name: 'cluster-info' })).includes('jws-kubeconfig-abcdef'));
    cluster.clearRequestLog();
    machines.terminateInGroup(SCOPE, instanceOf('general-0')?.instanceId ?? '', false);
    // kubeadm retries discovery until its timeout (5 minutes by default), then gives up.
    await waitUntil('the replacement to try discovery', () => cluster.requestLog.some((entry) => entry.path === '/api/v1/namespaces/kube-public/configmaps/cluster-info'));
    vi.setSystemTime(Date.now() + 6 * 60_000);
    const refused = await (async () => {
      await waitUntil('the replacement to give up', () => machines.instancesOfGroups(SCOPE, [groups.pools.general]).some((instance) => instance.bootError !== undefined));
      return machines.instancesOfGroups(SCOPE, [groups.pools.general]).find((instance) => instance.bootError !== undefined);
    })();
    expect(refused?.bootError).toBe(
      'kubeadm join: error execution phase preflight: couldn\'t validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID "abcdef"',
    );
    expect(nodeNames()).not.toContain('general-2');

    const expiration = new Date(Date.now() + 60 * 60_000).toISOString();
    // As `kubeadm token create` makes it: for authentication and for signing cluster-info.
    const stringData = { 'token-id': 'ghijkl', 'token-secret': 'fedcba9876543210', expiration, 'usage-bootstrap-authentication': 'true', 'usage-bootstrap-signing': 'true' };
    await clientsFor(cluster).core.createNamespacedSecret({
      namespace: 'kube-system',
      body: manifest(V1Secret, { metadata: { name: 'bootstrap-token-ghijkl' }, type: 'bootstrap.kubernetes.io/token', stringData }),
    });
    parameters.set(machineSecretPath(CLUSTER_ID, 'worker', 'join-token'), 'ghijkl.fedcba9876543210');
    machines.terminateInGroup(SCOPE, refused?.instanceId ?? '', false);
    await waitUntil('the second replacement to be Ready', () => readyNode('general-3'));
  });

  it('removes a dead member through a live one, and refuses a removal once quorum is lost', async () => {
    machines.powerOff(instanceOf('control-plane-0')?.instanceId ?? '');
    expect(await removeMember('control-plane-1', 'control-plane-0')).toEqual({ ok: true, output: 'Member control-plane-0 removed from cluster' });
    expect(await removeMember('control-plane-1', 'control-plane-0')).toEqual({ ok: true, output: 'control-plane-0 is not an etcd member' });
    expect(machines.etcdOf(CLUSTER_ID).members).toEqual(['control-plane-1', 'control-plane-2']);

    machines.powerOff(instanceOf('control-plane-1')?.instanceId ?? '');
    expect(await removeMember('control-plane-2', 'control-plane-1')).toMatchObject({ ok: false, output: expect.stringContaining('no quorum') });
    expect(machines.etcdOf(CLUSTER_ID).members).toEqual(['control-plane-1', 'control-plane-2']);
    expect(machines.etcdOf(CLUSTER_ID).quorumViolations).toEqual([]);
  });

  it('refuses a removal that would leave the rest without quorum', async () => {
    machines.powerOff(instanceOf('control-plane-0')?.instanceId ?? '');
    // Removing a live member of three with one dead leaves one live of two.
    expect(await removeMember('control-plane-1', 'control-plane-2')).toMatchObject({ ok: false, output: expect.stringContaining('not enough started members') });
  });

  it('records a control plane that joins while etcd has no quorum as a violation of whoever let it', async () => {
    expect(machines.etcdOf(CLUSTER_ID).history.map((change) => `${change.change} ${change.member}`)).toEqual(['add control-plane-0', 'add control-plane-1', 'add control-plane-2']);
    machines.powerOff(instanceOf('control-plane-0')?.instanceId ?? '');
    machines.powerOff(instanceOf('control-plane-1')?.instanceId ?? '');
    machines.terminateInGroup(SCOPE, instanceOf('control-plane-2')?.instanceId ?? '', false);
    await waitUntil('the replacement to give up', () => machines.instancesOfGroups(SCOPE, [groups.controlPlane]).some((instance) => instance.bootError !== undefined));
    expect(machines.instancesOfGroups(SCOPE, [groups.controlPlane]).find((instance) => instance.bootError !== undefined)?.bootError).toMatch(/no quorum/);
    expect(machines.etcdOf(CLUSTER_ID).members).toHaveLength(3);
  });

  it('joins no kubelet newer than the control plane kubeadm-config names, and a control plane machine deploys that release', async () => {
    const [config] = cluster.objects({ kind: 'ConfigMap', namespace: 'kube-system', name: 'kubeadm-config' });
    expect(String((config?.data as Record<string, string>).ClusterConfiguration)).toContain(`kubernetesVersion: ${cluster.kubernetesVersion}`);
    const newer = 'v1.36.4';
    const shapes = groupsForOrder(groupSpec, { controlPlane: { ...image, kubeletVersion: newer }, pools: { general: image } }, groups);
    const pool = { name: `${CLUSTER_ID}-pool-next`, role: 'worker' as const, pool: 'next', min: 1, max: 1, desired: 1, image: { ...BARE_MACHINE, kubeletVersion: newer } };
    machines.boot(CLUSTER_ID, cluster, groupSpec, () => true, [...shapes, pool]);
    await waitUntil('the newer kubelet to give up', () => machines.instancesOfCluster(CLUSTER_ID).some((instance) => instance.bootError !== undefined));
    const [refused] = machines.instancesOfCluster(CLUSTER_ID).filter((instance) => instance.autoScalingGroup === pool.name);
    expect(refused?.bootError).toContain(`the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: "${newer}" Control plane version: "${cluster.kubernetesVersion}"`);

    // With kubeadm-config at the new release, a control plane machine of that release joins, runs it, and so does the next kubelet;
    // /version reports the oldest API server until every old one is gone.
    const older = cluster.kubernetesVersion;
    cluster.writeObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeadm-config', namespace: 'kube-system' }, data: { ClusterConfiguration: `kind: ClusterConfiguration\nkubernetesVersion: ${newer}\n` } }, 'test');
    expect(machines.updateGroup(SCOPE, groups.controlPlane, { max: 4, desired: 4 })).toEqual({ ok: true });
    await waitUntil('the new control plane machine to join', () => cluster.objects({ kind: 'Node' }).some((node) => (node.status as { nodeInfo?: { kubeletVersion?: string } } | undefined)?.nodeInfo?.kubeletVersion === newer));
    expect(cluster.kubernetesVersion).toBe(older);
    expect(machines.updateGroup(SCOPE, groups.controlPlane, { min: 1, desired: 1 })).toEqual({ ok: true });
    expect(cluster.kubernetesVersion).toBe(newer);
  });

  it('drops every request once no control plane machine runs an API server', async () => {
    await clientsFor(cluster).core.listNode();
    expect(machines.updateGroup(SCOPE, groups.controlPlane, { min: 0, desired: 0 })).toEqual({ ok: true });
    await expect(clientsFor(cluster).core.listNode()).rejects.toThrow();
    expect(cluster.requestLog.at(-1)).toMatchObject({ status: 0, fault: 'noApiServer' });
  });
});

describe('the admission configuration of a control plane machine', () => {
  const ORDER = ClusterSpec.parse({ name: 'admission', region: 'eu-central-1', nodePools: [{ name: 'default', size: 0 }] });
  const ADMISSION_PARAMETER = machineSecretPath(CLUSTER_ID, 'control-plane', 'admission-config');
  let cluster: SandboxCluster;
  let machines: SandboxMachines;
  let parameters: Map<string, string>;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'admission' });
    parameters = new Map([[machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), JOIN_TOKEN]]);
    machines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
  });

  afterEach(async () => {
    await cluster.close();
  });

  /** Boots the control plane from Kiln's rendered user data for the order, and returns its first machine. */
  async function bootControlPlane(order: ClusterSpec): Promise<string> {
    const apiServerAdmission = apiServerAdmissionOf(renderUserData(CLUSTER_ID, order, 'control-plane'));
    const scripts = [...CONTROL_PLANE_IMAGE.scripts, ADMISSION_CONFIG_SCRIPT];
    machines.boot(CLUSTER_ID, cluster, order, () => true, groupsForOrder(order, { controlPlane: { ...CONTROL_PLANE_IMAGE, scripts, ...(apiServerAdmission === undefined ? {} : { apiServerAdmission }) } }, GROUP_NAMES));
    await waitUntil('the control plane machines to join', () => cluster.objects({ kind: 'Node' }).length === order.controlPlane.replicas);
    const [first] = cluster.objects({ kind: 'Node', name: 'control-plane-0' });
    return instanceIdOf((first?.spec as { providerID?: string } | undefined)?.providerID) ?? '';
  }

  const plainPod = (name: string) => manifest(V1Pod, { metadata: { name }, spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] } });

  it('holds a namespace without labels to the defaults of the AdmissionConfiguration its user data writes, read as kube-apiserver starts', async () => {
    const instanceId = await bootControlPlane(ORDER);
    const { core } = clientsFor(cluster);
    await core.createNamespace({ body: manifest(V1Namespace, { metadata: { name: 'team' } }) });
    const refused = statusOf(await failureOf(core.createNamespacedPod({ namespace: 'team', body: plainPod('web') })));
    expect(refused).toMatchObject({ code: 403, message: expect.stringContaining('violates PodSecurity "restricted:latest"') as unknown });
    // kube-system is exempt by the same configuration.
    await core.createNamespacedPod({ namespace: 'kube-system', body: plainPod('agent') });
    // A restart reads the same file again.
    expect(await machines.run(SCOPE, instanceId, [`${ENCRYPTION_CONFIG_SCRIPT} restart`])).toMatchObject({ ok: true });
    expect(statusOf(await failureOf(core.createNamespacedPod({ namespace: 'team', body: plainPod('web') }))).code).toBe(403);
  });

  it("takes new defaults written by Kiln's script only when its API server restarts", async () => {
    const instanceId = await bootControlPlane(ORDER);
    const { core } = clientsFor(cluster);
    const baseline = ClusterSpec.parse({ ...ORDER, podSecurity: { enforce: 'baseline', warn: 'restricted' } });
    parameters.set(ADMISSION_PARAMETER, admissionConfigurationFile(baseline));
    expect(await machines.run(SCOPE, instanceId, [`${ADMISSION_CONFIG_SCRIPT} write ${ADMISSION_PARAMETER}`])).toEqual({ ok: true, output: '' });
    await core.createNamespace({ body: manifest(V1Namespace, { metadata: { name: 'team' } }) });
    // On disk, not loaded: the running API server still holds the defaults it started with.
    expect(statusOf(await failureOf(core.createNamespacedPod({ namespace: 'team', body: plainPod('web') }))).code).toBe(403);
    expect(await machines.run(SCOPE, instanceId, [`${ADMISSION_CONFIG_SCRIPT} restart`])).toEqual({ ok: true, output: 'kube-apiserver ready' });
    const created = await core.createNamespacedPodWithHttpInfo({ namespace: 'team', body: plainPod('web') });
    expect(created.headers.warning).toContain('would violate PodSecurity \\"restricted:latest\\"');
  });

  it('does not bring back an API server whose new admission configuration kube-apiserver refuses', async () => {
    const instanceId = await bootControlPlane(ORDER);
    parameters.set(ADMISSION_PARAMETER, admissionConfigurationFile(ORDER).replace('enforce: restricted', 'enforce: strict'));
    expect(await machines.run(SCOPE, instanceId, [`${ADMISSION_CONFIG_SCRIPT} write ${ADMISSION_PARAMETER}`])).toMatchObject({ ok: true });
    expect(await machines.run(SCOPE, instanceId, [`${ADMISSION_CONFIG_SCRIPT} restart`])).toEqual({
      ok: false,
      output: 'kube-apiserver did not become ready: PodSecurity invalid: [defaults.enforce: Invalid value: "strict": must be one of privileged, baseline, restricted]',
    });
  });

  it('does not start an API server whose admission configuration file is missing', async () => {
    const apiServerAdmission = { configFile: '/etc/kubernetes/kiln/admission-configuration.yaml', files: {} };
    machines.boot(CLUSTER_ID, cluster, ORDER, () => true, groupsForOrder(ORDER, { controlPlane: { ...CONTROL_PLANE_IMAGE, apiServerAdmission } }, GROUP_NAMES));
    await waitUntil('the first machine to give up', () => machines.instancesOfCluster(CLUSTER_ID).some((instance) => instance.bootError !== undefined));
    expect(machines.instancesOfCluster(CLUSTER_ID).find((instance) => instance.bootError !== undefined)?.bootError).toBe(
      'kube-apiserver did not start: unable to read admission control configuration from "/etc/kubernetes/kiln/admission-configuration.yaml" [open /etc/kubernetes/kiln/admission-configuration.yaml: no such file or directory]',
    );
  });
});
