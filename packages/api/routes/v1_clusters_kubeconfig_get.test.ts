import { X509Certificate } from 'node:crypto';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newApp } from '#api';
import { generateClusterPki, pkiToPem } from '#bootstrap';
import { ClusterSpec, newId } from '#core';
import { listApiKeys, newOperation } from '#services';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** The harness has no KMS: this sealer only encodes, so the route unseals the CA the test stored. */
const encodingSealer = {
  seal: (plaintext: Uint8Array) => Promise.resolve(Buffer.from(plaintext).toString('base64')),
  unseal: (sealed: string) => Promise.resolve(new Uint8Array(Buffer.from(sealed, 'base64'))),
};

/** A Ready cluster with its sealed PKI, its tenant's key, and that key's id. */
async function readyCluster(): Promise<{ apiKey: string; keyId: string; id: string; tenantId: string }> {
  const { id: tenantId, apiKey } = await api.newTenant();
  const id = newId('cluster');
  const now = new Date().toISOString();
  const spec = ClusterSpec.parse({ name: 'kubeconfigs', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
  const pki = await generateClusterPki({ clusterName: spec.name, apiHost: 'kubeconfigs.example', serviceCidr: '10.96.0.0/12' });
  await api.services.store.createCluster(
    {
      tenantId,
      id,
      name: spec.name,
      spec,
      status: { phase: 'Ready', conditions: [], endpoint: 'https://kubeconfigs.example:6443' },
      sealed: { pki: await encodingSealer.seal(Buffer.from(JSON.stringify(pkiToPem(pki)))) },
      createdAt: now,
      updatedAt: now,
      version: 1,
    },
    newOperation(tenantId, id, 'provision', now),
  );
  const [key] = await listApiKeys(api.services, tenantId);
  return { apiKey, keyId: key?.id ?? '', id, tenantId };
}

/** GET the kubeconfig through an app whose sealer can open what `readyCluster` sealed. */
async function getKubeconfig(apiKey: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const app = newApp({ ...api.services, sealer: encodingSealer });
  const response = await app.request(path, { headers: { authorization: `Bearer ${apiKey}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function certificateOf(kubeconfig: unknown): X509Certificate {
  const config = parse(String(kubeconfig)) as { users: { user: { 'client-certificate-data': string } }[] };
  return new X509Certificate(Buffer.from(config.users[0]?.user['client-certificate-data'] ?? '', 'base64'));
}

describe('GET /v1/clusters/{id}/kubeconfig', () => {
  it('issues an admin kubeconfig by default, in kiln:admins, whose user names the API key that asked, for an hour', async () => {
    const { apiKey, keyId, id, tenantId } = await readyCluster();
    const response = await getKubeconfig(apiKey, `/v1/clusters/${id}/kubeconfig`);
    expect(response.status).toBe(200);
    const certificate = certificateOf(response.body.kubeconfig);
    expect(certificate.subject).toBe(`O=kiln:admins\nCN=kiln:key:${keyId}`);
    expect(Date.parse(certificate.validTo) - Date.now()).toBeLessThanOrEqual(60 * 60_000);
    const { items } = await api.services.store.listClusterEvents(tenantId, id, { limit: 10 });
    expect(items.find((event) => event.type === 'cluster.kubeconfig_issued')?.data).toMatchObject({ group: 'kiln:admins', user: `kiln:key:${keyId}` });
  });

  it('issues a read-only kubeconfig in kiln:viewers for up to 12 hours', async () => {
    const { apiKey, keyId, id } = await readyCluster();
    const response = await getKubeconfig(apiKey, `/v1/clusters/${id}/kubeconfig?access=read-only&validityMinutes=720`);
    expect(response.status).toBe(200);
    const certificate = certificateOf(response.body.kubeconfig);
    expect(certificate.subject).toBe(`O=kiln:viewers\nCN=kiln:key:${keyId}`);
    expect(Date.parse(certificate.validTo) - Date.now()).toBeGreaterThan(719 * 60_000);
  });

  it('refuses an admin kubeconfig longer than an hour, and an access it does not know, naming the parameter', async () => {
    const { apiKey, id } = await readyCluster();
    const tooLong = await api.call('GET', `/v1/clusters/${id}/kubeconfig?validityMinutes=61`, { token: apiKey });
    expectProblem(tooLong, 400, 'validation_failed');
    expect(tooLong.body.errors).toEqual([{ parameter: 'validityMinutes', detail: 'must be at most 60 for admin access' }]);
    const unknown = await api.call('GET', `/v1/clusters/${id}/kubeconfig?access=owner`, { token: apiKey });
    expectProblem(unknown, 400, 'validation_failed');
  });
});
