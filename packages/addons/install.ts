import { setTimeout as delay } from 'node:timers/promises';
import { type KubeConfig, type KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import { ADDON_LABEL, type Addon, objectRef } from './addon.ts';
import { CHART_READINESS_ANNOTATION, type ChartReadiness } from './charts.ts';
import { type Manifest, applyObjects } from './kube.ts';
import { isBootstrapChart, markControlPlaneForBootstrapCharts } from './control-plane-label.ts';
import { forbiddenAdminBindings } from './rbac.ts';

export interface InstallOptions {
  /** Time allowed for the whole install, waits included. */
  deadlineMs: number;
  /**
   * Whether to wait for each chart's workloads and CRDs to appear; the add-ons
   * step does (helm-controller runs the install Jobs, and locally the sandbox
   * plays it). Without it, a chart counts as installed once its HelmChart is
   * stored, and custom resources whose CRD is not served yet come back as
   * pending: the network step, whose chart's workloads come up only as nodes
   * join. Either way HelmCharts wait for helm-controller to serve their kind.
   */
  waitForCharts?: boolean;
  /** How often conditions are re-read while waiting. */
  pollMs?: number;
}

export interface InstallResult {
  applied: string[];
  /** Custom resources not applied because their CRD is not served yet. */
  pending: string[];
}

export class AddonInstallTimeoutError extends Error {
  constructor(readonly waitingFor: string) {
    super(`Timed out waiting for ${waitingFor}.`);
    this.name = 'AddonInstallTimeoutError';
  }
}

/** API groups the API server serves itself, or that helm-controller serves before any chart runs (HelmCharts). */
const KILN_SERVED_GROUPS = new Set(['', 'apps', 'rbac.authorization.k8s.io', 'apiextensions.k8s.io', 'helm.cattle.io']);
const groupOf = (apiVersion: string): string => (apiVersion.includes('/') ? (apiVersion.split('/')[0] ?? '') : '');

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 404;
}

async function readOrUndefined(config: KubeConfig, ref: { apiVersion: string; kind: string; name: string; namespace?: string }): Promise<KubernetesObject | undefined> {
  try {
    return await KubernetesObjectApi.makeApiClient(config).read({
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: { name: ref.name, ...(ref.namespace === undefined ? {} : { namespace: ref.namespace }) },
    });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

interface Condition {
  type?: string;
  status?: string;
}
const conditionsOf = (object: KubernetesObject | undefined): Condition[] =>
  ((object as { status?: { conditions?: Condition[] } } | undefined)?.status?.conditions ?? []);

function workloadReady(object: KubernetesObject | undefined): boolean {
  if (object === undefined) return false;
  if (object.kind === 'DaemonSet') {
    const status = (object as { status?: { desiredNumberScheduled?: number; numberAvailable?: number } }).status;
    return (status?.desiredNumberScheduled ?? 0) > 0 && (status?.numberAvailable ?? 0) >= (status?.desiredNumberScheduled ?? 0);
  }
  return conditionsOf(object).some((condition) => condition.type === 'Available' && condition.status === 'True');
}

const crdEstablished = (object: KubernetesObject | undefined): boolean =>
  conditionsOf(object).some((condition) => condition.type === 'Established' && condition.status === 'True');

/** Whether the API server serves a kind; a fresh client each time, because client-node caches discovery. */
async function served(config: KubeConfig, apiVersion: string, kind: string): Promise<boolean> {
  try {
    await KubernetesObjectApi.makeApiClient(config).list(apiVersion, kind, undefined, undefined, undefined, undefined, undefined, undefined, 1);
    return true;
  } catch (error) {
    if (isNotFound(error) || (error instanceof Error && /Unrecognized API version and kind|not found/i.test(error.message))) return false;
    throw error;
  }
}

function readinessOf(chart: Manifest): ChartReadiness {
  const text = chart.metadata.annotations?.[CHART_READINESS_ANNOTATION];
  return text === undefined ? { crds: [], workloads: [] } : (JSON.parse(text) as ChartReadiness);
}

/**
 * Applies the add-ons with server-side apply, in dependency order: Kiln's CRDs
 * (until Established), namespaces and plain objects, Kiln's own Deployments
 * (until Available: the helm-controller must run before charts mean anything),
 * HelmCharts (until their workloads are available, see `waitForCharts`), and
 * last the custom resources that charts' CRDs define (ClusterIssuers,
 * ClusterPolicies, TracingPolicies). Every apply is forced, so a field another
 * manager changed is put back; an unchanged object is not written again.
 */
export async function installAddons(config: KubeConfig, addons: readonly Addon[], options: InstallOptions): Promise<InstallResult> {
  const deadline = Date.now() + options.deadlineMs;
  const pollMs = options.pollMs ?? 250;
  const waitForCharts = options.waitForCharts ?? true;
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    for (;;) {
      if (await check()) return;
      if (Date.now() >= deadline) throw new AddonInstallTimeoutError(what);
      await delay(pollMs);
    }
  };

  const objects = addons.flatMap((addon) => addon.objects);
  const crds = objects.filter((object) => object.kind === 'CustomResourceDefinition');
  const charts = objects.filter((object) => object.kind === 'HelmChart');
  const chartResources = objects.filter((object) => !KILN_SERVED_GROUPS.has(groupOf(object.apiVersion)));
  const namespaces = objects.filter((object) => object.kind === 'Namespace');
  const plain = objects.filter((object) => !crds.includes(object) && !charts.includes(object) && !chartResources.includes(object) && !namespaces.includes(object));
  const applied: string[] = [];
  const apply = async (batch: Manifest[]): Promise<void> => {
    await applyObjects(config, batch);
    applied.push(...batch.map(objectRef));
  };

  await apply(crds);
  for (const crd of crds) {
    await until(`CustomResourceDefinition ${crd.metadata.name} to be Established`, async () =>
      crdEstablished(await readOrUndefined(config, { apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name })),
    );
  }
  await apply(namespaces);
  await apply(plain);
  for (const deployment of plain.filter((object) => object.kind === 'Deployment')) {
    await until(`Deployment ${deployment.metadata.namespace ?? ''}/${deployment.metadata.name} to be Available`, async () =>
      workloadReady(await readOrUndefined(config, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name, namespace: deployment.metadata.namespace ?? 'default' })),
    );
  }

  // helm-controller creates its CRDs when it starts (k3s-io/helm-controller@v0.17.7 pkg/cmd/cmd.go BatchCreateCRDs).
  const [firstChart] = charts;
  if (firstChart !== undefined) {
    await until('helm-controller to serve HelmCharts', () => served(config, firstChart.apiVersion, firstChart.kind));
    // Bootstrap charts' install Jobs select control plane nodes by a label value kubeadm does not give them.
    if (charts.some(isBootstrapChart)) await markControlPlaneForBootstrapCharts(config);
  }
  for (const chart of charts) {
    await apply([chart]);
    const readiness = readinessOf(chart);
    for (const workload of readiness.workloads) {
      const ref = { apiVersion: 'apps/v1', kind: workload.kind, name: workload.name, namespace: workload.namespace };
      if (!waitForCharts && (await readOrUndefined(config, ref)) === undefined) continue;
      await until(`${workload.kind} ${workload.namespace}/${workload.name} of chart ${chart.metadata.name} to be available`, async () =>
        workloadReady(await readOrUndefined(config, ref)),
      );
    }
  }

  const pending: string[] = [];
  for (const object of chartResources) {
    if (waitForCharts) {
      await until(`${object.apiVersion} ${object.kind} to be served`, () => served(config, object.apiVersion, object.kind));
    } else if (!(await served(config, object.apiVersion, object.kind))) {
      pending.push(objectRef(object));
      continue;
    }
    await apply([object]);
  }
  return { applied, pending };
}

/**
 * Kinds Kiln may have applied, removal order first: custom resources before
 * the charts that serve them, charts before the controller. Namespaces are
 * never removed: deleting one deletes the tenant's workloads in it.
 */
export const REMOVABLE_KINDS: readonly { apiVersion: string; kind: string }[] = [
  { apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy' },
  { apiVersion: 'kyverno.io/v1', kind: 'ClusterPolicy' },
  { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer' },
  { apiVersion: 'helm.cattle.io/v1', kind: 'HelmChart' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' },
  { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' },
];

/** Deletes objects labelled as Kiln's add-ons that `addons` no longer renders (an extension turned off). Returns what it deleted. */
export async function removeAddons(config: KubeConfig, addons: readonly Addon[]): Promise<string[]> {
  const wanted = new Set(addons.flatMap((addon) => addon.objects).map((object) => `${object.apiVersion}|${objectRef(object)}`));
  const deleted: string[] = [];
  for (const { apiVersion, kind } of REMOVABLE_KINDS) {
    if (!(await served(config, apiVersion, kind))) continue;
    const client = KubernetesObjectApi.makeApiClient(config);
    const list = await client.list(apiVersion, kind, undefined, undefined, undefined, undefined, undefined, ADDON_LABEL);
    for (const item of list.items) {
      const name = item.metadata?.name ?? '';
      const namespace = item.metadata?.namespace;
      const ref = objectRef({ kind, metadata: { name, ...(namespace === undefined ? {} : { namespace }) } });
      if (wanted.has(`${apiVersion}|${ref}`)) continue;
      try {
        // List items carry no apiVersion/kind of their own.
        await client.delete({ ...item, apiVersion, kind });
        deleted.push(ref);
      } catch (error) {
        // Gone already (a namespace or CRD deletion took it): that is what was wanted.
        if (!isNotFound(error)) throw error;
      }
    }
  }
  return deleted;
}

/** Every leaf of `wanted` equals the same path in `live` (the server may add fields; it must not change Kiln's). */
function driftOf(wanted: unknown, live: unknown, path: string): string[] {
  if (wanted !== null && typeof wanted === 'object') {
    if (live === null || typeof live !== 'object') return [path];
    if (Array.isArray(wanted)) {
      if (!Array.isArray(live) || live.length !== wanted.length) return [path];
      return wanted.flatMap((item, index) => driftOf(item, live[index], `${path}[${index}]`));
    }
    const fields = live as Record<string, unknown>;
    // client-node reads built-in kinds into its models, which spell `x-kubernetes-*` schema keys with underscores.
    return Object.entries(wanted).flatMap(([key, value]) => driftOf(value, key in fields ? fields[key] : fields[key.replaceAll('-', '_')], `${path}.${key}`));
  }
  return Object.is(wanted, live) ? [] : [path];
}

/** Objects that are missing or differ from what Kiln applied, as "Kind/ns/name .field" lines. */
export async function addonDrift(config: KubeConfig, objects: readonly Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const object of objects) {
    const live = await readOrUndefined(config, {
      apiVersion: object.apiVersion,
      kind: object.kind,
      name: object.metadata.name,
      ...(object.metadata.namespace === undefined ? {} : { namespace: object.metadata.namespace }),
    });
    if (live === undefined) {
      problems.push(`${objectRef(object)} is missing`);
      continue;
    }
    const { apiVersion: _apiVersion, kind: _kind, ...fields } = object;
    problems.push(...driftOf(fields, live, '').map((field) => `${objectRef(object)} ${field} differs`));
  }
  return problems;
}

/** forbiddenAdminBindings over every binding in the cluster, not only Kiln's. */
export async function liveForbiddenAdminBindings(config: KubeConfig): Promise<string[]> {
  const client = KubernetesObjectApi.makeApiClient(config);
  const clusterBindings = await client.list('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding');
  const bindings = await client.list('rbac.authorization.k8s.io/v1', 'RoleBinding');
  return forbiddenAdminBindings([
    ...clusterBindings.items.map((item) => ({ ...item, kind: 'ClusterRoleBinding' })),
    ...bindings.items.map((item) => ({ ...item, kind: 'RoleBinding' })),
  ]);
}
