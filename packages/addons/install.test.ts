import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterSpec, DEFAULT_KUBERNETES_VERSION } from '#core';
import { type SandboxCluster, helmControllerCrds, startHelmController, startSandboxCluster } from '#sandbox';
import { PLACEHOLDER_ISSUER_CA } from './cert-manager.ts';
import { addonDrift, installAddons, liveForbiddenAdminBindings, removeAddons } from './install.ts';
import { applyObjects } from './kube.ts';
import { renderAddons } from './render.ts';

const FULL_ORDER = {
  name: 'full',
  region: 'eu-central-1',
  nodePools: [{ name: 'default', size: 1 }],
  certManager: { acmeIssuers: [{ name: 'letsencrypt', server: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com' }] },
  extensions: { policyEngine: { enabled: true }, intrusionDetection: { enabled: true } },
};

describe('installAddons against the sandbox', () => {
  let cluster: SandboxCluster;
  let config: KubeConfig;
  let stopRunner: (() => Promise<void>) | undefined;
  /** helm-controller as upstream runs it, from the Deployment the installer applies. */
  const runHelmController = () => {
    stopRunner = startHelmController(cluster).stop;
  };
  /** What helm-controller leaves when it starts (its CRDs), for tests where no chart should run. */
  const serveHelmCharts = () => {
    for (const crd of helmControllerCrds()) cluster.writeObject(crd, 'helm-controller');
  };

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'addons', kubernetesVersion: DEFAULT_KUBERNETES_VERSION });
    cluster.registerNode({ name: 'cp-1', role: 'control-plane' });
    cluster.registerNode({ name: 'w-1', role: 'worker', pool: 'default' });
    config = new KubeConfig();
    config.loadFromString(cluster.kubeconfig());
    stopRunner = undefined;
  });

  afterEach(async () => {
    await stopRunner?.();
    await cluster.close();
  });

  const render = (order: Record<string, unknown>) => renderAddons('cls_test', ClusterSpec.parse(order), { issuerCa: PLACEHOLDER_ISSUER_CA });

  it('installs everything in order, then a second run changes nothing', async () => {
    runHelmController();
    const addons = render(FULL_ORDER);
    const result = await installAddons(config, addons, { deadlineMs: 20_000, pollMs: 20 });

    expect(result.pending).toEqual([]);
    expect(cluster.objects({ kind: 'ClusterIssuer' }).map((issuer) => (issuer.metadata as { name: string }).name).sort()).toEqual(['kiln-cluster-issuer', 'letsencrypt']);
    expect(cluster.objects({ kind: 'TracingPolicy' })).toHaveLength(1);
    // The control plane node carries the label value helm-controller's bootstrap Jobs select (Cilium's).
    expect((cluster.objects({ kind: 'Node', name: 'cp-1' })[0]?.metadata as { labels: Record<string, string> }).labels['node-role.kubernetes.io/control-plane']).toBe('true');
    expect(await addonDrift(config, addons.flatMap((addon) => addon.objects))).toEqual([]);
    expect(await liveForbiddenAdminBindings(config)).toEqual([]);
    // ClusterIssuers are applied only after their CRD was served, which the chart runner did after the HelmChart.
    const order = cluster.requestLog.filter((entry) => entry.mutated).map((entry) => entry.path);
    const chartIndex = order.findIndex((path) => path.includes('/helmcharts/cert-manager'));
    const issuerIndex = order.findIndex((path) => path.includes('/clusterissuers/'));
    expect(chartIndex).toBeGreaterThanOrEqual(0);
    expect(issuerIndex).toBeGreaterThan(chartIndex);

    await stopRunner?.();
    stopRunner = undefined;
    cluster.clearRequestLog();
    await installAddons(config, addons, { deadlineMs: 20_000, pollMs: 20 });
    expect(await removeAddons(config, addons)).toEqual([]);
    expect(cluster.mutatingRequests()).toEqual([]);
  });

  it('puts back a field another manager changed', async () => {
    serveHelmCharts();
    const addons = render({ ...FULL_ORDER, extensions: {} });
    const { pending } = await installAddons(config, addons, { deadlineMs: 20_000, pollMs: 20, waitForCharts: false });
    const objects = KubernetesObjectApi.makeApiClient(config);
    // Someone turns Cilium's encryption off behind Kiln's back (merge patch: the API refuses strategic merge on custom resources).
    await objects.patch(
      { apiVersion: 'helm.cattle.io/v1', kind: 'HelmChart', metadata: { name: 'cilium', namespace: 'kube-system' }, spec: { valuesContent: 'encryption:\n  enabled: false\n' } },
      undefined, undefined, 'intruder', undefined, PatchStrategy.MergePatch,
    );
    await objects.patch(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'helm-controller', namespace: 'kube-system' }, spec: { replicas: 3 } },
      undefined, undefined, 'intruder', undefined, PatchStrategy.MergePatch,
    );
    // With no helm-controller running, the ClusterIssuers stay pending; everything else must be as applied.
    const all = addons.flatMap((addon) => addon.objects).filter((object) => !pending.includes(`${object.kind}/${object.metadata.name}`));
    expect(await addonDrift(config, all)).toEqual(expect.arrayContaining([expect.stringContaining('HelmChart/kube-system/cilium .spec.valuesContent'), expect.stringContaining('Deployment/kube-system/helm-controller .spec.replicas')]));

    await installAddons(config, addons, { deadlineMs: 20_000, pollMs: 20, waitForCharts: false });
    expect(await addonDrift(config, all)).toEqual([]);
  });

  it('removes Tetragon when the order turns intrusion detection off, and leaves the rest', async () => {
    runHelmController();
    await installAddons(config, render(FULL_ORDER), { deadlineMs: 20_000, pollMs: 20 });
    const without = render({ ...FULL_ORDER, extensions: { policyEngine: { enabled: true } } });

    const removed = await removeAddons(config, without);
    expect(removed.sort()).toEqual(['HelmChart/kube-system/tetragon', 'TracingPolicy/kiln-kill-privilege-gain']);
    expect(cluster.objects({ kind: 'TracingPolicy' })).toEqual([]);
    expect(cluster.objects({ kind: 'HelmChart' }).map((chart) => (chart.metadata as { name: string }).name).sort()).toEqual(['cert-manager', 'cilium', 'kubelet-csr-approver', 'kured', 'kyverno']);
    expect(await addonDrift(config, without.flatMap((addon) => addon.objects))).toEqual([]);
  });

  it('reports resources whose chart CRDs are not served yet as pending when not waiting for charts', async () => {
    serveHelmCharts();
    const result = await installAddons(config, render(FULL_ORDER), { deadlineMs: 20_000, pollMs: 20, waitForCharts: false });
    expect(result.pending.sort()).toEqual(['ClusterIssuer/kiln-cluster-issuer', 'ClusterIssuer/letsencrypt', 'ClusterPolicy/kiln-disallow-mutable-image-tags', 'ClusterPolicy/kiln-pod-security', 'TracingPolicy/kiln-kill-privilege-gain']);
    expect(cluster.objects({ kind: 'HelmChart' })).toHaveLength(6);
  });

  it('times out with the thing it waited for when the helm-controller cannot be scheduled', async () => {
    cluster.setNodeReady('cp-1', 'False');
    await expect(installAddons(config, render(FULL_ORDER), { deadlineMs: 300, pollMs: 20 })).rejects.toThrow(/Deployment kube-system\/helm-controller/);
  });

  it('finds a cluster-admin binding for a tenant service account', async () => {
    await applyObjects(config, [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'ci-admin' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'ci', namespace: 'team-a' }],
      },
    ]);
    expect(await liveForbiddenAdminBindings(config)).toEqual(['ClusterRoleBinding ci-admin grants cluster-admin to ServiceAccount team-a/ci']);
  });
});
