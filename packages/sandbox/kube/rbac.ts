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
function ruleAllows(rule: JsonObject, request: RbacRequest): boolean {
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

function bindsServiceAccount(binding: JsonObject, account: ServiceAccountRef): boolean {
  return arrayAt(binding, 'subjects')
    .filter(isObject)
    .some((subject) => subject.kind === 'ServiceAccount' && subject.name === account.name && (stringAt(subject, 'namespace') ?? '') === account.namespace);
}

/** The rules of a role reference: `cluster-admin` is kube-apiserver's bootstrap role (every verb on everything) when not stored. */
function rulesOf(roleRef: JsonObject | undefined, objects: RbacObjects, namespace: string | undefined): JsonObject[] {
  const kind = stringAt(roleRef, 'kind');
  const name = stringAt(roleRef, 'name');
  const found =
    kind === 'ClusterRole'
      ? objects.clusterRoles.find((role) => stringAt(objectAt(role, 'metadata'), 'name') === name)
      : objects.roles.find((role) => stringAt(objectAt(role, 'metadata'), 'name') === name && stringAt(objectAt(role, 'metadata'), 'namespace') === namespace);
  if (found === undefined && kind === 'ClusterRole' && name === 'cluster-admin') return [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }];
  return arrayAt(found, 'rules').filter(isObject);
}

/**
 * Whether RBAC allows a service account a request: ClusterRoleBindings grant their role everywhere, RoleBindings only
 * in their own namespace (so never a request at cluster scope). Aggregated ClusterRoles are not played.
 */
export function rbacAllows(objects: RbacObjects, account: ServiceAccountRef, request: RbacRequest): boolean {
  const clusterWide = objects.clusterRoleBindings.filter((binding) => bindsServiceAccount(binding, account)).flatMap((binding) => rulesOf(objectAt(binding, 'roleRef'), objects, undefined));
  const namespaced =
    request.namespace === undefined
      ? []
      : objects.roleBindings
          .filter((binding) => stringAt(objectAt(binding, 'metadata'), 'namespace') === request.namespace && bindsServiceAccount(binding, account))
          .flatMap((binding) => rulesOf(objectAt(binding, 'roleRef'), objects, request.namespace));
  return [...clusterWide, ...namespaced].some((rule) => ruleAllows(rule, request));
}

/** How the API server words a refusal, as a controller logs it. */
export function forbiddenMessage(account: ServiceAccountRef, request: RbacRequest): string {
  const [resource = '', subresource] = request.resource.split('/');
  const what = `${resource}${request.group === '' ? '' : `.${request.group}`}${request.name === undefined ? '' : ` "${request.name}"`}`;
  const where = request.namespace === undefined ? 'at the cluster scope' : `in the namespace "${request.namespace}"`;
  return `${what} is forbidden: User "system:serviceaccount:${account.namespace}:${account.name}" cannot ${request.verb} resource "${resource}"${subresource === undefined ? '' : ` (subresource "${subresource}")`} in API group "${request.group}" ${where}`;
}
