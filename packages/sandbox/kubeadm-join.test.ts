import { X509Certificate, createHash } from 'node:crypto';
import { request } from 'node:https';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ClusterPkiPem, bootstrapTokenSecret, generateClusterPki, joinMaterial, machineSecretPath, pkiToPem } from '#bootstrap';
import { ClusterSpec } from '#core';
import { kubeadmApiServerTls } from './api-server-tls.ts';
import type { RecordedResource } from './cloud/index.ts';
import { type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { startBootstrapTokenControllers } from './kube/bootstrap-tokens.ts';
import { waitUntil } from './kube/testing.ts';
import { type JoinPreflight, KubeadmJoinPreflight, clusterInfoKubeconfig } from './kubeadm-join.ts';
import { machineImagesOf } from './machine-images.ts';
import { SandboxMachines, groupsForOrder } from './machines.ts';
import { renderedLaunchTemplates } from './testing.ts';

const API_HOST = 'join-api.elb.eu-central-1.amazonaws.com';
const SERVICE_CIDR = '10.96.0.0/12';
const TOKEN = 'abcdef.0123456789abcdef';
const CLUSTER_INFO_PATH = '/api/v1/namespaces/kube-public/configmaps/cluster-info';

/** `sha256:<hex>` of the CA's SubjectPublicKeyInfo, as `kubeadm token create --print-join-command` prints it. */
function caCertHash(certificatePem: string): string {
  return `sha256:${createHash('sha256').update(new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

let cluster: SandboxCluster | undefined;
let stopControllers: (() => void) | undefined;

afterEach(async () => {
  vi.useRealTimers();
  stopControllers?.();
  stopControllers = undefined;
  await cluster?.close();
  cluster = undefined;
});

/** A secure cluster as `kubeadm init` leaves it: TLS, the join token, kubeadm-config, cluster-info and its signer. */
async function initialisedCluster(anonymousAuth: boolean): Promise<{ cluster: SandboxCluster; pki: ClusterPkiPem }> {
  const pki = pkiToPem(await generateClusterPki({ clusterName: 'join', apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
  const started = await startSandboxCluster({ name: 'join', secure: true });
  cluster = started;
  started.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
  started.setAnonymousAuth(anonymousAuth);
  // As `kubeadm token create` makes it by default: for authentication and for signing cluster-info.
  const secret = bootstrapTokenSecret(TOKEN, new Date(Date.now() + 60 * 60_000), 'test');
  started.writeObject({ ...secret, stringData: { ...secret.stringData, 'usage-bootstrap-signing': 'true' } }, 'kubeadm');
  started.writeObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeadm-config', namespace: 'kube-system' }, data: { ClusterConfiguration: 'kubernetesVersion: v1.35.9\n' } }, 'kubeadm');
  started.writeObject(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cluster-info', namespace: 'kube-public' }, data: { kubeconfig: clusterInfoKubeconfig(`https://${API_HOST}:6443`, pki.clusterCa.certificatePem) } },
    'kubeadm',
  );
  stopControllers = startBootstrapTokenControllers(started);
  await waitUntil('the bootstrap signer to sign cluster-info', () => JSON.stringify(started.objects({ kind: 'ConfigMap', name: 'cluster-info' })).includes('jws-kubeconfig-abcdef'));
  return { cluster: started, pki };
}

/** Polls a preflight to its outcome, moving the clock past the discovery timeout once it has tried discovery. */
async function outcomeOf(preflight: KubeadmJoinPreflight): Promise<JoinPreflight> {
  let outcome: JoinPreflight | 'running' = preflight.poll();
  await waitUntil('a discovery attempt', () => {
    outcome = preflight.poll();
    return outcome !== 'running' || preflight.attempts > 0;
  });
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.now() + 6 * 60_000);
  await waitUntil('the preflight to end', () => {
    outcome = preflight.poll();
    return outcome !== 'running';
  });
  if (outcome === 'running') throw new Error('unreachable');
  return outcome;
}

function discoveryFile(pki: ClusterPkiPem, user: Record<string, unknown> | undefined): string {
  const ca = Buffer.from(pki.clusterCa.certificatePem).toString('base64');
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kubernetes', cluster: { server: `https://${API_HOST}:6443`, 'certificate-authority-data': ca } }],
    users: user === undefined ? [] : [{ name: 'bootstrap', user }],
    contexts: [{ name: 'join', context: { cluster: 'kubernetes', ...(user === undefined ? {} : { user: 'bootstrap' }) } }],
    'current-context': 'join',
  });
}

describe('kubeadm join discovery against the sandbox API server', () => {
  it('finds the cluster with a bootstrap token when anonymous requests may read cluster-info, checking its signature and CA pin', async () => {
    const { cluster: target, pki } = await initialisedCluster(true);
    const discovery = { bootstrapToken: { apiServerEndpoint: `${API_HOST}:6443`, token: TOKEN, caCertHashes: [caCertHash(pki.clusterCa.certificatePem)] } };
    expect(await outcomeOf(new KubeadmJoinPreflight(target, discovery, {}))).toEqual({ clusterConfiguration: 'kubernetesVersion: v1.35.9\n' });
    // cluster-info was read anonymously and not verified, then over TLS verified with the pinned CA.
    expect(target.requestLog.filter((entry) => entry.path === CLUSTER_INFO_PATH).map((entry) => entry.status)).toEqual([200, 200]);
  });

  it('gets 401 for cluster-info with a bootstrap token when anonymous auth is off, and gives up after the discovery timeout', async () => {
    const { cluster: target, pki } = await initialisedCluster(false);
    const discovery = { bootstrapToken: { apiServerEndpoint: `${API_HOST}:6443`, token: TOKEN, caCertHashes: [caCertHash(pki.clusterCa.certificatePem)] } };
    expect(await outcomeOf(new KubeadmJoinPreflight(target, discovery, {}))).toEqual({
      error: "error execution phase preflight: couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Unauthorized",
    });
    expect(new Set(target.requestLog.filter((entry) => entry.path === CLUSTER_INFO_PATH).map((entry) => entry.status))).toEqual(new Set([401]));
  });

  it('refuses a cluster-info whose signature the token does not make, and a CA the hash does not pin', async () => {
    const { cluster: target, pki } = await initialisedCluster(true);
    const other = pkiToPem(await generateClusterPki({ clusterName: 'other', apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
    const pinnedElsewhere = { bootstrapToken: { apiServerEndpoint: `${API_HOST}:6443`, token: TOKEN, caCertHashes: [caCertHash(other.clusterCa.certificatePem)] } };
    expect(await outcomeOf(new KubeadmJoinPreflight(target, pinnedElsewhere, {}))).toMatchObject({ error: expect.stringContaining('cluster CA found in cluster-info ConfigMap is invalid') });
    const wrongSecret = { bootstrapToken: { apiServerEndpoint: `${API_HOST}:6443`, token: 'abcdef.ffffffffffffffff', caCertHashes: [caCertHash(pki.clusterCa.certificatePem)] } };
    expect(await outcomeOf(new KubeadmJoinPreflight(target, wrongSecret, {}))).toEqual({
      error: "error execution phase preflight: couldn't validate the identity of the API Server: failed to verify JWS signature of received cluster info object, can't trust this API Server",
    });
  });

  it('proceeds on a 403 for cluster-info when the discovery file carries a bootstrap token, with anonymous auth off', async () => {
    const { cluster: target, pki } = await initialisedCluster(false);
    const files = { '/run/kiln/discovery.conf': discoveryFile(pki, { token: TOKEN }) };
    expect(await outcomeOf(new KubeadmJoinPreflight(target, { file: { kubeConfigPath: '/run/kiln/discovery.conf' } }, files))).toEqual({
      clusterConfiguration: 'kubernetesVersion: v1.35.9\n',
    });
    // kubeadm's RBAC lets only system:anonymous read cluster-info; the token may read kubeadm-config.
    expect(target.requestLog.filter((entry) => entry.path === CLUSTER_INFO_PATH).map((entry) => entry.status)).toEqual([403]);
  });

  it('gets 401 with a discovery file without credentials, or with a token the cluster does not hold, and gives up after the discovery timeout', async () => {
    const { cluster: target, pki } = await initialisedCluster(false);
    const path = '/run/kiln/discovery.conf';
    const anonymous = new KubeadmJoinPreflight(target, { file: { kubeConfigPath: path }, tlsBootstrapToken: TOKEN }, { [path]: discoveryFile(pki, undefined) });
    expect(await outcomeOf(anonymous)).toEqual({
      error: "error execution phase preflight: couldn't validate the identity of the API Server: Abort reading the cluster-info ConfigMap after timeout of 5m0s: Unauthorized",
    });
    vi.useRealTimers();
    const unknown = new KubeadmJoinPreflight(target, { file: { kubeConfigPath: path } }, { [path]: discoveryFile(pki, { token: 'zzzzzz.0123456789abcdef' }) });
    expect(await outcomeOf(unknown)).toMatchObject({ error: expect.stringContaining('after timeout of 5m0s: Unauthorized') });
  });

  it('does not trust an API server the discovery file names another CA for', async () => {
    const { cluster: target } = await initialisedCluster(false);
    const other = pkiToPem(await generateClusterPki({ clusterName: 'other', apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
    const path = '/run/kiln/discovery.conf';
    const preflight = new KubeadmJoinPreflight(target, { file: { kubeConfigPath: path } }, { [path]: discoveryFile(other, { token: TOKEN }) });
    expect(await outcomeOf(preflight)).toMatchObject({ error: expect.stringContaining('x509: certificate signed by unknown authority') });
  });
});

describe('machines booted from what Kiln renders', () => {
  const spec = ClusterSpec.parse({ name: 'join', region: 'eu-central-1', nodePools: [{ name: 'general', size: 1 }] });
  const clusterId = 'cls_join';

  const launchTemplates = (): RecordedResource[] => renderedLaunchTemplates(clusterId, spec, 'join');

  it('join a cluster whose API servers run with the flags Kiln renders, further control plane machines and workers alike', { timeout: 30_000 }, async () => {
    const pki = pkiToPem(await generateClusterPki({ clusterName: spec.name, apiHost: API_HOST, serviceCidr: spec.network.serviceCidr }));
    // What the bootstrap step publishes for the machines.
    const parameters = new Map(joinMaterial(pki, API_HOST, TOKEN).map((secret) => [machineSecretPath(clusterId, secret.role, secret.name), secret.value]));
    const target = await startSandboxCluster({ name: clusterId, secure: true });
    cluster = target;
    const machines = new SandboxMachines((_scope, name) => parameters.get(name), 0);
    const names = { controlPlane: `${clusterId}-cp`, pools: { general: `${clusterId}-pool-general` } };
    machines.boot(clusterId, target, spec, () => true, groupsForOrder(spec, machineImagesOf(launchTemplates()), names));
    try {
      const joined = () => target.objects({ kind: 'Node' }).length;
      const bootErrors = () => machines.instancesOfCluster(clusterId).flatMap((instance) => (instance.bootError === undefined ? [] : [`${instance.autoScalingGroup}: ${instance.bootError}`]));
      await waitUntil('a machine to ask for cluster-info', () => target.requestLog.some((entry) => entry.path === CLUSTER_INFO_PATH), 20_000);
      // kubeadm retries discovery for its timeout (5 minutes), then gives up.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 6 * 60_000);
      await waitUntil('every machine to join or give up', () => joined() + bootErrors().length === 4, 20_000);
      expect(bootErrors()).toEqual([]);
      expect(joined()).toBe(4);
      // The API servers run as Kiln renders them, without anonymous access: cluster-info answers 401 without credentials.
      expect(await anonymousStatus(target)).toBe(401);
    } finally {
      machines.forget(clusterId);
    }
  });
});

/** What an anonymous client gets for cluster-info. */
function anonymousStatus(target: SandboxCluster): Promise<number> {
  const url = new URL(target.url);
  return new Promise((resolve, reject) => {
    const sent = request({ host: url.hostname, port: url.port, path: CLUSTER_INFO_PATH, rejectUnauthorized: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    sent.on('error', reject);
    sent.end();
  });
}
