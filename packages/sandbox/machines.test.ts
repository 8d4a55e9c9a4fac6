import { randomBytes } from 'node:crypto';
import { V1Secret } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENCRYPTION_CONFIG_SCRIPT, encryptionConfiguration, instanceIdOf, machineSecretPath, toYamlDocuments } from '#bootstrap';
import { ClusterSpec } from '#core';
import { type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { clientsFor, manifest, waitUntil } from './kube/testing.ts';
import { BARE_MACHINE, SandboxMachines } from './machines.ts';

const CLUSTER_ID = 'cl_machines';
const CONFIG_PARAMETER = machineSecretPath(CLUSTER_ID, 'control-plane', 'encryption-config');
const spec = ClusterSpec.parse({ name: 'machines', region: 'eu-central-1', nodePools: [{ name: 'default', size: 0 }], encryption: { atRest: { provider: 'aescbc' } } });
const material = new Map(['key-1', 'key-2'].map((name) => [name, randomBytes(32).toString('base64')]));

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
      [machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), 'token'],
      [machineSecretPath(CLUSTER_ID, 'worker', 'join-token'), 'token'],
      [CONFIG_PARAMETER, configYaml(['key-1'])],
    ]);
    machines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
    machines.boot(CLUSTER_ID, cluster, spec, () => true, { controlPlane: { providerIdAtBoot: true, ssmManaged: true }, pools: {} });
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
      bareMachines.boot(CLUSTER_ID, bare, spec, () => true, { controlPlane: BARE_MACHINE, pools: {} });
      await waitUntil('the bare machines to join', () => bare.objects({ kind: 'Node' }).length === spec.controlPlane.replicas);
      expect(bare.objects({ kind: 'Node' }).map((node) => (node.spec as { providerID?: string } | undefined)?.providerID)).toEqual([undefined, undefined, undefined]);
      expect(machines.managed(SCOPE, instanceId)).toBe(true);
      expect(machines.managed({ ...SCOPE, region: 'us-west-2' }, instanceId)).toBe(false);
    } finally {
      await bare.close();
    }
  });
});
