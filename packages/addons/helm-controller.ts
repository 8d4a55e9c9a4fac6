import { API_SERVER_PORT } from '#bootstrap';
import { ADDON_RELEASES } from '#core';
import { RESTRICTED_CONTAINER_SECURITY } from './addon.ts';
import type { Manifest } from './kube.ts';

/** Pinned in Kiln's version table (#core ADDON_RELEASES), with its source; bump deliberately, never float. */
export const HELM_CONTROLLER_IMAGE = `docker.io/rancher/helm-controller:${ADDON_RELEASES.helmController.version}`;
const NAMESPACE = 'kube-system';
const NAME = 'helm-controller';

/**
 * k3s-io/helm-controller, run as a Deployment because kubeadm clusters do not
 * embed it. It must start before any pod network exists (it installs the CNI),
 * so it uses the host network and tolerates not-ready nodes.
 */
export function helmControllerObjects(): Manifest[] {
  const labels = { 'app.kubernetes.io/name': NAME };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: NAME, namespace: NAMESPACE }, automountServiceAccountToken: true },
    {
      // What it writes, all in kube-system: each chart's install Job, its ServiceAccount, values Secret and content
      // ConfigMap (wrangler apply: create, patch, delete), the chart's status and finalizer, its lease and events.
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'kiln:helm-controller', namespace: NAMESPACE },
      rules: [
        { apiGroups: ['helm.cattle.io'], resources: ['helmcharts'], verbs: ['get', 'update'] },
        { apiGroups: ['helm.cattle.io'], resources: ['helmcharts/status'], verbs: ['update'] },
        { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['serviceaccounts', 'configmaps', 'secrets'], verbs: ['get', 'create', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'kiln:helm-controller', namespace: NAMESPACE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kiln:helm-controller' },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'kiln:helm-controller' },
      rules: [
        // It creates or updates its own CRDs at every start (pkg/cmd/cmd.go, wrangler v3.3.3 pkg/crd/crd.go).
        { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['get', 'list', 'create', 'update'] },
        // Its informers list and watch at cluster scope whatever --namespace says (controllers.go builds its cache
        // with no namespace); --namespace only filters which charts it acts on. Helm's release Secrets are read in
        // each chart's target namespace.
        { apiGroups: ['helm.cattle.io'], resources: ['helmcharts', 'helmchartconfigs'], verbs: ['list', 'watch'] },
        { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'watch'] },
        { apiGroups: [''], resources: ['serviceaccounts', 'configmaps', 'secrets'], verbs: ['list', 'watch'] },
        // Each install Job runs as its own ServiceAccount bound to cluster-admin (charts create CRDs and
        // ClusterRoles); `bind` on that one role is what lets the controller make those bindings.
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], resourceNames: ['cluster-admin'], verbs: ['bind'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kiln:helm-controller' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kiln:helm-controller' },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: NAME, namespace: NAMESPACE, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        // Two controllers would race on the same charts; replace rather than surge.
        strategy: { type: 'Recreate' },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: NAME,
            hostNetwork: true,
            priorityClassName: 'system-cluster-critical',
            // By the label's presence: Kiln sets its value to "true" for bootstrap charts, kubeadm leaves it empty.
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [{ matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] }],
                },
              },
            },
            tolerations: [
              { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
              // No CNI yet means every node is not-ready; the controller is what installs the CNI, so it stays.
              { key: 'node.kubernetes.io/not-ready', operator: 'Exists' },
              { key: 'node.cilium.io/agent-not-ready', operator: 'Exists' },
            ],
            securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: NAME,
                image: HELM_CONTROLLER_IMAGE,
                imagePullPolicy: 'IfNotPresent',
                // The image has no ENTRYPOINT, only CMD ["helm-controller"] (its Dockerfile): args alone would replace
                // the CMD and the runtime would try to run "--namespace".
                command: ['helm-controller'],
                args: ['--namespace', NAMESPACE],
                env: [
                  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                  // This node's own API server, on the host network: the kubernetes Service's address needs kube-proxy or
                  // Cilium, and Cilium is what this controller installs. Its certificate names 127.0.0.1 (kubeadm.ts).
                  { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
                  { name: 'KUBERNETES_SERVICE_PORT', value: String(API_SERVER_PORT) },
                ],
                resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: RESTRICTED_CONTAINER_SECURITY,
              },
            ],
          },
        },
      },
    },
  ];
}
