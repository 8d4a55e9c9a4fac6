import { type JsonObject, arrayAt, isObject, objectAt, stringAt, stringsAt } from './json.ts';

/** A request as RBAC sees it (kubernetes/kubernetes@v1.35.9 pkg/registry/rbac/validation/rule.go). */
export interface RbacRequest {
  verb: string;
  group: string;
  /** The plural resource, with its subresource after a slash (`helmcharts/status`). */
  resource: string;
  /** Undefined for a request at cluster scope (a list or watch across namespaces, a cluster-scoped object). */
  namespace?: string;
  name?: string;
}

export interface ServiceAccountRef {
  namespace: string;
  name: string;
}

/** What the RBAC authorizer reads: every Role, ClusterRole and binding the cluster stores. */
export interface RbacObjects {
  roles: readonly JsonObject[];
  clusterRoles: readonly JsonObject[];
  roleBindings: readonly JsonObject[];
  clusterRoleBindings: readonly JsonObject[];
}

const matches = (allowed: readonly string[], wanted: string): boolean => allowed.includes('*') || allowed.includes(wanted);

/** rule.go RuleAllows: verbs, API groups, resources (`*` or `resource/*` for subresources) and, if listed, names. */
export function ruleAllows(rule: JsonObject, request: RbacRequest): boolean {
  const [resource = '', subresource] = request.resource.split('/');
  const resources = stringsAt(rule, 'resources');
  const resourceMatches =
    resources.includes('*') || resources.includes(request.resource) || (subresource !== undefined && resources.includes(`${resource}/*`)) || (subresource === undefined && resources.includes(resource));
  const names = stringsAt(rule, 'resourceNames');
  return (
    matches(stringsAt(rule, 'verbs'), request.verb) &&
    matches(stringsAt(rule, 'apiGroups'), request.group) &&
    resourceMatches &&
    (names.length === 0 || (request.name !== undefined && names.includes(request.name)))
  );
}

/** Who RBAC asks about: a user name and its groups, as the authenticator left them. */
export interface RbacUser {
  name: string;
  groups: readonly string[];
}

/**
 * A service account's token user (kubernetes/kubernetes@v1.35.9 staging/src/k8s.io/apiserver/pkg/authentication/
 * serviceaccount/util.go UserInfo): `system:serviceaccount:<ns>:<name>` in the service-account groups.
 */
export function serviceAccountUser(account: ServiceAccountRef): RbacUser {
  return {
    name: `system:serviceaccount:${account.namespace}:${account.name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${account.namespace}`, 'system:authenticated'],
  };
}

/**
 * rule.go appliesToUser: a User subject by name, a Group by membership, a ServiceAccount by its token user's name
 * (its namespace defaulting to the binding's).
 */
function bindsUser(binding: JsonObject, user: RbacUser): boolean {
  const bindingNamespace = stringAt(objectAt(binding, 'metadata'), 'namespace') ?? '';
  return arrayAt(binding, 'subjects')
    .filter(isObject)
    .some((subject) => {
      const name = stringAt(subject, 'name') ?? '';
      if (subject.kind === 'User') return user.name === name;
      if (subject.kind === 'Group') return user.groups.includes(name);
      if (subject.kind !== 'ServiceAccount') return false;
      const namespace = stringAt(subject, 'namespace') ?? bindingNamespace;
      return user.name === `system:serviceaccount:${namespace}:${name}`;
    });
}

const ALL: JsonObject = { apiGroups: ['*'], resources: ['*'], verbs: ['*'] };
const READ = ['get', 'list', 'watch'];

/**
 * kube-apiserver's bootstrap ClusterRoles the sandbox plays without storing them (its rbac/bootstrap-roles post-start
 * hook writes them on a real server): kubernetes/kubernetes@v1.35.9 plugin/pkg/auth/authorizer/rbac/bootstrappolicy/
 * policy.go and testdata/cluster-roles.yaml. `view` is aggregated from `system:aggregate-to-view`; its rules here are
 * that role's (roles that CRDs aggregate into `view` are not played).
 */
const BOOTSTRAP_CLUSTER_ROLES: Readonly<Record<string, readonly JsonObject[]>> = {
  'cluster-admin': [ALL, { nonResourceURLs: ['*'], verbs: ['*'] }],
  view: [
    {
      apiGroups: [''],
      resources: [
        'configmaps', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'pods', 'replicationcontrollers', 'replicationcontrollers/scale',
        'serviceaccounts', 'services', 'services/status', 'bindings', 'events', 'limitranges', 'namespaces/status', 'pods/log', 'pods/status',
        'replicationcontrollers/status', 'resourcequotas', 'resourcequotas/status', 'namespaces',
      ],
      verbs: READ,
    },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
    {
      apiGroups: ['apps'],
      resources: ['controllerrevisions', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'statefulsets', 'statefulsets/scale', 'statefulsets/status'],
      verbs: READ,
    },
    { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers', 'horizontalpodautoscalers/status'], verbs: READ },
    { apiGroups: ['batch'], resources: ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status'], verbs: READ },
    { apiGroups: ['policy'], resources: ['poddisruptionbudgets', 'poddisruptionbudgets/status'], verbs: READ },
    { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'ingresses/status', 'networkpolicies'], verbs: READ },
  ],
};

/** The rules of a role reference; undefined when it names a role that does not exist. */
export function roleReferenceRules(roleRef: JsonObject | undefined, objects: RbacObjects, namespace: string | undefined): JsonObject[] | undefined {
  const kind = stringAt(roleRef, 'kind');
  const name = stringAt(roleRef, 'name') ?? '';
  const found =
    kind === 'ClusterRole'
      ? objects.clusterRoles.find((role) => stringAt(objectAt(role, 'metadata'), 'name') === name)
      : objects.roles.find((role) => stringAt(objectAt(role, 'metadata'), 'name') === name && stringAt(objectAt(role, 'metadata'), 'namespace') === namespace);
  if (found === undefined) {
    const bootstrap = kind === 'ClusterRole' ? BOOTSTRAP_CLUSTER_ROLES[name] : undefined;
    return bootstrap === undefined ? undefined : [...bootstrap];
  }
  return arrayAt(found, 'rules').filter(isObject);
}

/**
 * Every rule a user holds where a request in `namespace` is decided (rule.go VisitRulesFor): ClusterRoleBindings
 * everywhere, RoleBindings only in their own namespace (so never for a request at cluster scope).
 */
export function rulesFor(objects: RbacObjects, user: RbacUser, namespace: string | undefined): JsonObject[] {
  const clusterWide = objects.clusterRoleBindings.filter((binding) => bindsUser(binding, user)).flatMap((binding) => roleReferenceRules(objectAt(binding, 'roleRef'), objects, undefined) ?? []);
  const namespaced =
    namespace === undefined
      ? []
      : objects.roleBindings
          .filter((binding) => stringAt(objectAt(binding, 'metadata'), 'namespace') === namespace && bindsUser(binding, user))
          .flatMap((binding) => roleReferenceRules(objectAt(binding, 'roleRef'), objects, namespace) ?? []);
  return [...clusterWide, ...namespaced];
}

/** Whether RBAC allows a user a request. Aggregated ClusterRoles are not played beyond the bootstrap `view`. */
export function rbacAllows(objects: RbacObjects, user: RbacUser, request: RbacRequest): boolean {
  return rulesFor(objects, user, request.namespace).some((rule) => ruleAllows(rule, request));
}

/** rule.go NonResourceURLMatches: a non-resource rule allows a path by name or by a trailing `*` prefix. */
export function nonResourceRuleAllows(rule: JsonObject, verb: string, path: string): boolean {
  const urls = stringsAt(rule, 'nonResourceURLs');
  return matches(stringsAt(rule, 'verbs'), verb) && urls.some((url) => url === path || url === '*' || (url.endsWith('*') && path.startsWith(url.slice(0, -1))));
}

/** How the API server words a refusal, as a controller logs it. */
export function forbiddenMessage(account: ServiceAccountRef, request: RbacRequest): string {
  const [resource = '', subresource] = request.resource.split('/');
  const what = `${resource}${request.group === '' ? '' : `.${request.group}`}${request.name === undefined ? '' : ` "${request.name}"`}`;
  const where = request.namespace === undefined ? 'at the cluster scope' : `in the namespace "${request.namespace}"`;
  return `${what} is forbidden: User "system:serviceaccount:${account.namespace}:${account.name}" cannot ${request.verb} resource "${resource}"${subresource === undefined ? '' : ` (subresource "${subresource}")`} in API group "${request.group}" ${where}`;
}
