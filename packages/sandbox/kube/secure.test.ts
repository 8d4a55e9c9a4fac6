import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClusterCredentials, kubeConfigFor } from '#addons';
import { KUBEADM_ADMINS_GROUP, type ClusterPki, bootstrapTokenSecret, generateClusterPki, issueClientCredentials } from '#bootstrap';
import { kubeadmApiServerTls } from '../api-server-tls.ts';
import { type SandboxCluster, startSandboxCluster } from './index.ts';

const API_HOST = 'demo-api.elb.eu-central-1.amazonaws.com';
const SERVICE_CIDR = '10.96.0.0/12';

async function credentials(pki: ClusterPki, validityMinutes = 60): Promise<ClusterCredentials> {
  return issueClientCredentials(pki, { user: 'kiln', groups: [KUBEADM_ADMINS_GROUP], validityMinutes });
}

async function namespaces(config: KubeConfig): Promise<number> {
  try {
    return (await config.makeApiClient(CoreV1Api).listNamespace()).items.length;
  } catch (error) {
    if (error instanceof ApiException) return -error.code;
    throw error;
  }
}

describe('a secure sandbox cluster (as kubeadm serves it)', () => {
  let cluster: SandboxCluster | undefined;
  let now = new Date();

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  async function secureCluster(): Promise<{ cluster: SandboxCluster; pki: ClusterPki }> {
    now = new Date();
    const pki = await generateClusterPki({ clusterName: 'secure', apiHost: API_HOST, serviceCidr: SERVICE_CIDR });
    cluster = await startSandboxCluster({ name: 'secure', secure: true, now: () => now });
    return { cluster, pki };
  }

  it('answers nothing before kubeadm init gives it a certificate', async () => {
    const { cluster, pki } = await secureCluster();
    expect(cluster.url).toMatch(/^https:\/\/127\.0\.0\.3:\d+$/);
    await expect(namespaces(kubeConfigFor('secure', cluster.url, await credentials(pki)))).rejects.toThrow();
    expect(() => cluster.kubeconfig()).toThrow(/before kubeadm init/);
  });

  it('serves a client whose certificate the cluster CA signed, over TLS it verifies against the same CA', async () => {
    const { cluster, pki } = await secureCluster();
    cluster.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
    expect(await namespaces(kubeConfigFor('secure', cluster.url, await credentials(pki)))).toBeGreaterThan(0);
    // admin.conf, as kubeadm leaves it on the machine.
    const admin = new KubeConfig();
    admin.loadFromString(cluster.kubeconfig());
    expect(await namespaces(admin)).toBeGreaterThan(0);
  });

  it('answers 401 to anonymous requests, to certificates of another CA, and to expired ones (by the sandbox clock)', async () => {
    const { cluster, pki } = await secureCluster();
    cluster.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));

    const anonymous = new KubeConfig();
    anonymous.loadFromOptions({
      clusters: [{ name: 'secure', server: cluster.url, caData: Buffer.from(pki.clusterCa.certificatePem).toString('base64') }],
      users: [{ name: 'nobody' }],
      contexts: [{ name: 'secure', cluster: 'secure', user: 'nobody' }],
      currentContext: 'secure',
    });
    expect(await namespaces(anonymous)).toBe(-401);

    const stranger = await generateClusterPki({ clusterName: 'other', apiHost: API_HOST, serviceCidr: SERVICE_CIDR });
    const foreign = await credentials(stranger);
    expect(await namespaces(kubeConfigFor('secure', cluster.url, { ...foreign, caPem: pki.clusterCa.certificatePem }))).toBe(-401);

    const shortLived = await credentials(pki, 10);
    expect(await namespaces(kubeConfigFor('secure', cluster.url, shortLived))).toBeGreaterThan(0);
    now = new Date(Date.now() + 11 * 60_000);
    expect(await namespaces(kubeConfigFor('secure', cluster.url, shortLived))).toBe(-401);
  });

  it('authenticates bootstrap tokens and, with --anonymous-auth, anonymous requests, holding both to what kubeadm lets them read', async () => {
    const { cluster, pki } = await secureCluster();
    cluster.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
    cluster.writeObject(bootstrapTokenSecret('abcdef.0123456789abcdef', new Date(Date.now() + 60 * 60_000), 'test'), 'kubeadm');
    cluster.writeObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cluster-info', namespace: 'kube-public' }, data: { kubeconfig: 'x' } }, 'kubeadm');
    cluster.writeObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeadm-config', namespace: 'kube-system' }, data: { ClusterConfiguration: 'x' } }, 'kubeadm');
    const clientAs = (user: { token?: string }) => {
      const config = new KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: 'secure', server: cluster.url, caData: Buffer.from(pki.clusterCa.certificatePem).toString('base64') }],
        users: [{ name: 'user', ...user }],
        contexts: [{ name: 'secure', cluster: 'secure', user: 'user' }],
        currentContext: 'secure',
      });
      return config.makeApiClient(CoreV1Api);
    };
    const status = async (call: Promise<unknown>): Promise<number | string> =>
      call.then(
        () => 200,
        (error: unknown) => {
          if (!(error instanceof ApiException)) return String(error);
          // client-node keeps no body for a 401.
          const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
          const message = (body as { message?: string } | undefined)?.message;
          return message === undefined ? error.code : `${error.code} ${message}`;
        },
      );
    const clusterInfo = (api: CoreV1Api) => api.readNamespacedConfigMap({ namespace: 'kube-public', name: 'cluster-info' });
    const kubeadmConfig = (api: CoreV1Api) => api.readNamespacedConfigMap({ namespace: 'kube-system', name: 'kubeadm-config' });

    const anonymous = clientAs({});
    expect(await status(clusterInfo(anonymous))).toBe(401);
    cluster.setAnonymousAuth(true);
    expect(await status(clusterInfo(anonymous))).toBe(200);
    expect(await status(anonymous.listNamespace())).toBe('403 namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope');
    expect(await status(kubeadmConfig(anonymous))).toMatch(/^403 configmaps "kubeadm-config" is forbidden: User "system:anonymous" cannot get/);

    const bootstrap = clientAs({ token: 'abcdef.0123456789abcdef' });
    expect(await status(kubeadmConfig(bootstrap))).toBe(200);
    expect(await status(clusterInfo(bootstrap))).toBe(
      '403 configmaps "cluster-info" is forbidden: User "system:bootstrap:abcdef" cannot get resource "configmaps" in API group "" in the namespace "kube-public"',
    );
    expect(await status(bootstrap.listNamespacedSecret({ namespace: 'kube-system' }))).toMatch(/^403 /);
    // A bearer token that matches no bootstrap token fails the request, anonymous access or not; so does an expired one.
    expect(await status(clusterInfo(clientAs({ token: 'abcdef.ffffffffffffffff' })))).toBe(401);
    now = new Date(Date.now() + 61 * 60_000);
    expect(await status(kubeadmConfig(bootstrap))).toBe(401);
  });

  it('is refused by a client that expects another cluster CA', async () => {
    const { cluster, pki } = await secureCluster();
    cluster.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
    const stranger = await generateClusterPki({ clusterName: 'other', apiHost: API_HOST, serviceCidr: SERVICE_CIDR });
    await expect(namespaces(kubeConfigFor('secure', cluster.url, { ...(await credentials(pki)), caPem: stranger.clusterCa.certificatePem }))).rejects.toThrow();
  });
});
