import type { RequestUser } from './bootstrap-tokens.ts';
import type { KubeRequest } from './http.ts';
import { type JsonObject, arrayAt, isObject, objectAt, stringAt } from './json.ts';
import { forbiddenRequestMessage, kubeadmRbacAllows, rbacVerb } from './kubeadm-rbac.ts';
import { type RbacObjects, type RbacRequest, type RbacUser, nonResourceRuleAllows, rbacAllows, roleReferenceRules, ruleAllows, rulesFor } from './rbac.ts';
import { KubeApiError, forbidden } from './status.ts';

/** kubernetes/kubernetes@v1.35.9 staging/src/k8s.io/apiserver/pkg/authentication/user/user.go SystemPrivilegedGroup. */
export const PRIVILEGED_GROUP = 'system:masters';
const RBAC_GROUP = 'rbac.authorization.k8s.io';

/**
 * The request as RBAC sees it (staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go): apply is a patch,
 * the subresource follows the resource, and a request for a Namespace object is in that namespace.
 */
export function rbacRequestOf(request: KubeRequest): RbacRequest {
  const namespace = request.resource === 'namespaces' && request.namespace === undefined ? request.name : request.namespace;
  return {
    verb: rbacVerb(request),
    group: request.group ?? '',
    resource: request.subresource === undefined ? (request.resource ?? '') : `${request.resource ?? ''}/${request.subresource}`,
    ...(namespace === undefined ? {} : { namespace }),
    ...(request.name === undefined ? {} : { name: request.name }),
  };
}

/**
 * The authorizers kube-apiserver chains with `--authorization-mode=Node,RBAC` (pkg/kubeapiserver/authorizer/config.go):
 * system:masters first (authorizerfactory.NewPrivilegedGroups), then RBAC over the cluster's stored roles and bindings
 * with the bootstrap policy's (plugin/pkg/auth/authorizer/rbac/rbac.go). The Node authorizer is not played: kubelets are
 * in-process here. Undefined when allowed, else the Forbidden message.
 */
export function refusalOf(user: RequestUser, request: KubeRequest, objects: RbacObjects): string | undefined {
  if (user.groups.includes(PRIVILEGED_GROUP) || kubeadmRbacAllows(user, request)) return undefined;
  if (request.resource !== undefined) return rbacAllows(objects, user, rbacRequestOf(request)) ? undefined : forbiddenRequestMessage(user, request);
  const verb = request.method.toLowerCase();
  return rulesFor(objects, user, undefined).some((rule) => nonResourceRuleAllows(rule, verb, request.path)) ? undefined : forbiddenRequestMessage(user, request);
}

/** Every single permission a rule grants (policy_comparator.go BreakdownRule): one verb, group, resource and name each. */
function breakdown(rule: JsonObject): RbacRequest[] {
  const strings = (key: string): string[] => arrayAt(rule, key).filter((value): value is string => typeof value === 'string');
  const names = strings('resourceNames');
  return strings('verbs').flatMap((verb) =>
    strings('apiGroups').flatMap((group) =>
      strings('resources').flatMap((resource) => (names.length === 0 ? [{ verb, group, resource }] : names.map((name) => ({ verb, group, resource, name })))),
    ),
  );
}

/**
 * pkg/registry/rbac/validation/policy_comparator.go Covers: whether the owner's rules include every permission of
 * `rules`. A `*` asked for is covered only by a `*` held; a rule without names only by a rule without names.
 */
function uncovered(owner: readonly JsonObject[], rules: readonly JsonObject[]): string[] {
  const missing: string[] = [];
  for (const rule of rules) {
    for (const wanted of breakdown(rule)) {
      if (!owner.some((held) => ruleAllows(held, wanted))) {
        missing.push(`{APIGroups:["${wanted.group}"], Resources:["${wanted.resource}"], ${wanted.name === undefined ? '' : `ResourceNames:["${wanted.name}"], `}Verbs:["${wanted.verb}"]}`);
      }
    }
    const urls = arrayAt(rule, 'nonResourceURLs').filter((value): value is string => typeof value === 'string');
    const verbs = arrayAt(rule, 'verbs').filter((value): value is string => typeof value === 'string');
    for (const url of urls) {
      for (const verb of verbs) {
        if (!owner.some((held) => nonResourceRuleAllows(held, verb, url))) missing.push(`{NonResourceURLs:["${url}"], Verbs:["${verb}"]}`);
      }
    }
  }
  return [...new Set(missing)];
}

/**
 * The RBAC storage's escalation check on a Role, ClusterRole or binding a request would store (pkg/registry/rbac/
 * escalation_check.go, clusterrole/policybased/storage.go, clusterrolebinding/policybased/storage.go and their
 * namespaced twins): system:masters may; a role needs the `escalate` verb on it or the writer to hold every rule it
 * grants; a binding needs the `bind` verb on the role it references or the writer to hold every rule of that role.
 */
export function escalationRefusal(user: RbacUser, request: KubeRequest, object: JsonObject, objects: RbacObjects): KubeApiError | undefined {
  if (request.group !== RBAC_GROUP || user.groups.includes(PRIVILEGED_GROUP)) return undefined;
  const metadata = objectAt(object, 'metadata');
  const name = stringAt(metadata, 'name') ?? '';
  const namespace = stringAt(metadata, 'namespace');
  const base = { group: RBAC_GROUP, ...(namespace === undefined ? {} : { namespace }) };
  let granted: JsonObject[];
  if (request.resource === 'roles' || request.resource === 'clusterroles') {
    if (rbacAllows(objects, user, { ...base, verb: 'escalate', resource: request.resource, name })) return undefined;
    granted = arrayAt(object, 'rules').filter(isObject);
  } else if (request.resource === 'rolebindings' || request.resource === 'clusterrolebindings') {
    const roleRef = objectAt(object, 'roleRef');
    const roleName = stringAt(roleRef, 'name') ?? '';
    const roleResource = stringAt(roleRef, 'kind') === 'ClusterRole' ? 'clusterroles' : 'roles';
    if (rbacAllows(objects, user, { ...base, verb: 'bind', resource: roleResource, name: roleName })) return undefined;
    const rules = roleReferenceRules(roleRef, objects, namespace);
    if (rules === undefined) return new KubeApiError(404, 'NotFound', `${roleResource}.${RBAC_GROUP} "${roleName}" not found`, { name: roleName, group: RBAC_GROUP, kind: roleResource });
    granted = rules;
  } else {
    return undefined;
  }
  const missing = uncovered(rulesFor(objects, user, namespace), granted);
  if (missing.length === 0) return undefined;
  const groups = user.groups.map((group) => `"${group}"`).join(' ');
  return forbidden(
    `${request.resource}.${RBAC_GROUP} "${name}" is forbidden: user "${user.name}" (groups=[${groups}]) is attempting to grant RBAC permissions not currently held:\n${missing.join('\n')}`,
  );
}
