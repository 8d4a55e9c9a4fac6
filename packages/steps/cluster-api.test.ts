import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listNodes } from '#addons';
import { ADMIN_GROUP, generateClusterPki, pkiToPem } from '#bootstrap';
import { ClusterSpec, StepError } from '#core';
import { type SandboxCluster, kubeadmApiServerTls, startSandboxCluster } from '#sandbox';
import type { ClusterRecord } from '#store';
import { CREDENTIAL_REUSE_MINUTES, KILN_CLUSTER_USER, apiServerCertificates, clusterApi } from './cluster-api.ts';

const API_HOST = 'steps-api.elb.eu-central-1.amazonaws.com';

/** A sealer that only encodes, counting the unseals (each is a KMS Decrypt in production). */
function countingSealer() {
  const calls = { unseal: 0 };
  return {
    calls,
    sealer: {
      seal: (plaintext: Uint8Array) => Promise.resolve(Buffer.from(plaintext).toString('base64')),
      unseal: (sealed: string, context: Record<string, string>) => {
        calls.unseal += 1;
        expect(context).toMatchObject({ purpose: 'pki' });
        return Promise.resolve(new Uint8Array(Buffer.from(sealed, 'base64')));
      },
    },
  };
}

describe('clusterApi', () => {
  let cluster: SandboxCluster | undefined;

  afterEach(async () => {
    vi.useRealTimers();
    await cluster?.close();
    cluster = undefined;
  });

  async function readyCluster(id: string): Promise<ClusterRecord> {
    const pki = await generateClusterPki({ clusterName: id, apiHost: API_HOST, serviceCidr: '10.96.0.0/12' });
    cluster = await startSandboxCluster({ name: id, secure: true });
    cluster.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: '10.96.0.0/12' }));
    cluster.registerNode({ name: 'control-plane-0', role: 'control-plane' });
    const at = new Date().toISOString();
    return {
      tenantId: 'ten_1',
      id,
      name: id,
      spec: ClusterSpec.parse({ name: 'access', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] }),
      status: { phase: 'Ready', conditions: [], endpoint: cluster.url },
      sealed: { pki: Buffer.from(JSON.stringify(pkiToPem(pki))).toString('base64') },
      createdAt: at,
      updatedAt: at,
      version: 1,
    };
  }

  it('reaches the API server as Kiln, with a short-lived certificate the cluster CA signed, and verifies the server', async () => {
    const record = await readyCluster('cls_access');
    const { sealer } = countingSealer();
    const config = await clusterApi({ sealer }, record, 'verify');

    expect((await listNodes(config)).map((node) => node.name)).toEqual(['control-plane-0']);
    const certificate = new X509Certificate(Buffer.from(config.getCurrentUser()?.certData ?? '', 'base64'));
    expect(certificate.subject).toBe(`O=${ADMIN_GROUP}\nCN=${KILN_CLUSTER_USER}`);
    expect(Date.parse(certificate.validTo) - Date.now()).toBeLessThanOrEqual(60 * 60_000);
  });

  it('reads the serving certificate the API server presents, and refuses one the cluster CA did not sign', async () => {
    const record = await readyCluster('cls_certs');
    const { sealer } = countingSealer();
    const { authority, apiServer } = await apiServerCertificates({ sealer }, record, 'verify');
    expect(apiServer.checkIssued(authority)).toBe(true);
    expect(Date.parse(apiServer.validTo) - Date.now()).toBeGreaterThan(364 * 24 * 60 * 60_000);

    const stranger = await generateClusterPki({ clusterName: 'other', apiHost: API_HOST, serviceCidr: '10.96.0.0/12' });
    const foreign = { ...record, id: 'cls_certs_foreign', sealed: { pki: Buffer.from(JSON.stringify(pkiToPem(stranger))).toString('base64') } };
    await expect(apiServerCertificates({ sealer }, foreign, 'verify')).rejects.toThrow(/Could not read the API server's certificate/);
  });

  it('unseals the CA once per reuse period, not at every call', async () => {
    const record = await readyCluster('cls_reuse');
    const { sealer, calls } = countingSealer();
    await clusterApi({ sealer }, record, 'health');
    await clusterApi({ sealer }, record, 'health');
    expect(calls.unseal).toBe(1);

    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + (CREDENTIAL_REUSE_MINUTES + 1) * 60_000);
    await clusterApi({ sealer }, record, 'health');
    expect(calls.unseal).toBe(2);
  });

  it('says what is missing for a cluster that has no endpoint or no CA yet', async () => {
    const record = await readyCluster('cls_early');
    const { sealer } = countingSealer();
    const { sealed: _sealed, ...noPki } = record;
    await expect(clusterApi({ sealer }, { ...noPki, id: 'cls_early_2' }, 'addons')).rejects.toThrow(new StepError('addons', 'The cluster has no certificate authority yet: its bootstrap step has not run.', false));
    await expect(clusterApi({ sealer }, { ...record, status: { phase: 'Provisioning', conditions: [] } }, 'addons')).rejects.toThrow(/no API endpoint/);
  });
});
