import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MachineSecretStore } from '#bootstrap';
import { ClusterSpec } from '#core';
import { type KilnServices, orderCluster, updateCluster } from '#services';
import type { OperationRecord } from '#store';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { bootstrapTokenIdsOf, withdrawJoinMaterial } from './join-material.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** A machine secret store that records what it is asked to withdraw. */
function recordingSecrets(): { store: MachineSecretStore; withdrawn: string[] } {
  const withdrawn: string[] = [];
  const store: MachineSecretStore = {
    publish: () => Promise.resolve(),
    publishWithoutHistory: () => Promise.resolve(),
    withdraw: (_clusterId, parameters) => {
      withdrawn.push(...parameters.map(({ role, name }) => `${role}/${name}`));
      return Promise.resolve();
    },
    revoke: () => Promise.resolve(),
  };
  return { store, withdrawn };
}

/** A fresh tenant's cluster with its provision running, and the services the withdrawal needs. */
async function provisioning() {
  const services: KilnServices = { ...api.services, workflows: { start: () => Promise.resolve(), status: () => Promise.resolve('RUNNING'), completeTask: () => Promise.resolve(false) } };
  const tenant = await api.newTenant();
  const outcome = await orderCluster(services, tenant.id, ClusterSpec.parse({ name: 'joining', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] }));
  if (outcome.kind !== 'fresh') throw new Error('expected a fresh order');
  const secrets = recordingSecrets();
  const input = { tenantId: tenant.id, clusterId: outcome.value.id, operationId: outcome.value.status.activeOperationId ?? '' };
  return { services: { ...services, inCluster: () => ({ machineSecrets: secrets.store }) }, withdrawn: secrets.withdrawn, input };
}

describe('withdrawing join material', () => {
  it("names the tokens an operation's steps minted, and nothing else", () => {
    const operation = {
      steps: {
        bootstrap: { state: 'succeeded', attempts: 1, outputs: { bootstrapTokenId: 'abcdef', apiServerNames: ['api.example'] } },
        'join-token': { state: 'succeeded', attempts: 1, outputs: { worker: { joinTokenId: 'ghijkl' }, controlPlane: { joinTokenId: 'mnopqr' } } },
        replace: { state: 'succeeded', attempts: 1, outputs: { joinTokenId: 'ghijkl', terminated: true } },
      },
    } as Pick<OperationRecord, 'steps'> as OperationRecord;
    expect(bootstrapTokenIdsOf(operation)).toEqual(['abcdef', 'ghijkl', 'mnopqr']);
  });

  it('takes both join tokens, every CA key and the sealed provisioning token when the operation ends', async () => {
    const { services, withdrawn, input } = await provisioning();
    await updateCluster(services, input.tenantId, input.clusterId, (cluster) => ({ ...cluster, sealed: { ...cluster.sealed, bootstrapToken: 'sealed-token' } }));
    await withdrawJoinMaterial(services, input, false);
    expect(withdrawn).toEqual(expect.arrayContaining(['control-plane/join-token', 'worker/join-token', 'control-plane/pki/ca.key', 'control-plane/pki/etcd/ca.key', 'control-plane/pki/sa.key']));
    expect((await services.store.getCluster(input.tenantId, input.clusterId))?.sealed?.bootstrapToken).toBeUndefined();
  });

  it('leaves them while another operation of the cluster may still have machines joining', async () => {
    const { services, withdrawn, input } = await provisioning();
    await updateCluster(services, input.tenantId, input.clusterId, (cluster) => ({ ...cluster, status: { ...cluster.status, remediations: ['op_another'] } }));
    await withdrawJoinMaterial(services, input, false);
    expect(withdrawn).toEqual([]);
  });
});
