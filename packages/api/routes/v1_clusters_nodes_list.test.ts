import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, type ClusterNodeList, newId } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const HEALTHY = { name: 'default-0', instanceId: 'i-0aaaaaaaaaaaaaaa0', role: 'worker', pool: 'default', zone: 'eu-central-1a', kubeletVersion: 'v1.35.9', health: 'Healthy' } as const;
const REBOOTED = { ...HEALTHY, name: 'default-1', instanceId: 'i-0bbbbbbbbbbbbbbb1', zone: 'eu-central-1b' } as const;

/** A Ready cluster whose second worker Kiln rebooted once, as the poller and the remediate-node workflow leave it. */
async function remediatedCluster(): Promise<{ apiKey: string; id: string; operationId: string }> {
  const { id: tenantId, apiKey } = await api.newTenant();
  const id = newId('cluster');
  const operationId = newId('operation');
  const at = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
  const spec = ClusterSpec.parse({ name: 'nodes', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }] });
  await api.services.store.createCluster(
    { tenantId, id, name: spec.name, spec, status: { phase: 'Ready', conditions: [] }, createdAt: at(60), updatedAt: at(60), version: 1 },
    {
      tenantId,
      id: operationId,
      type: 'remediate-node',
      clusterId: id,
      target: { instanceId: REBOOTED.instanceId, nodeName: REBOOTED.name, group: { role: 'worker', pool: 'default' }, reason: 'NotReady' },
      state: 'succeeded',
      steps: { reboot: { state: 'succeeded', attempts: 1 }, recover: { state: 'succeeded', attempts: 1 } },
      createdAt: at(10),
      updatedAt: at(5),
      finishedAt: at(5),
      version: 1,
    },
  );
  await api.services.store.saveNodeHealth({ tenantId, clusterId: id, nodes: [HEALTHY, REBOOTED], holds: ['The API server does not answer'], observedAt: at(1) }, 0);
  return { apiKey, id, operationId };
}

describe('GET /v1/clusters/{id}/nodes', () => {
  it("lists the machines as the poller saw them, each with its newest remediation, and why remediation holds", async () => {
    const { apiKey, id, operationId } = await remediatedCluster();
    const response = await api.call<ClusterNodeList>('GET', `/v1/clusters/${id}/nodes`, { token: apiKey });

    expect(response.status).toBe(200);
    expect(response.body.items).toEqual([
      HEALTHY,
      { ...REBOOTED, lastRemediation: { operationId, state: 'succeeded', lastStep: 'recover', startedAt: expect.any(String), finishedAt: expect.any(String) } },
    ]);
    expect(response.body.remediationPaused).toEqual(['The API server does not answer']);
    expect(response.body.observedAt).toEqual(expect.any(String));
  });

  it('lists nothing, and holds nothing, before the poller first looked', async () => {
    const { id: tenantId, apiKey } = await api.newTenant();
    const id = newId('cluster');
    const now = new Date().toISOString();
    const spec = ClusterSpec.parse({ name: 'fresh', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
    await api.services.store.createCluster(
      { tenantId, id, name: spec.name, spec, status: { phase: 'Provisioning', conditions: [] }, createdAt: now, updatedAt: now, version: 1 },
      { tenantId, id: newId('operation'), type: 'provision', clusterId: id, state: 'running', steps: {}, createdAt: now, updatedAt: now, version: 1 },
    );
    const response = await api.call<ClusterNodeList>('GET', `/v1/clusters/${id}/nodes`, { token: apiKey });
    expect(response.body).toEqual({ items: [], remediationPaused: [] });
  });

  it("answers another tenant's cluster with 404, as a cluster that does not exist", async () => {
    const { id } = await remediatedCluster();
    const { apiKey: stranger } = await api.newTenant();
    expectProblem(await api.call('GET', `/v1/clusters/${id}/nodes`, { token: stranger }), 404, 'not_found');
  });
});
