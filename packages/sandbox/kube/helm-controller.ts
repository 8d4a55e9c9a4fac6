import { X509Certificate } from 'node:crypto';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { CHART_READINESS_ANNOTATION, type ChartReadiness, type Manifest } from '#addons';
import type { SandboxCluster } from './cluster.ts';
import { type NodeView, daemonRunsOn, nodeView, schedulableFor } from './controllers.ts';
import { type JsonObject, arrayAt, isObject, objectAt, stringAt, stringsAt } from './json.ts';
import { type RbacRequest, forbiddenMessage, rbacAllows, serviceAccountUser } from './rbac.ts';

/** The controller's image, whatever its registry and tag. */
const CONTROLLER_IMAGE = /(^|\/)rancher\/helm-controller:/;

/** The CRDs the real charts install, by name: what the stand-in chart runner serves. */
const CHART_CRDS: Record<string, { group: string; version: string; kind: string; plural: string; scope: 'Cluster' | 'Namespaced' }> = {
  'clusterissuers.cert-manager.io': { group: 'cert-manager.io', version: 'v1', kind: 'ClusterIssuer', plural: 'clusterissuers', scope: 'Cluster' },
  'certificates.cert-manager.io': { group: 'cert-manager.io', version: 'v1', kind: 'Certificate', plural: 'certificates', scope: 'Namespaced' },
  'clusterpolicies.kyverno.io': { group: 'kyverno.io', version: 'v1', kind: 'ClusterPolicy', plural: 'clusterpolicies', scope: 'Cluster' },
  'tracingpolicies.cilium.io': { group: 'cilium.io', version: 'v1alpha1', kind: 'TracingPolicy', plural: 'tracingpolicies', scope: 'Cluster' },
};

/**
 * Workloads the real charts run on the host network, which is what lets them start before any CNI is configured:
 * Cilium's agent DaemonSet and its operator (cilium/charts@009b5e95 cilium-1.20.0.tgz templates/cilium-agent/
 * daemonset.yaml and templates/cilium-operator/deployment.yaml: `hostNetwork: true`; values.yaml tolerations
 * `- operator: Exists` for both). Every other chart's pods need the pod network.
 */
const HOST_NETWORK_WORKLOADS = new Set(['cilium/cilium', 'cilium/cilium-operator']);

/** What `helm install` of a chart creates here: the CRDs and workloads its readiness annotation names. */
function chartObjects(chart: string, readiness: ChartReadiness): Manifest[] {
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
    const hostNetwork = HOST_NETWORK_WORKLOADS.has(`${chart}/${workload.name}`);
    const template = {
      metadata: { labels },
      spec: { ...(hostNetwork ? { hostNetwork } : {}), tolerations: [{ operator: 'Exists' }], containers: [{ name: workload.name, image: `example/${workload.name}:1.0.0` }] },
    };
    return {
      apiVersion: 'apps/v1',
      kind: workload.kind,
      metadata: { name: workload.name, namespace: workload.namespace },
      spec: { selector: { matchLabels: labels }, template, ...(workload.kind === 'Deployment' ? { replicas: 1 } : {}) },
    };
  });
  return [...crds, ...workloads];
}

/** How an install Job's pod, or the controller's own, reaches the API server. */
interface PodView {
  podSpec: JsonObject;
  container: JsonObject;
}

const CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane';

/** The value a container's environment gives a variable; an explicit one wins over the kubelet's Service variables. */
function envValue(container: JsonObject, name: string): string | undefined {
  const entry = arrayAt(container, 'env').find((item) => isObject(item) && item.name === name);
  return isObject(entry) ? stringAt(entry, 'value') : undefined;
}


/**
 * What the controller needs from RBAC, read off its code (k3s-io/helm-controller@v0.17.7 pkg/cmd/cmd.go,
 * pkg/controllers/controllers.go, pkg/controllers/chart/chart.go; rancher/wrangler@v3.3.3 pkg/crd, pkg/apply,
 * pkg/leader): it creates or updates its CRDs at start; its informers list and watch at cluster scope whatever
 * --namespace says (the shared cache is built with no namespace); it writes each chart's Job, ServiceAccount,
 * values Secret and binding, the chart's status and finalizer, its lease and its events. Without any of them it
 * exits (CRDs, leader election) or its caches never sync: either way no chart runs.
 */
function requiredPermissions(namespace: string): RbacRequest[] {
  const each = (verbs: string[], group: string, resources: string[], scope?: string, name?: string) =>
    verbs.flatMap((verb) => resources.map((resource): RbacRequest => ({ verb, group, resource, ...(scope === undefined ? {} : { namespace: scope }), ...(name === undefined ? {} : { name }) })));
  return [
    ...each(['get', 'list', 'create', 'update'], 'apiextensions.k8s.io', ['customresourcedefinitions']),
    ...each(['get', 'create', 'update'], 'coordination.k8s.io', ['leases'], namespace),
    ...each(['list', 'watch'], 'helm.cattle.io', ['helmcharts', 'helmchartconfigs']),
    ...each(['list', 'watch'], 'batch', ['jobs']),
    ...each(['list', 'watch'], '', ['serviceaccounts', 'configmaps', 'secrets']),
    ...each(['get', 'list', 'watch', 'create', 'patch', 'delete'], 'rbac.authorization.k8s.io', ['clusterrolebindings']),
    ...each(['bind'], 'rbac.authorization.k8s.io', ['clusterroles'], undefined, 'cluster-admin'),
    ...each(['get', 'update'], 'helm.cattle.io', ['helmcharts'], namespace),
    ...each(['update'], 'helm.cattle.io', ['helmcharts/status'], namespace),
    ...each(['get', 'create', 'patch', 'delete'], 'batch', ['jobs'], namespace),
    ...each(['get', 'create', 'patch', 'delete'], '', ['serviceaccounts', 'configmaps', 'secrets'], namespace),
    ...each(['create', 'patch'], '', ['events'], namespace),
  ];
}

/** The controller's own CRDs, as it writes them at every start (pkg/crds/yaml/generated, created or updated). */
function controllerCrd(kind: 'HelmChart' | 'HelmChartConfig', plural: string): JsonObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.helm.cattle.io` },
    spec: {
      group: 'helm.cattle.io',
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } },
        },
      ],
    },
  };
}

/** The Job (and its ServiceAccount, binding and values) the controller applies for a chart: chart.go job() and friends. */
function installObjects(chart: JsonObject): { job: JsonObject; related: JsonObject[] } {
  const metadata = objectAt(chart, 'metadata') ?? {};
  const name = stringAt(metadata, 'name') ?? '';
  const namespace = stringAt(metadata, 'namespace') ?? 'default';
  const spec = objectAt(chart, 'spec') ?? {};
  const bootstrap = spec.bootstrap === true;
  const target = stringAt(spec, 'targetNamespace') ?? namespace;
  const labels = { 'helmcharts.helm.cattle.io/chart': name };
  const env = [
    { name: 'NAME', value: name },
    { name: 'VERSION', value: stringAt(spec, 'version') ?? '' },
    { name: 'REPO', value: stringAt(spec, 'repo') ?? '' },
    { name: 'HELM_DRIVER', value: 'secret' },
    { name: 'CHART_NAMESPACE', value: namespace },
    { name: 'CHART', value: stringAt(spec, 'repo') === undefined ? (stringAt(spec, 'chart') ?? '') : `${name}/${stringAt(spec, 'chart') ?? ''}` },
    { name: 'TARGET_NAMESPACE', value: target },
    // Bootstrap charts run before any pod network: their node's own API server, with the port helm-controller is
    // given (controllers.go passes "6443").
    ...(bootstrap ? [{ name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' }, { name: 'KUBERNETES_SERVICE_PORT', value: '6443' }, { name: 'BOOTSTRAP', value: 'true' }] : []),
  ];
  const job: JsonObject = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `helm-install-${name}`, namespace, labels },
    spec: {
      backoffLimit: 1000,
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: `helm-${name}`,
          restartPolicy: 'OnFailure',
          priorityClassName: 'system-cluster-critical',
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          // K3s labels its servers' control-plane role "true"; this is the value the Job selects.
          nodeSelector: { 'kubernetes.io/os': 'linux', ...(bootstrap ? { [CONTROL_PLANE_LABEL]: 'true' } : {}) },
          ...(bootstrap
            ? {
                hostNetwork: true,
                tolerations: [
                  { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' },
                  { key: 'node.kubernetes.io/network-unavailable', effect: 'NoSchedule' },
                  { key: 'node.cloudprovider.kubernetes.io/uninitialized', value: 'true', effect: 'NoSchedule' },
                  { key: 'CriticalAddonsOnly', operator: 'Exists' },
                  { key: 'node-role.kubernetes.io/etcd', operator: 'Exists', effect: 'NoExecute' },
                  { key: CONTROL_PLANE_LABEL, operator: 'Exists', effect: 'NoSchedule' },
                ],
              }
            : {}),
          containers: [
            {
              name: 'helm',
              image: stringAt(spec, 'jobImage') ?? 'rancher/klipper-helm:latest',
              args: ['install', '--namespace', target, '--version', stringAt(spec, 'version') ?? ''],
              env,
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true },
            },
          ],
        },
      },
    },
  };
  const related: JsonObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `helm-${name}`, namespace, labels }, automountServiceAccountToken: true },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `helm-${namespace}-${name}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: `helm-${name}`, namespace }],
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `chart-values-${name}`, namespace, labels },
      type: 'helmcharts.helm.cattle.io/values',
      data: { 'values-01_HelmChart.yaml': Buffer.from(stringAt(spec, 'valuesContent') ?? '').toString('base64') },
    },
  ];
  return { job, related };
}

/** The CRDs helm-controller writes when it starts, for tests that need HelmCharts served without running it. */
export function helmControllerCrds(): JsonObject[] {
  return [controllerCrd('HelmChart', 'helmcharts'), controllerCrd('HelmChartConfig', 'helmchartconfigs')];
}

export interface HelmControllerState {
  /** Whether the controller runs and serves charts, and if not, why (as its pod's status or log would say). */
  running: boolean;
  why?: string;
  /** Per HelmChart: whether its install Job ran to completion, and if not, why. */
  charts: Record<string, { installed: boolean; why?: string }>;
}

export interface HelmControllerStandIn {
  state: () => HelmControllerState;
  stop: () => Promise<void>;
}

/**
 * Plays k3s-io/helm-controller v0.17.7 and its install Jobs as upstream writes them, from the Deployment Kiln applies
 * (an image of rancher/helm-controller): the controller runs only if its container starts (the image's CMD is
 * `helm-controller`, with no ENTRYPOINT), a node runs its pod, the pod reaches an API server (KUBERNETES_SERVICE_HOST
 * from its env, else the kubernetes Service, which only kube-proxy or Cilium translate) whose certificate names the
 * address it dials, and its ServiceAccount holds every permission its code uses. It then writes its CRDs and, for
 * each HelmChart in its namespace, the install Job with the pod template chart.go writes (a bootstrap chart's on the
 * host network of a node labelled control-plane "true", dialling 127.0.0.1:6443). A Job's chart is installed once a
 * node runs its pod and that pod reaches the API server; what the chart then creates is what its readiness annotation
 * names (the charts themselves are not run here), with the host-network workloads the real charts have.
 */
export function startHelmController(cluster: SandboxCluster): HelmControllerStandIn {
  let config: KubeConfig | undefined;
  const applied = new Map<string, string>();
  const installed = new Map<string, string>();
  let current: HelmControllerState = { running: false, why: 'not started', charts: {} };
  let crdsWritten = false;
  const loop = { running: true, changed: true };
  let wake: (() => void) | undefined;
  const kinds = ['HelmChart', 'Deployment', 'DaemonSet', 'Node', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'];
  const unsubscribe = kinds.map((kind) =>
    cluster.onChange({ kind }, () => {
      loop.changed = true;
      wake?.();
    }),
  );

  const nodes = (): NodeView[] => cluster.objects({ kind: 'Node' }).map(nodeView);
  const rbac = () => ({
    roles: cluster.objects({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' }),
    clusterRoles: cluster.objects({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' }),
    roleBindings: cluster.objects({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' }),
    clusterRoleBindings: cluster.objects({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding' }),
  });

  /** Why a pod on this node cannot reach an API server, or undefined when it can. */
  const unreachable = ({ podSpec, container }: PodView, node: NodeView): string | undefined => {
    const host = envValue(container, 'KUBERNETES_SERVICE_HOST');
    if (host === undefined) {
      // The kubelet's Service variables name the kubernetes Service's ClusterIP: kube-proxy's rules or Cilium's
      // socket load balancer translate it on the node (kubernetes/kubernetes@v1.35.9 pkg/kubelet/kubelet_pods.go
      // getServiceEnvVarMap); Cilium is this cluster's only CNI, so a Ready node has it.
      const kubeProxy = cluster.objects({ apiVersion: 'apps/v1', kind: 'DaemonSet', namespace: 'kube-system', name: 'kube-proxy' })[0];
      if (node.ready || (kubeProxy !== undefined && daemonRunsOn(kubeProxy, node))) return undefined;
      return `dial tcp: i/o timeout: nothing on ${node.name} translates the kubernetes Service's address (no kube-proxy, no Cilium yet)`;
    }
    if (host === '127.0.0.1' || host === 'localhost') {
      if (podSpec.hostNetwork !== true) return `dial tcp ${host}: connection refused (the pod's own loopback)`;
      if (node.labels[CONTROL_PLANE_LABEL] === undefined) return `dial tcp ${host}: connection refused (no API server on ${node.name})`;
      const served = cluster.servingCertificate();
      if (served !== undefined && new X509Certificate(served).checkIP('127.0.0.1') === undefined && host === '127.0.0.1') {
        return `tls: failed to verify certificate: x509: certificate is valid for ${new X509Certificate(served).subjectAltName ?? 'no names'}, not 127.0.0.1`;
      }
    }
    return undefined;
  };

  const controllerProblem = (): { why: string } | { namespace: string } => {
    const deployment = cluster
      .objects({ apiVersion: 'apps/v1', kind: 'Deployment' })
      .find((candidate) => arrayAt(objectAt(objectAt(objectAt(candidate, 'spec') ?? {}, 'template') ?? {}, 'spec'), 'containers').some((container) => isObject(container) && CONTROLLER_IMAGE.test(stringAt(container, 'image') ?? '')));
    if (deployment === undefined) return { why: 'no helm-controller Deployment' };
    const podSpec = objectAt(objectAt(objectAt(deployment, 'spec') ?? {}, 'template') ?? {}, 'spec') ?? {};
    const container = arrayAt(podSpec, 'containers').find((candidate): candidate is JsonObject => isObject(candidate) && CONTROLLER_IMAGE.test(stringAt(candidate, 'image') ?? ''));
    if (container === undefined) return { why: 'no helm-controller container' };
    // k3s-io/helm-controller@v0.17.7 Dockerfile (production stage): CMD ["helm-controller"], no ENTRYPOINT, so `args`
    // without `command` replace the CMD and become the program.
    const command = stringsAt(container, 'command');
    const args = stringsAt(container, 'args');
    const argv = command.length > 0 ? [...command, ...args] : args.length > 0 ? args : ['helm-controller'];
    const program = argv[0] ?? '';
    if (program !== 'helm-controller' && !program.endsWith('/helm-controller')) {
      return { why: `CrashLoopBackOff: exec: "${program}": executable file not found in $PATH` };
    }
    const [node] = schedulableFor(deployment, nodes());
    if (node === undefined) return { why: 'Pending: no node runs its pod' };
    const dialFailure = unreachable({ podSpec, container }, node);
    if (dialFailure !== undefined) return { why: `CrashLoopBackOff: ${dialFailure}` };
    const flag = argv.indexOf('--namespace');
    const namespace = (flag >= 0 ? argv[flag + 1] : undefined) ?? envValue(container, 'NAMESPACE') ?? '';
    const account = { namespace: stringAt(objectAt(deployment, 'metadata'), 'namespace') ?? 'default', name: stringAt(podSpec, 'serviceAccountName') ?? 'default' };
    const objects = rbac();
    const refused = requiredPermissions(namespace === '' ? 'kube-system' : namespace).find((request) => !rbacAllows(objects, serviceAccountUser(account), request));
    if (refused !== undefined) return { why: `CrashLoopBackOff: ${forbiddenMessage(account, refused)}` };
    return { namespace };
  };

  const pass = async (): Promise<void> => {
    const controller = controllerProblem();
    if ('why' in controller) {
      crdsWritten = false;
      current = { running: false, why: controller.why, charts: current.charts };
      return;
    }
    if (!crdsWritten) {
      for (const crd of helmControllerCrds()) cluster.writeObject(crd, 'helm-controller');
      crdsWritten = true;
    }
    const charts: HelmControllerState['charts'] = {};
    for (const chart of cluster.objects({ kind: 'HelmChart' })) {
      const metadata = objectAt(chart, 'metadata') ?? {};
      const name = stringAt(metadata, 'name') ?? '';
      if (controller.namespace !== '' && stringAt(metadata, 'namespace') !== controller.namespace) continue;
      const hash = JSON.stringify(chart.spec ?? null);
      const { job, related } = installObjects(chart);
      if (applied.get(name) !== hash) {
        for (const object of [...related, job]) cluster.writeObject(object, 'helm-controller');
        applied.set(name, hash);
      }
      if (installed.get(name) === hash) {
        charts[name] = { installed: true };
        continue;
      }
      const podSpec = objectAt(objectAt(objectAt(job, 'spec') ?? {}, 'template') ?? {}, 'spec') ?? {};
      const container = arrayAt(podSpec, 'containers').find(isObject) ?? {};
      const [node] = schedulableFor(job, nodes());
      if (node === undefined) {
        charts[name] = { installed: false, why: `Job ${stringAt(objectAt(job, 'metadata'), 'name') ?? ''} pending: no node runs its pod` };
        continue;
      }
      const dialFailure = unreachable({ podSpec, container }, node);
      if (dialFailure !== undefined) {
        charts[name] = { installed: false, why: `helm on ${node.name}: ${dialFailure}` };
        continue;
      }
      const readiness = JSON.parse(stringAt(objectAt(metadata, 'annotations'), CHART_READINESS_ANNOTATION) ?? '{"crds":[],"workloads":[]}') as ChartReadiness;
      if (config === undefined) {
        config = new KubeConfig();
        config.loadFromString(cluster.kubeconfig());
      }
      for (const object of chartObjects(stringAt(objectAt(chart, 'spec'), 'chart') ?? name, readiness)) {
        await KubernetesObjectApi.makeApiClient(config).patch(object, undefined, undefined, 'helm', true, PatchStrategy.ServerSideApply);
      }
      installed.set(name, hash);
      charts[name] = { installed: true };
    }
    current = { running: true, charts };
  };

  const done = (async () => {
    while (loop.running) {
      if (!loop.changed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      loop.changed = false;
      try {
        await pass();
      } catch (error) {
        // As a controller's work queue does: log, and try again shortly.
        current = { ...current, why: error instanceof Error ? error.message : String(error) };
        setTimeout(() => {
          loop.changed = true;
          wake?.();
        }, 100).unref();
      }
    }
  })();
  return {
    state: () => current,
    stop: async () => {
      loop.running = false;
      for (const stop of unsubscribe) stop();
      wake?.();
      await done;
    },
  };
}
