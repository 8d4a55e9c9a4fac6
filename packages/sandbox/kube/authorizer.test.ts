import { ApiException, CoreV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type Manifest, applyObjects, kubeConfigFor } from '#addons';
import { type ClusterPki, generateClusterPki, issueClientCredentials } from '#bootstrap';
import { kubeadmApiServerTls } from '../api-server-tls.ts';
import { type SandboxCluster, startSandboxCluster } from './index.ts';

const API_HOST = 'rbac-api.elb.eu-central-1.amazonaws.com';
const SERVICE_CIDR = '10.96.0.0/12';
const RBAC = 'rbac.authorization.k8s.io';

/** The HTTP status of a call (200 when it succeeds), with the API server's message after a refusal. */
async function status(call: Promise<unknown>): Promise<string> {
  return call.then(
    () => '200',
    (error: unknown) => {
      if (!(error instanceof ApiException)) throw error;
      const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
      const message = (body as { message?: string } | undefined)?.message;
      return message === undefined ? String(error.code) : `${error.code} ${message}`;
    },
  );
}

const clusterRole = (name: string, rules: unknown[]): Manifest => ({ apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name }, rules });
const groupBinding = (name: string, role: string, group: string): Manifest => ({
  apiVersion: `${RBAC}/v1`,
  kind: 'ClusterRoleBinding',
  metadata: { name },
  roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: role },
  subjects: [{ apiGroup: RBAC, kind: 'Group', name: group }],
});

describe('the sandbox API server authorizes client certificates through RBAC', () => {
  let cluster: SandboxCluster | undefined;
  let pki: ClusterPki;

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  async function kubeadmCluster(): Promise<SandboxCluster> {
    pki = await generateClusterPki({ clusterName: 'rbac', apiHost: API_HOST, serviceCidr: SERVICE_CIDR });
    const started = await startSandboxCluster({ name: 'rbac', secure: true });
    cluster = started;
    started.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: SERVICE_CIDR }));
    return started;
  }

  const clientAs = async (user: string, groups: string[]) => kubeConfigFor('rbac', cluster?.url ?? '', await issueClientCredentials(pki, { user, groups, validityMinutes: 10 }));

  it('refuses a certificate whose user and groups no binding names, and admits kubeadm:cluster-admins and system:masters', async () => {
    await kubeadmCluster();
    const stranger = (await clientAs('someone', ['some-team'])).makeApiClient(CoreV1Api);
    expect(await status(stranger.listNamespace())).toBe('403 namespaces is forbidden: User "someone" cannot list resource "namespaces" in API group "" at the cluster scope');
    expect(await status(stranger.readNamespacedSecret({ namespace: 'kube-system', name: 'x' }))).toMatch(/^403 secrets "x" is forbidden: User "someone" cannot get/);
    // Discovery stays open to every authenticated user (system:discovery).
    expect(await status(stranger.getAPIResources())).toBe('200');
    // Every O value is a group, the second as much as the first.
    expect(await status((await clientAs('admin-too', ['some-team', 'kubeadm:cluster-admins'])).makeApiClient(CoreV1Api).listNamespace())).toBe('200');
    expect(await status((await clientAs('kubernetes-admin', ['kubeadm:cluster-admins'])).makeApiClient(CoreV1Api).listNamespace())).toBe('200');
    expect(await status((await clientAs('kubernetes-super-admin', ['system:masters'])).makeApiClient(CoreV1Api).listNamespace())).toBe('200');
  });

  it('grants what a binding to the built-in view role grants: pods and namespaces, not Secrets, not Nodes', async () => {
    const started = await kubeadmCluster();
    await applyObjects(kubeConfigFor('rbac', started.url, await issueClientCredentials(pki, { user: 'admin', groups: ['kubeadm:cluster-admins'], validityMinutes: 10 })), [
      groupBinding('viewers', 'view', 'viewers'),
    ]);
    const viewer = (await clientAs('viewer', ['viewers'])).makeApiClient(CoreV1Api);
    expect(await status(viewer.listPodForAllNamespaces())).toBe('200');
    expect(await status(viewer.listNamespace())).toBe('200');
    expect(await status(viewer.listSecretForAllNamespaces())).toMatch(/^403 secrets is forbidden/);
    expect(await status(viewer.listNode())).toMatch(/^403 nodes is forbidden/);
    expect(await status(viewer.deleteNamespace({ name: 'default' }))).toMatch(/^403 namespaces "default" is forbidden: User "viewer" cannot delete/);
  });

  it('refuses a role or binding that grants more than its writer holds, unless the writer may escalate or bind that role', async () => {
    const started = await kubeadmCluster();
    const admin = kubeConfigFor('rbac', started.url, await issueClientCredentials(pki, { user: 'admin', groups: ['kubeadm:cluster-admins'], validityMinutes: 10 }));
    const writeRbac = { apiGroups: [RBAC], resources: ['clusterroles', 'clusterrolebindings'], verbs: ['get', 'create', 'patch'] };
    await applyObjects(admin, [
      clusterRole('rbac-writer', [writeRbac, { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]),
      clusterRole('rbac-delegate', [
        { apiGroups: [RBAC], resources: ['clusterroles'], verbs: ['escalate'], resourceNames: ['secret-reader'] },
        { apiGroups: [RBAC], resources: ['clusterroles'], verbs: ['bind'], resourceNames: ['secret-reader'] },
      ]),
      groupBinding('rbac-writers', 'rbac-writer', 'writers'),
    ]);
    const writer = await clientAs('writer', ['writers']);
    const secretReader = clusterRole('secret-reader', [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
    expect(await status(applyObjects(writer, [clusterRole('configmap-reader', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }])]))).toBe('200');
    expect(await status(applyObjects(writer, [secretReader]))).toBe(
      `403 clusterroles.${RBAC} "secret-reader" is forbidden: user "writer" (groups=["writers" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`,
    );
    expect(await status(applyObjects(writer, [groupBinding('admins', 'cluster-admin', 'writers')]))).toMatch(/^403 clusterrolebindings\.rbac\.authorization\.k8s\.io "admins" is forbidden: .*not currently held/);
    expect(started.objects({ kind: 'ClusterRole', name: 'secret-reader' })).toEqual([]);

    await applyObjects(admin, [groupBinding('rbac-delegates', 'rbac-delegate', 'writers')]);
    expect(await status(applyObjects(writer, [secretReader, groupBinding('secret-readers', 'secret-reader', 'readers')]))).toBe('200');
    // bind on one role is no licence to bind another.
    expect(await status(applyObjects(writer, [groupBinding('admins', 'cluster-admin', 'writers')]))).toMatch(/^403 /);
  });
});
