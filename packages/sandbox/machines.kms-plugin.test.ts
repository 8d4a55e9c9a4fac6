import { afterEach, describe, expect, it } from 'vitest';
import { encryptionConfiguration, machineSecretPath, toYamlDocuments } from '#bootstrap';
import { ClusterSpec } from '#core';
import { LOCAL_KMS_PLUGIN_IMAGE, SandboxContainerRegistry } from './container-registry.ts';
import { type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { waitUntil } from './kube/testing.ts';
import { type MachineImage, SandboxMachines, groupsForOrder } from './machines.ts';

const CLUSTER_ID = 'cl_kms_plugin';
const spec = ClusterSpec.parse({
  name: 'kms-plugin',
  region: 'eu-central-1',
  controlPlane: { replicas: 1 },
  nodePools: [{ name: 'default', size: 0 }],
  encryption: { atRest: { provider: 'kms', keySource: 'kms' } },
});
const KEY_ARN = 'arn:aws:kms:eu-central-1:000000000000:key/11111111-2222-3333-4444-555555555555';

describe('the KMS plugin static pod on a sandbox control plane machine', () => {
  let cluster: SandboxCluster;

  afterEach(async () => {
    await cluster.close();
  });

  /** One control plane machine whose user data runs the plugin from `image`; the registry holds what was pushed. */
  async function boot(image: string, registry: SandboxContainerRegistry): Promise<SandboxMachines> {
    cluster = await startSandboxCluster({ name: 'kms-plugin' });
    const parameters = new Map([
      [machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), 'abcdef.0123456789abcdef'],
      [machineSecretPath(CLUSTER_ID, 'control-plane', 'encryption-config'), toYamlDocuments([encryptionConfiguration(spec, [])])],
      [machineSecretPath(CLUSTER_ID, 'control-plane', 'kms-key-arn'), KEY_ARN],
    ]);
    const plugin = { encrypt: (plaintext: Buffer) => plaintext, decrypt: (sealed: Buffer) => sealed };
    const machines = new SandboxMachines((_scope, name) => parameters.get(name), 0, '000000000000', () => plugin, (reference) => registry.serves(reference));
    const controlPlane: MachineImage = { providerIdAtBoot: true, ssmManaged: true, kmsPluginImage: image };
    machines.boot(CLUSTER_ID, cluster, spec, () => true, groupsForOrder(spec, { controlPlane }, { controlPlane: `${CLUSTER_ID}-cp`, pools: {} }));
    return machines;
  }

  it('starts the API server once the kubelet pulled the plugin image from the registry', async () => {
    const registry = new SandboxContainerRegistry();
    registry.push(LOCAL_KMS_PLUGIN_IMAGE);
    await boot(LOCAL_KMS_PLUGIN_IMAGE, registry);
    await waitUntil('the machine to join', () => cluster.objects({ kind: 'Node' }).length === 1);
  });

  it('never starts the API server when no registry serves the plugin image, as an unpublished image cannot be pulled', async () => {
    const machines = await boot('registry.k8s.io/aws-encryption-provider/aws-encryption-provider:v1.33.0', new SandboxContainerRegistry());
    await waitUntil('the machine to give up', () => machines.instancesOfCluster(CLUSTER_ID).some((instance) => instance.bootError !== undefined), 10_000);
    expect(machines.instancesOfCluster(CLUSTER_ID)[0]?.bootError).toMatch(/kube-apiserver did not start/);
    expect(cluster.objects({ kind: 'Node' })).toEqual([]);
  });
});
