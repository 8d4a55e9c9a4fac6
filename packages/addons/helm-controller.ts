import { ADDON_RELEASES } from '#core';
import { RESTRICTED_CONTAINER_SECURITY } from './addon.ts';
import type { Manifest } from './kube.ts';

/** Pinned in Kiln's version table (#core ADDON_RELEASES), with its source; bump deliberately, never float. */
export const HELM_CONTROLLER_IMAGE = `docker.io/rancher/helm-controller:${ADDON_RELEASES.helmController.version}`;
const NAMESPACE = 'kube-system';
const NAME = 'helm-controller';

function crd(kind: 'HelmChart' | 'HelmChartConfig', plural: string): Manifest {
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
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                // The controller owns the full field list; Kiln's own schema check (validate.ts) is the strict one.
                spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  };
}

/**
 * k3s-io/helm-controller, run as a Deployment because kubeadm clusters do not
 * embed it. It must start before any pod network exists (it installs the CNI),
 * so it uses the host network and tolerates not-ready nodes.
 */
export function helmControllerObjects(): Manifest[] {
  const labels = { 'app.kubernetes.io/name': NAME };
  return [
    crd('HelmChart', 'helmcharts'),
    crd('HelmChartConfig', 'helmchartconfigs'),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: NAME, namespace: NAMESPACE }, automountServiceAccountToken: true },
    {
      // Everything the controller touches lives in kube-system (it watches only there), so most of its rights are a Role.
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'kiln:helm-controller', namespace: NAMESPACE },
      rules: [
        { apiGroups: ['helm.cattle.io'], resources: ['helmcharts', 'helmchartconfigs'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
        { apiGroups: ['helm.cattle.io'], resources: ['helmcharts/status', 'helmcharts/finalizers'], verbs: ['get', 'update', 'patch'] },
        // Each chart is installed by a Job running as its own ServiceAccount, with its values in a Secret/ConfigMap.
        { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['serviceaccounts', 'configmaps', 'secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
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
        // The install Jobs need cluster-admin (charts create CRDs and ClusterRoles), bound per chart by the controller.
        // `bind` on that one role is what allows it; it is the controller's only cluster-wide power.
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
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
            nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
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
                args: ['--namespace', NAMESPACE],
                env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
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
