import { setTimeout as delay } from 'node:timers/promises';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterSpec } from '#core';
import { type SandboxCluster, startSandboxCluster } from '#sandbox';
import { CHART_READINESS_ANNOTATION, type ChartReadiness } from './charts.ts';
import { PLACEHOLDER_ISSUER_CA } from './cert-manager.ts';
import { addonDrift, installAddons, liveForbiddenAdminBindings, removeAddons } from './install.ts';
import { type Manifest, applyObjects } from './kube.ts';
import { renderAddons } from './render.ts';

const FULL_ORDER = {
  name: 'full',
  region: 'eu-central-1',
  nodePools: [{ name: 'default', size: 1 }],
  certManager: { acmeIssuers: [{ name: 'letsencrypt', server: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com' }] },
  extensions: { policyEngine: { enabled: true }, intrusionDetection: { enabled: true } },
};

/** The CRDs the real charts install, by name: what the stand-in chart runner serves. */
const CHART_CRDS: Record<string, { group: string; version: string; kind: string; plural: string; scope: 'Cluster' | 'Namespaced' }> = {
  'clusterissuers.cert-manager.io': { group: 'cert-manager.io', version: 'v1', kind: 'ClusterIssuer', plural: 'clusterissuers', scope: 'Cluster' },
  'certificates.cert-manager.io': { group: 'cert-manager.io', version: 'v1', kind: 'Certificate', plural: 'certificates', scope: 'Namespaced' },
  'clusterpolicies.kyverno.io': { group: 'kyverno.io', version: 'v1', kind: 'ClusterPolicy', plural: 'clusterpolicies', scope: 'Cluster' },
  'tracingpolicies.cilium.io': { group: 'cilium.io', version: 'v1alpha1', kind: 'TracingPolicy', plural: 'tracingpolicies', scope: 'Cluster' },
};

function chartRunnerObjects(readiness: ChartReadiness): Manifest[] {
  const crds = readiness.crds.map((name): Manifest => {
    const crd = CHART_CRDS[name];
    if (crd === undefined) throw new Error(`no stand-in for ${name}`);
    return {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
      spec: {
        group: crd.group,
        scope: crd.scope,
        names: { kind: crd.kind, plural: crd.plural, singular: crd.kind.toLowerCase(), listKind: `${crd.kind}List` },
        versions: [{ name: crd.version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
  });
  const workloads = readiness.workloads.map((workload): Manifest => {
    const labels = { app: workload.name };
    const template = { metadata: { labels }, spec: { tolerations: [{ operator: 'Exists' }], containers: [{ name: workload.name, image: `example/${workload.name}:1.0.0` }] } };
    return {
      apiVersion: 'apps/v1',
      kind: workload.kind,
      metadata: { name: workload.name, namespace: workload.namespace },
      spec: { selector: { matchLabels: labels }, template, ...(workload.kind === 'Deployment' ? { replicas: 1 } : {}) },
    };
  });
  return [...crds, ...workloads];
}

/**
 * Stands in for helm-controller, which the sandbox does not run: when a
 * HelmChart appears, it serves the chart's CRDs and workloads, as the install
 * Job would. Field manager `helm`, as a real release would have.
 */
function startChartRunner(cluster: SandboxCluster, config: KubeConfig): () => Promise<void> {
  const installed = new Set<string>();
  const state = { running: true };
  const loop = (async () => {
    while (state.running) {
      for (const chart of cluster.objects({ kind: 'HelmChart' })) {
        const metadata = chart.metadata as { name: string; annotations?: Record<string, string> };
        if (installed.has(metadata.name)) continue;
        installed.add(metadata.name);
        const readiness = JSON.parse(metadata.annotations?.[CHART_READINESS_ANNOTATION] ?? '{"crds":[],"workloads":[]}') as ChartReadiness;
        const objects = chartRunnerObjects(readiness);
        for (const object of objects) await KubernetesObjectApi.makeApiClient(config).patch(object, undefined, undefined, 'helm', true, PatchStrategy.ServerSideApply);
      }
      // A controller's reconcile interval, not a wait in the test: assertions wait on conditions.
      await delay(10);
    }
  })();
  return async () => {
    state.running = false;
    await loop;
  };
}

describe('installAddons against the sandbox', () => {
  let cluster: SandboxCluster;
  let config: KubeConfig;
  let stopRunner: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'addons', kubernetesVersion: '1.33' });
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
    stopRunner = startChartRunner(cluster, config);
    const addons = render(FULL_ORDER);
    const result = await installAddons(config, addons, { deadlineMs: 20_000, pollMs: 20 });

    expect(result.pending).toEqual([]);
    expect(cluster.objects({ kind: 'ClusterIssuer' }).map((issuer) => (issuer.metadata as { name: string }).name).sort()).toEqual(['kiln-cluster-issuer', 'letsencrypt']);
    expect(cluster.objects({ kind: 'TracingPolicy' })).toHaveLength(1);
    // client-node would drop this key on its own; without it a real API server prunes every HelmChart's spec.
    expect(cluster.objects({ kind: 'CustomResourceDefinition', name: 'helmcharts.helm.cattle.io' })[0]).toMatchObject({
      spec: { versions: [{ schema: { openAPIV3Schema: { properties: { spec: { 'x-kubernetes-preserve-unknown-fields': true } } } } }] },
    });
    expect(await addonDrift(config, addons.flatMap((addon) => addon.objects))).toEqual([]);
    expect(await liveForbiddenAdminBindings(config)).toEqual([]);
    // ClusterIssuers are applied only after their CRD was served, which the chart runner did after the HelmChart.
    const order = cluster.requestLog.filter((entry) => entry.mutated).map((entry) => entry.path);
    const chartIndex = order.findIndex((path) => path.includes('/helmcharts/cert-manager'));
    const issuerIndex = order.findIndex((path) => path.includes('/clusterissuers/'));
    expect(chartIndex).toBeGreaterThanOrEqual(0);
    expect(issuerIndex).toBeGreaterThan(chartIndex);

    await stopRunner();
    stopRunner = undefined;
    cluster.clearRequestLog();
    await installAddons(config, addons, { deadlineMs: 20_000, pollMs: 20 });
    expect(await removeAddons(config, addons)).toEqual([]);
    expect(cluster.mutatingRequests()).toEqual([]);
  });

  it('puts back a field another manager changed', async () => {
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
    // Without a chart runner the ClusterIssuers stay pending; everything else must be as applied.
    const all = addons.flatMap((addon) => addon.objects).filter((object) => !pending.includes(`${object.kind}/${object.metadata.name}`));
    expect(await addonDrift(config, all)).toEqual(expect.arrayContaining([expect.stringContaining('HelmChart/kube-system/cilium .spec.valuesContent'), expect.stringContaining('Deployment/kube-system/helm-controller .spec.replicas')]));

    await installAddons(config, addons, { deadlineMs: 20_000, pollMs: 20, waitForCharts: false });
    expect(await addonDrift(config, all)).toEqual([]);
  });

  it('removes Tetragon when the order turns intrusion detection off, and leaves the rest', async () => {
    stopRunner = startChartRunner(cluster, config);
    await installAddons(config, render(FULL_ORDER), { deadlineMs: 20_000, pollMs: 20 });
    const without = render({ ...FULL_ORDER, extensions: { policyEngine: { enabled: true } } });

    const removed = await removeAddons(config, without);
    expect(removed.sort()).toEqual(['HelmChart/kube-system/tetragon', 'TracingPolicy/kiln-kill-privilege-gain']);
    expect(cluster.objects({ kind: 'TracingPolicy' })).toEqual([]);
    expect(cluster.objects({ kind: 'HelmChart' }).map((chart) => (chart.metadata as { name: string }).name).sort()).toEqual(['cert-manager', 'cilium', 'kyverno']);
    expect(await addonDrift(config, without.flatMap((addon) => addon.objects))).toEqual([]);
  });

  it('reports resources whose chart CRDs are not served yet as pending when not waiting for charts', async () => {
    const result = await installAddons(config, render(FULL_ORDER), { deadlineMs: 20_000, pollMs: 20, waitForCharts: false });
    expect(result.pending.sort()).toEqual(['ClusterIssuer/kiln-cluster-issuer', 'ClusterIssuer/letsencrypt', 'ClusterPolicy/kiln-disallow-mutable-image-tags', 'ClusterPolicy/kiln-pod-security', 'TracingPolicy/kiln-kill-privilege-gain']);
    expect(cluster.objects({ kind: 'HelmChart' })).toHaveLength(4);
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
