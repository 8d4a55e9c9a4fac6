import type { JsonObject } from './json.ts';

/** Which name validation the real API server applies to a resource's objects. */
export type NameRule = 'dns-subdomain' | 'dns-label' | 'dns-1035-label' | 'path-segment';

/** One served resource: what discovery advertises and what the handlers need to know about it. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly listKind: string;
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  /** A status subresource exists: writes to the main resource keep status, writes to /status keep everything else. */
  readonly hasStatus: boolean;
  readonly shortNames: readonly string[];
  readonly nameRule: NameRule;
  /** Set for resources served because a CustomResourceDefinition asked for them. */
  readonly definedBy?: string;
}

export function apiVersionOf(type: Pick<ResourceType, 'group' | 'version'>): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

export function typeKey(type: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${type.group}/${type.plural}`;
}

interface BuiltinSpec {
  kind: string;
  plural: string;
  namespaced: boolean;
  hasStatus?: boolean;
  shortNames?: string[];
  nameRule?: NameRule;
}

function builtin(group: string, version: string, spec: BuiltinSpec): ResourceType {
  return {
    group,
    version,
    kind: spec.kind,
    listKind: `${spec.kind}List`,
    plural: spec.plural,
    singular: spec.kind.toLowerCase(),
    namespaced: spec.namespaced,
    hasStatus: spec.hasStatus ?? false,
    shortNames: spec.shortNames ?? [],
    nameRule: spec.nameRule ?? 'dns-subdomain',
  };
}

const BUILTIN_TYPES: readonly ResourceType[] = [
  builtin('', 'v1', { kind: 'Namespace', plural: 'namespaces', namespaced: false, hasStatus: true, shortNames: ['ns'], nameRule: 'dns-label' }),
  builtin('', 'v1', { kind: 'Node', plural: 'nodes', namespaced: false, hasStatus: true, shortNames: ['no'] }),
  builtin('', 'v1', { kind: 'ConfigMap', plural: 'configmaps', namespaced: true, shortNames: ['cm'] }),
  builtin('', 'v1', { kind: 'Secret', plural: 'secrets', namespaced: true }),
  builtin('', 'v1', { kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true, shortNames: ['sa'] }),
  builtin('', 'v1', { kind: 'Service', plural: 'services', namespaced: true, hasStatus: true, shortNames: ['svc'], nameRule: 'dns-1035-label' }),
  builtin('', 'v1', { kind: 'Pod', plural: 'pods', namespaced: true, hasStatus: true, shortNames: ['po'] }),
  builtin('', 'v1', { kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'] }),
  builtin('apps', 'v1', { kind: 'Deployment', plural: 'deployments', namespaced: true, hasStatus: true, shortNames: ['deploy'] }),
  builtin('apps', 'v1', { kind: 'DaemonSet', plural: 'daemonsets', namespaced: true, hasStatus: true, shortNames: ['ds'] }),
  builtin('apps', 'v1', { kind: 'StatefulSet', plural: 'statefulsets', namespaced: true, hasStatus: true, shortNames: ['sts'] }),
  builtin('batch', 'v1', { kind: 'Job', plural: 'jobs', namespaced: true, hasStatus: true }),
  builtin('policy', 'v1', { kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', namespaced: true, hasStatus: true, shortNames: ['pdb'] }),
  builtin('rbac.authorization.k8s.io', 'v1', { kind: 'Role', plural: 'roles', namespaced: true, nameRule: 'path-segment' }),
  builtin('rbac.authorization.k8s.io', 'v1', { kind: 'RoleBinding', plural: 'rolebindings', namespaced: true, nameRule: 'path-segment' }),
  builtin('rbac.authorization.k8s.io', 'v1', { kind: 'ClusterRole', plural: 'clusterroles', namespaced: false, nameRule: 'path-segment' }),
  builtin('rbac.authorization.k8s.io', 'v1', { kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', namespaced: false, nameRule: 'path-segment' }),
  builtin('apiextensions.k8s.io', 'v1', { kind: 'CustomResourceDefinition', plural: 'customresourcedefinitions', namespaced: false, hasStatus: true, shortNames: ['crd', 'crds'] }),
  builtin('admissionregistration.k8s.io', 'v1', { kind: 'ValidatingWebhookConfiguration', plural: 'validatingwebhookconfigurations', namespaced: false }),
  builtin('admissionregistration.k8s.io', 'v1', { kind: 'MutatingWebhookConfiguration', plural: 'mutatingwebhookconfigurations', namespaced: false }),
  builtin('networking.k8s.io', 'v1', { kind: 'NetworkPolicy', plural: 'networkpolicies', namespaced: true, shortNames: ['netpol'] }),
  builtin('scheduling.k8s.io', 'v1', { kind: 'PriorityClass', plural: 'priorityclasses', namespaced: false, shortNames: ['pc'] }),
];

const RESOURCE_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS = ['get', 'patch', 'update'];

export interface GroupVersions {
  group: string;
  versions: string[];
}

/** The resources this server serves: the built-ins plus whatever established CRDs add. */
export class ResourceCatalog {
  private readonly types: ResourceType[] = [...BUILTIN_TYPES];

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.find((type) => type.group === group && type.version === version && type.plural === plural);
  }

  findByKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.types.find((type) => apiVersionOf(type) === apiVersion && type.kind === kind);
  }

  /** Every served version of a resource, so one object can be found whichever version a caller names. */
  all(): readonly ResourceType[] {
    return this.types;
  }

  /** Named groups in discovery order; the core group is served separately under /api. */
  groups(): GroupVersions[] {
    const groups: GroupVersions[] = [];
    for (const type of this.types) {
      if (type.group === '') continue;
      let entry = groups.find((candidate) => candidate.group === type.group);
      if (entry === undefined) {
        entry = { group: type.group, versions: [] };
        groups.push(entry);
      }
      if (!entry.versions.includes(type.version)) entry.versions.push(type.version);
    }
    return groups;
  }

  serves(group: string, version: string): boolean {
    return this.types.some((type) => type.group === group && type.version === version);
  }

  /** An APIResourceList for one group version, subresources listed as `plural/status` (and `pods/eviction`) the way discovery does. */
  resourceList(group: string, version: string): JsonObject {
    const resources: JsonObject[] = [];
    for (const type of this.types) {
      if (type.group !== group || type.version !== version) continue;
      const resource: JsonObject = {
        name: type.plural,
        singularName: type.singular,
        namespaced: type.namespaced,
        kind: type.kind,
        verbs: RESOURCE_VERBS,
      };
      if (type.shortNames.length > 0) resource.shortNames = [...type.shortNames];
      resources.push(resource);
      if (type.hasStatus) {
        resources.push({ name: `${type.plural}/status`, singularName: '', namespaced: type.namespaced, kind: type.kind, verbs: STATUS_VERBS });
      }
      // kubectl drain looks for this entry to decide whether it can evict rather than delete.
      if (type.group === '' && type.plural === 'pods') {
        resources.push({ name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] });
      }
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf({ group, version }), resources };
  }

  /** Replaces the resources a CRD serves; an empty list withdraws them. */
  defineCustom(crdName: string, served: ResourceType[]): void {
    for (let index = this.types.length - 1; index >= 0; index--) {
      if (this.types[index]?.definedBy === crdName) this.types.splice(index, 1);
    }
    this.types.push(...served.map((type) => ({ ...type, definedBy: crdName })));
  }

  /** Whether another definition already claims this group and plural, as a real server refuses two CRDs for one resource. */
  claimedByOther(crdName: string, group: string, plural: string): boolean {
    return this.types.some((type) => type.group === group && type.plural === plural && type.definedBy !== crdName);
  }
}
