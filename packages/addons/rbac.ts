import { createHash } from 'node:crypto';
import { KUBECONFIG_GROUPS } from '#core';
import type { Manifest } from './kube.ts';

const RBAC_GROUP = 'rbac.authorization.k8s.io';
const READ = ['get', 'list', 'watch'];
/** What an add-on object gets: read to compare, patch for server-side apply (which also creates), delete to remove it. */
const MANAGE = ['get', 'list', 'patch', 'delete'];

/** Who a client certificate names in a cluster: its CN, and the one O group that its bindings name. */
export interface ClusterIdentity {
  user: string;
  group: string;
}

/** Kiln's workflow steps: add-ons, waits, drains, node labels, join tokens, the rewrite of Secrets in a key rotation. */
export const KILN_CONTROLLER: ClusterIdentity = { user: 'kiln', group: 'kiln:controllers' };
/** Kiln's health poller, which only lists Nodes. */
export const KILN_HEALTH: ClusterIdentity = { user: 'kiln:health', group: 'kiln:health' };
/** The annotation on each of Kiln's own ClusterRoles saying which rendering of the access objects is stored. */
export const ACCESS_DIGEST_ANNOTATION = 'kiln.dev/access-digest';

/** The ClusterRole an identity of Kiln's is bound to, named after its group. */
export const roleOf = (identity: ClusterIdentity): string => identity.group.replace(/s$/, '');

/**
 * The ClusterRoles Kiln's add-ons create and bind: creating a role or a binding that grants more than the writer
 * holds needs `escalate` on that role or `bind` on the role referenced (kubernetes/kubernetes@v1.35.9
 * pkg/registry/rbac/escalation_check.go), so Kiln gets exactly those verbs on exactly these names.
 */
const ADDON_ROLES = ['kiln:helm-controller'];

/**
 * What Kiln's steps call, by what they call it for (packages/addons install.ts, kube.ts, nodes.ts, pool-nodes.ts,
 * control-plane-label.ts; health replace.ts and control-plane.ts; encryption rewrite-secrets.ts). Not pods beyond
 * listing them for a drain, no exec, no namespaces deleted, no other RBAC granted than the add-ons'.
 */
const CONTROLLER_RULES = [
  // Nodes: listed by every wait, labelled for pools and bootstrap charts, cordoned, deleted when their machine goes.
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'patch', 'delete'] },
  // A drain lists a node's pods and evicts them (PodDisruptionBudgets decide).
  { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
  { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
  // Namespaces are applied with their Pod Security labels and never deleted.
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'patch'] },
  // Secrets: add-on Secrets and join tokens are applied and removed; a key rotation reads and rewrites every one.
  { apiGroups: [''], resources: ['secrets'], verbs: [...MANAGE, 'update'] },
  { apiGroups: [''], resources: ['configmaps', 'serviceaccounts'], verbs: MANAGE },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: MANAGE },
  // Charts' workloads are waited for.
  { apiGroups: ['apps'], resources: ['daemonsets'], verbs: ['get'] },
  { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: MANAGE },
  { apiGroups: [RBAC_GROUP], resources: ['clusterroles', 'clusterrolebindings', 'roles', 'rolebindings'], verbs: MANAGE },
  { apiGroups: [RBAC_GROUP], resources: ['clusterroles', 'roles'], verbs: ['bind', 'escalate'], resourceNames: ADDON_ROLES },
  { apiGroups: ['helm.cattle.io'], resources: ['helmcharts'], verbs: MANAGE },
  { apiGroups: ['cert-manager.io'], resources: ['clusterissuers'], verbs: MANAGE },
  { apiGroups: ['kyverno.io'], resources: ['clusterpolicies'], verbs: MANAGE },
  { apiGroups: ['cilium.io'], resources: ['tracingpolicies'], verbs: MANAGE },
];

const HEALTH_RULES = [
  { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
  // To see that its own role is the one this Kiln renders.
  { apiGroups: [RBAC_GROUP], resources: ['clusterroles'], verbs: ['get'], resourceNames: [roleOf(KILN_HEALTH)] },
];

const clusterRole = (name: string, rules: unknown[]): Manifest => ({ apiVersion: `${RBAC_GROUP}/v1`, kind: 'ClusterRole', metadata: { name }, rules });
const groupBinding = (name: string, role: string, group: string): Manifest => ({
  apiVersion: `${RBAC_GROUP}/v1`,
  kind: 'ClusterRoleBinding',
  metadata: { name },
  roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: role },
  subjects: [{ apiGroup: RBAC_GROUP, kind: 'Group', name: group }],
});

/**
 * Who may do what in a cluster on Kiln's account: Kiln's own identities, and the groups of the kubeconfigs it issues
 * (admins bound to cluster-admin, viewers to the built-in `view`, which has no Nodes, plus reading Nodes; neither
 * reads Secrets through `view`). Applied by Kiln's short-lived bootstrap identity, never by the identities they bind,
 * so Kiln's steps cannot widen their own role. Not an add-on: `removeAddons` never sees them.
 */
export function accessObjects(): Manifest[] {
  const objects = [
    clusterRole(roleOf(KILN_CONTROLLER), CONTROLLER_RULES),
    groupBinding(roleOf(KILN_CONTROLLER), roleOf(KILN_CONTROLLER), KILN_CONTROLLER.group),
    clusterRole(roleOf(KILN_HEALTH), HEALTH_RULES),
    groupBinding(roleOf(KILN_HEALTH), roleOf(KILN_HEALTH), KILN_HEALTH.group),
    groupBinding('kiln:admins', 'cluster-admin', KUBECONFIG_GROUPS.admin),
    groupBinding('kiln:viewers', 'view', KUBECONFIG_GROUPS['read-only']),
    clusterRole('kiln:node-viewer', [{ apiGroups: [''], resources: ['nodes'], verbs: READ }]),
    groupBinding('kiln:node-viewers', 'kiln:node-viewer', KUBECONFIG_GROUPS['read-only']),
  ];
  const digest = createHash('sha256').update(JSON.stringify(objects)).digest('hex').slice(0, 16);
  return objects.map((object) => (object.kind === 'ClusterRole' ? { ...object, metadata: { ...object.metadata, annotations: { [ACCESS_DIGEST_ANNOTATION]: digest } } } : object));
}

/** Whether a stored ClusterRole of Kiln's is the one `accessObjects` renders now. */
export function accessCurrent(stored: { metadata?: { annotations?: Record<string, string> } }): boolean {
  const rendered = accessObjects()[0]?.metadata.annotations?.[ACCESS_DIGEST_ANNOTATION];
  return rendered !== undefined && stored.metadata?.annotations?.[ACCESS_DIGEST_ANNOTATION] === rendered;
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
