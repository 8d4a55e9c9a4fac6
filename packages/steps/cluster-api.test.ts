import { X509Certificate } from 'node:crypto';
import { ApiException, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ACCESS_DIGEST_ANNOTATION, KILN_CONTROLLER, KILN_HEALTH, accessObjects, applyObjects, cordonNode, deleteNode, drainNode, listNodes, readObject } from '#addons';
import { bootstrapTokenSecret, generateClusterPki, pkiToPem } from '#bootstrap';
import { rewriteSecretsPage } from '#encryption';
import { ClusterSpec, StepError } from '#core';
import { type SandboxCluster, kubeadmApiServerTls, startSandboxCluster } from '#sandbox';
import type { ClusterRecord } from '#store';
import { CREDENTIAL_REUSE_MINUTES, apiServerCertificates, clusterApi, clusterObserver } from './cluster-api.ts';

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
    expect(certificate.subject).toBe(`O=${KILN_CONTROLLER.group}\nCN=${KILN_CONTROLLER.user}`);
    expect(Date.parse(certificate.validTo) - Date.now()).toBeLessThanOrEqual(60 * 60_000);
  });

  /** The HTTP status a call gets: 200 when it succeeds. */
  const status = (call: Promise<unknown>): Promise<number> =>
    call.then(
      () => 200,
      (error: unknown) => {
        if (error instanceof ApiException) return error.code;
        throw error;
      },
    );

  it('works as kiln:controllers, bound to a role with what the steps call and no more, which its bootstrap identity applied', async () => {
    const record = await readyCluster('cls_least');
    const { sealer } = countingSealer();
    const core = (await clusterApi({ sealer }, record, 'addons')).makeApiClient(CoreV1Api);
    const stored = cluster?.objects({ kind: 'ClusterRole', name: 'kiln:controller' })[0];
    expect(stored?.metadata).toMatchObject({ annotations: { [ACCESS_DIGEST_ANNOTATION]: accessObjects()[0]?.metadata.annotations?.[ACCESS_DIGEST_ANNOTATION] } });

    // What the steps do: list, label and cordon nodes, list pods for a drain, read and rewrite Secrets.
    expect(await status(core.listNode())).toBe(200);
    expect(await status(core.patchNode({ name: 'control-plane-0', body: { metadata: { labels: { 'kiln.dev/pool': 'x' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)))).toBe(200);
    expect(await status(core.listPodForAllNamespaces())).toBe(200);
    expect(await status(core.listSecretForAllNamespaces())).toBe(200);
    // What they never do: delete a namespace, run a pod, exec into one, bind cluster-admin.
    expect(await status(core.deleteNamespace({ name: 'default' }))).toBe(403);
    expect(await status(core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'x' }] } } }))).toBe(403);
    expect(await status(core.connectGetNamespacedPodExec({ namespace: 'default', name: 'p', command: 'sh' }))).toBe(403);
  });

  it('does as kiln:controllers what a remediation, a pool change, an upgrade and a key rotation do', async () => {
    const record = await readyCluster('cls_day2');
    cluster?.registerNode({ name: 'default-0', role: 'worker', pool: 'default' });
    cluster?.writeObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default' }, spec: { nodeName: 'default-0', containers: [{ name: 'web', image: 'x' }] } }, 'kubelet');
    const kubeadmConfig = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeadm-config', namespace: 'kube-system' }, data: { ClusterConfiguration: 'kubernetesVersion: v1.35.8' } };
    cluster?.writeObject(kubeadmConfig, 'kubeadm');
    const { sealer } = countingSealer();
    const config = await clusterApi({ sealer }, record, 'drain');

    expect(await cordonNode(config, 'default-0')).toBe(true);
    expect((await drainNode(config, 'default-0')).evicted).toEqual(['default/web']);
    expect(await deleteNode(config, 'default-0')).toBe(true);
    await applyObjects(config, [bootstrapTokenSecret('abcdef.0123456789abcdef', new Date(Date.now() + 60 * 60_000), 'replacement')]);
    await readObject(config, kubeadmConfig);
    await applyObjects(config, [{ ...kubeadmConfig, data: { ClusterConfiguration: 'kubernetesVersion: v1.35.9' } }]);
    expect((await rewriteSecretsPage(config.makeApiClient(CoreV1Api), undefined)).rewritten).toBeGreaterThan(0);
  });

  it('polls health as kiln:health, which lists Nodes and may change nothing', async () => {
    const record = await readyCluster('cls_observer');
    const { sealer } = countingSealer();
    const config = await clusterObserver({ sealer }, record);
    const certificate = new X509Certificate(Buffer.from(config.getCurrentUser()?.certData ?? '', 'base64'));
    expect(certificate.subject).toBe(`O=${KILN_HEALTH.group}\nCN=${KILN_HEALTH.user}`);
    expect((await listNodes(config)).map((node) => node.name)).toEqual(['control-plane-0']);
    const core = config.makeApiClient(CoreV1Api);
    expect(await status(core.patchNode({ name: 'control-plane-0', body: { spec: { unschedulable: true } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)))).toBe(403);
    expect(await status(core.listPodForAllNamespaces())).toBe(403);
    expect(await status(core.listSecretForAllNamespaces())).toBe(403);
  });

  it('puts back its roles when a cluster holds another rendering of them (a cluster from an older Kiln)', async () => {
    const record = await readyCluster('cls_stale');
    cluster?.writeObject({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'kiln:controller', annotations: { [ACCESS_DIGEST_ANNOTATION]: 'older' } }, rules: [] }, 'kiln');
    const { sealer } = countingSealer();
    const core = (await clusterApi({ sealer }, record, 'verify')).makeApiClient(CoreV1Api);
    expect(await status(core.listNode())).toBe(200);
    expect(cluster?.objects({ kind: 'ClusterRole', name: 'kiln:controller' })[0]?.metadata).toMatchObject({ annotations: { [ACCESS_DIGEST_ANNOTATION]: expect.not.stringMatching(/^older$/) as unknown } });
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
