import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { privilegeGainPolicy } from '#addons';
import { ENCRYPTION_CONFIG_SCRIPT, ETCD_MEMBER_SCRIPT, encryptionConfiguration, machineSecretPath, toYamlDocuments } from '#bootstrap';
import { ClusterSpec } from '#core';
import { type KubeObject, type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { TRACING_POLICY_CRD, clientsFor, waitUntil } from './kube/testing.ts';
import { SandboxMachines, groupsForOrder } from './machines.ts';

/** Container starts on the machines (API server restarts, crictl exec, control plane joins) go through runc under the cluster's TracingPolicies. */

const CLUSTER_ID = 'cl_runtime_security';
const spec = ClusterSpec.parse({ name: 'runtime-security', region: 'eu-central-1', nodePools: [{ name: 'default', size: 0 }], encryption: { atRest: { provider: 'aescbc' } } });
const GROUPS = { controlPlane: `${CLUSTER_ID}-cp`, pools: {} };
const SCOPE = { accountId: '000000000000', region: spec.region };
const IMAGE = { providerIdAtBoot: true, ssmManaged: true, scripts: [ENCRYPTION_CONFIG_SCRIPT, ETCD_MEMBER_SCRIPT] };
const CONFIG_PARAMETER = machineSecretPath(CLUSTER_ID, 'control-plane', 'encryption-config');

/** Any uid-0 setuid from inside a container killed: what Kiln's policy did before it looked at who asks. */
const KILL_EVERY_SETUID_ROOT: KubeObject = {
  apiVersion: 'cilium.io/v1alpha1',
  kind: 'TracingPolicy',
  metadata: { name: 'kill-every-setuid-root' },
  spec: {
    kprobes: [
      {
        call: 'sys_setuid',
        syscall: true,
        args: [{ index: 0, type: 'int' }],
        selectors: [{ matchArgs: [{ index: 0, operator: 'Equal', values: ['0'] }], matchNamespaces: [{ namespace: 'Pid', operator: 'NotIn', values: ['host_ns'] }], matchActions: [{ action: 'Sigkill' }] }],
      },
    ],
  },
};

describe('container starts on the machines under the TracingPolicies the cluster holds', () => {
  let cluster: SandboxCluster;
  let parameters: Map<string, string>;
  let machines: SandboxMachines;

  const instanceOf = (nodeName: string) => machines.instancesOfCluster(CLUSTER_ID).find((instance) => instance.nodeName === nodeName && instance.state !== 'terminated')?.instanceId ?? '';
  const restart = (nodeName: string) => machines.run(SCOPE, instanceOf(nodeName), [`${ENCRYPTION_CONFIG_SCRIPT} restart`]);
  const removeMember = (on: string, member: string) => machines.run(SCOPE, instanceOf(on), [`${ETCD_MEMBER_SCRIPT} remove ${member}`]);
  const controlPlaneNodes = () => cluster.objects({ kind: 'Node' }).map((node) => (node.metadata as { name: string }).name).sort();

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'runtime-security' });
    const key = { name: 'key-1', secret: Buffer.alloc(32, 7).toString('base64') };
    parameters = new Map([
      [machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), 'abcdef.0123456789abcdef'],
      [CONFIG_PARAMETER, toYamlDocuments([encryptionConfiguration(spec, [key])])],
    ]);
    machines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
    machines.boot(CLUSTER_ID, cluster, spec, () => true, groupsForOrder(spec, { controlPlane: IMAGE }, GROUPS));
    await waitUntil('the control plane machines to join', () => controlPlaneNodes().length === spec.controlPlane.replicas);
    // The Tetragon chart's CRD, then the policy, as the add-ons step applies them.
    cluster.writeObject(TRACING_POLICY_CRD, 'helm');
  });

  afterEach(async () => {
    await cluster.close();
  });

  it("leaves a machine's API server down when its restart is killed in runc's init, and serves again once a restart gets through", async () => {
    const single = await startSandboxCluster({ name: 'single' });
    try {
      const one = ClusterSpec.parse({ ...spec, controlPlane: { replicas: 1 } });
      const alone = new SandboxMachines((_scope, name) => parameters.get(name), 0);
      alone.boot(CLUSTER_ID, single, one, () => true, groupsForOrder(one, { controlPlane: IMAGE }, GROUPS));
      await waitUntil('the control plane machine to join', () => single.objects({ kind: 'Node' }).length === 1);
      single.writeObject(TRACING_POLICY_CRD, 'helm');
      single.writeObject(KILL_EVERY_SETUID_ROOT, 'kubectl');
      const instanceId = alone.instancesOfCluster(CLUSTER_ID)[0]?.instanceId ?? '';
      const killed = await alone.run(SCOPE, instanceId, [`${ENCRYPTION_CONFIG_SCRIPT} restart`]);
      expect(killed).toMatchObject({ ok: false, output: expect.stringContaining('kube-apiserver did not become ready: OCI runtime create failed for kube-system/kube-apiserver') });
      expect(killed.output).toContain('sys_setuid(0) killed (SIGKILL) by TracingPolicy kill-every-setuid-root');
      // Its only API server is down: nothing answers.
      await expect(clientsFor(single).core.listNode()).rejects.toThrow();
      single.deleteObject({ apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy', name: 'kill-every-setuid-root' });
      expect(await alone.run(SCOPE, instanceId, [`${ENCRYPTION_CONFIG_SCRIPT} restart`])).toEqual({ ok: true, output: 'kube-apiserver ready' });
      expect((await clientsFor(single).core.listNode()).items).toHaveLength(1);
    } finally {
      await single.close();
    }
  });

  it("fails crictl exec of etcdctl when runc's init is killed, and removes nothing", async () => {
    cluster.writeObject(KILL_EVERY_SETUID_ROOT, 'kubectl');
    machines.powerOff(instanceOf('control-plane-0'));
    const removal = await removeMember('control-plane-1', 'control-plane-0');
    expect(removal).toMatchObject({ ok: false, output: expect.stringContaining('crictl exec: OCI runtime exec failed for kube-system/etcd (crictl exec etcdctl)') });
    expect(machines.etcdOf(CLUSTER_ID).members).toContain('control-plane-0');
  });

  it('joins no control plane machine whose static pods runc cannot start', async () => {
    cluster.writeObject(KILL_EVERY_SETUID_ROOT, 'kubectl');
    const victim = instanceOf('control-plane-0');
    machines.terminateInGroup(SCOPE, victim, false);
    await waitUntil('the replacement to give up', () => machines.instancesOfCluster(CLUSTER_ID).some((instance) => instance.bootError !== undefined));
    expect(machines.instancesOfCluster(CLUSTER_ID).find((instance) => instance.bootError !== undefined)?.bootError).toMatch(/^kubeadm: the control plane's static pods did not start: OCI runtime create failed for kube-system\/etcd/);
    expect(machines.etcdOf(CLUSTER_ID).members).toEqual(['control-plane-0', 'control-plane-1', 'control-plane-2']);
  });

  it("restarts the API servers, runs etcdctl and replaces a control plane machine under Kiln's intrusion-detection policy", async () => {
    cluster.writeObject(privilegeGainPolicy() as unknown as KubeObject, 'kiln');
    for (const node of controlPlaneNodes()) expect(await restart(node), node).toEqual({ ok: true, output: 'kube-apiserver ready' });
    machines.powerOff(instanceOf('control-plane-0'));
    expect(await removeMember('control-plane-1', 'control-plane-0')).toEqual({ ok: true, output: 'Member control-plane-0 removed from cluster' });
    machines.terminateInGroup(SCOPE, instanceOf('control-plane-0'), false);
    await waitUntil('the replacement to join', () => controlPlaneNodes().includes('control-plane-3'));
    expect(machines.instancesOfCluster(CLUSTER_ID).filter((instance) => instance.bootError !== undefined)).toEqual([]);
    expect(machines.etcdOf(CLUSTER_ID).members.sort()).toEqual(['control-plane-1', 'control-plane-2', 'control-plane-3']);
  });
});
