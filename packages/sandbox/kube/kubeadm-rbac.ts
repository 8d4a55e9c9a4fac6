import type { RequestUser } from './bootstrap-tokens.ts';
import type { KubeRequest } from './http.ts';

/**
 * What a cluster kubeadm made lets every user do through the bindings kubeadm and kube-apiserver's bootstrap policy
 * store: discovery, anonymous requests (when --anonymous-auth allows them) and bootstrap tokens, so a join that needs
 * more than that fails here too. Everything else is decided by the cluster's stored RBAC objects (`authorizer.ts`).
 */

interface Grant {
  /** Who: a user name or a group. */
  users?: readonly string[];
  groups?: readonly string[];
  /** What: resource requests (all fields must match; a missing one matches anything) or non-resource verbs. */
  verbs: readonly string[];
  group?: string;
  resource?: string;
  namespace?: string;
  names?: readonly string[];
  nonResource?: boolean;
}

const NODE_TOKEN_GROUP = 'system:bootstrappers:kubeadm:default-node-token';

const GRANTS: readonly Grant[] = [
  // plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go: system:public-info-viewer (health and version) for
  // everyone, system:discovery (/api, /apis) for authenticated users only.
  { groups: ['system:authenticated', 'system:unauthenticated'], verbs: ['health', 'version'], nonResource: true },
  { groups: ['system:authenticated'], verbs: ['discovery'], nonResource: true },
  // kubernetes/kubernetes cmd/kubeadm/app/phases/bootstraptoken/clusterinfo/clusterinfo.go CreateClusterInfoRBACRules:
  // Role kubeadm:bootstrap-signer-clusterinfo, get on kube-public/cluster-info, bound to the User system:anonymous only.
  { users: ['system:anonymous'], verbs: ['get'], group: '', resource: 'configmaps', namespace: 'kube-public', names: ['cluster-info'] },
  // cmd/kubeadm/app/phases/bootstraptoken/node/tlsbootstrap.go: kubeadm:get-nodes, and system:node-bootstrapper for
  // the kubelet's CSR, bound to the node token group.
  { groups: [NODE_TOKEN_GROUP], verbs: ['get'], group: '', resource: 'nodes' },
  { groups: [NODE_TOKEN_GROUP], verbs: ['create', 'get', 'list', 'watch'], group: 'certificates.k8s.io', resource: 'certificatesigningrequests' },
  // cmd/kubeadm/app/phases/uploadconfig/uploadconfig.go and phases/kubelet/config.go: kube-system/kubeadm-config and
  // kubelet-config, readable by the node token group and system:nodes.
  { groups: [NODE_TOKEN_GROUP, 'system:nodes'], verbs: ['get'], group: '', resource: 'configmaps', namespace: 'kube-system', names: ['kubeadm-config', 'kubelet-config'] },
];

function grants(grant: Grant, user: RequestUser, request: KubeRequest): boolean {
  const who = (grant.users ?? []).includes(user.name) || (grant.groups ?? []).some((group) => user.groups.includes(group));
  if (!who || !grant.verbs.includes(rbacVerb(request))) return false;
  const resourceRequest = request.resource !== undefined;
  if (grant.nonResource === true) return !resourceRequest;
  if (!resourceRequest || request.subresource !== undefined) return false;
  return (
    (grant.group === undefined || grant.group === (request.group ?? '')) &&
    (grant.resource === undefined || grant.resource === request.resource) &&
    (grant.namespace === undefined || grant.namespace === request.namespace) &&
    (grant.names === undefined || grant.names.includes(request.name ?? ''))
  );
}

/** The verb RBAC sees: server-side apply is a patch. */
export function rbacVerb(request: KubeRequest): string {
  return request.verb === 'apply' ? 'patch' : request.verb;
}

/** Whether kubeadm's and the bootstrap policy's fixed grants allow the request. */
export function kubeadmRbacAllows(user: RequestUser, request: KubeRequest): boolean {
  return GRANTS.some((grant) => grants(grant, user, request));
}

/**
 * The Forbidden message the API server answers with (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/
 * responsewriters/errors.go forbiddenMessage, wrapped by NewForbidden as `<resource> "<name>" is forbidden: …`).
 */
export function forbiddenRequestMessage(user: RequestUser, request: KubeRequest): string {
  const verb = request.method === 'GET' && request.resource === undefined ? 'get' : rbacVerb(request);
  if (request.resource === undefined) return `forbidden: User "${user.name}" cannot ${verb} path "${request.path}"`;
  const resource = request.subresource === undefined ? request.resource : `${request.resource}/${request.subresource}`;
  const scope = request.namespace === undefined ? 'at the cluster scope' : `in the namespace "${request.namespace}"`;
  const qualified = request.group === undefined || request.group === '' ? request.resource : `${request.resource}.${request.group}`;
  const subject = request.name === undefined ? `${qualified} is forbidden` : `${qualified} "${request.name}" is forbidden`;
  return `${subject}: User "${user.name}" cannot ${verb} resource "${resource}" in API group "${request.group ?? ''}" ${scope}`;
}
