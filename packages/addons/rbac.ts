import type { Manifest } from './kube.ts';

export const VIEWER_ROLE = 'kiln:viewer';
export const VIEWER_GROUP = 'kiln:viewers';

/** Read-only access for the tenant's viewers. Secrets are left out on purpose: reading one is reading a credential. */
export function rbacObjects(): Manifest[] {
  const read = ['get', 'list', 'watch'];
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: VIEWER_ROLE },
      rules: [
        {
          apiGroups: [''],
          resources: ['pods', 'pods/log', 'services', 'endpoints', 'configmaps', 'namespaces', 'nodes', 'events', 'persistentvolumeclaims', 'persistentvolumes', 'serviceaccounts', 'resourcequotas', 'limitranges'],
          verbs: read,
        },
        { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets', 'replicasets'], verbs: read },
        { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], verbs: read },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'networkpolicies'], verbs: read },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
        { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: read },
        { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: read },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: VIEWER_ROLE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: VIEWER_ROLE },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: VIEWER_GROUP }],
    },
  ];
}

interface BindingLike {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  roleRef?: { kind?: string; name?: string };
  subjects?: { kind?: string; name?: string; namespace?: string }[];
}

/** Namespaces whose service accounts belong to the platform (controllers, chart install Jobs), not to tenants. */
const isSystemNamespace = (namespace: string): boolean => namespace.startsWith('kube-') || namespace === 'kiln-system';

/**
 * Bindings that give cluster-admin to a service account outside the system
 * namespaces: a workload token that can do anything. Returns one line per grant.
 */
export function forbiddenAdminBindings(objects: readonly unknown[]): string[] {
  const found: string[] = [];
  for (const object of objects as BindingLike[]) {
    if (object.kind !== 'ClusterRoleBinding' && object.kind !== 'RoleBinding') continue;
    if (object.roleRef?.kind !== 'ClusterRole' || object.roleRef.name !== 'cluster-admin') continue;
    for (const subject of object.subjects ?? []) {
      // A RoleBinding's subject without a namespace means the binding's own namespace.
      const namespace = subject.namespace ?? object.metadata?.namespace ?? '';
      if (subject.kind === 'ServiceAccount' && !isSystemNamespace(namespace)) {
        found.push(`${object.kind} ${[object.metadata?.namespace, object.metadata?.name].filter(Boolean).join('/')} grants cluster-admin to ServiceAccount ${namespace}/${subject.name ?? ''}`);
      }
    }
  }
  return found;
}
