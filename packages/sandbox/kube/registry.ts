import { randomUUID } from 'node:crypto';
import { type ResourceCatalog, type ResourceType, apiVersionOf, typeKey } from './catalog.ts';
import { type NodeView, dependsOnNodes, desiredStatus, nodeView } from './controllers.ts';
import { type FieldConflict, type Scope, describePath, recordUpdate, serverSideApply, trackedContent, withoutNulls } from './fields.ts';
import { type Json, type JsonObject, arrayAt, clone, deepEqual, ensureObject, isObject, numberAt, objectAt, removeKey, stringAt, stringMap } from './json.ts';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';
import { type AdmissionOutcome, PodSecurityAdmission } from './pod-security.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { KubeApiError, alreadyExists, badRequest, forbidden, invalid, notFound, staleConflict, unsupportedMediaType } from './status.ts';
import type { StatusCause } from './status.ts';
import { type ObjectStore, nameOf, namespaceOf, objectKey } from './store.ts';

/** Who is writing and how, taken from the query string and headers of one request. */
export interface WriteOptions {
  /** The fieldManager query parameter, if any. */
  fieldManager?: string | undefined;
  /** The manager Kubernetes falls back to: the User-Agent up to its first slash. */
  defaultManager: string;
  force?: boolean;
  dryRun?: boolean;
}

export interface WriteResult {
  object: JsonObject;
  /** The object did not exist before this request (the reply is 201). */
  created: boolean;
  /** Something was stored; false for a no-op apply or update and for dry runs. */
  mutated: boolean;
  /** What validating admission said of the write: warnings for the client, annotations for its audit event. */
  admission?: AdmissionOutcome;
}

export interface ListQuery {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  limit?: number | undefined;
  continueToken?: string | undefined;
}

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** Namespaces a real cluster refuses to delete. */
const PROTECTED_NAMESPACES = ['default', 'kube-system', 'kube-public'];

const NAME_RULES = {
  'dns-subdomain': {
    pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    max: 253,
    message:
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
  },
  'dns-label': {
    pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    max: 63,
    message:
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
  },
  'dns-1035-label': {
    pattern: /^[a-z]([-a-z0-9]*[a-z0-9])?$/,
    max: 63,
    message:
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
  },
  'path-segment': { pattern: /^(?!\.{1,2}$)[^/%]+$/, max: 253, message: "may not be '.' or '..' and may not contain '/' or '%'" },
} as const;

const GENERATED_NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function metadataOf(object: JsonObject): JsonObject {
  return ensureObject(object, 'metadata');
}

/** What generation tracks: everything but metadata and status. */
function specContent(object: JsonObject): JsonObject {
  const content: JsonObject = {};
  for (const [key, value] of Object.entries(object)) {
    if (!['apiVersion', 'kind', 'metadata', 'status'].includes(key)) content[key] = value;
  }
  return content;
}

function withTypeMeta(type: ResourceType, object: JsonObject): JsonObject {
  return { apiVersion: apiVersionOf(type), kind: type.kind, ...Object.fromEntries(Object.entries(object).filter(([key]) => key !== 'apiVersion' && key !== 'kind')) };
}

function conflictError(type: ResourceType, name: string, conflicts: FieldConflict[]): KubeApiError {
  const causes: StatusCause[] = conflicts.map((conflict) => ({
    reason: 'FieldManagerConflict',
    message: `conflict with "${conflict.manager}" using ${conflict.apiVersion}`,
    field: describePath(conflict.path),
  }));
  const managers = [...new Set(conflicts.map((conflict) => `"${conflict.manager}" using ${conflict.apiVersion}`))].join(', ');
  const fields = causes.map((cause) => cause.field ?? '');
  const message =
    conflicts.length === 1
      ? `Apply failed with 1 conflict: conflict with ${managers}: ${fields.join('')}`
      : `Apply failed with ${conflicts.length} conflicts: conflicts with ${managers}:\n${fields.map((field) => `- ${field}`).join('\n')}`;
  const details = type.group === '' ? { name, kind: type.plural, causes } : { name, group: type.group, kind: type.plural, causes };
  return new KubeApiError(409, 'Conflict', message, details);
}

function encodeContinue(key: string, resourceVersion: number): string {
  return Buffer.from(JSON.stringify({ start: key, rv: resourceVersion })).toString('base64url');
}

function decodeContinue(token: string): { start: string; rv: number } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isObject(parsed) && typeof parsed.start === 'string' && typeof parsed.rv === 'number') return { start: parsed.start, rv: parsed.rv };
  } catch {
    // Falls through to the error a real server gives for a token it cannot read.
  }
  throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

/**
 * The API semantics of one sandbox cluster, independent of HTTP: validation, optimistic concurrency, patches,
 * server-side apply, generation, the stand-in controllers and CRDs. Every write funnels through `commit`.
 */
export class ApiRegistry {
  private readonly catalog: ResourceCatalog;
  private readonly store: ObjectStore;
  private readonly clock: () => Date;
  /** The PodSecurity admission plugin, with the configuration the API server loaded at its last start. */
  readonly podSecurity = new PodSecurityAdmission();

  constructor(catalog: ResourceCatalog, store: ObjectStore, clock: () => Date) {
    this.catalog = catalog;
    this.store = store;
    this.clock = clock;
  }

  now(): string {
    return timestamp(this.clock());
  }

  get(type: ResourceType, namespace: string, name: string): JsonObject {
    const object = this.store.get(type, namespace, name);
    if (object === undefined) throw notFound(type, name);
    return withTypeMeta(type, object);
  }

  list(type: ResourceType, namespace: string | undefined, query: ListQuery): JsonObject {
    const labelMatches = parseLabelSelector(query.labelSelector);
    const fieldMatches = parseFieldSelector(query.fieldSelector);
    let listVersion = this.store.resourceVersion;
    let items = this.store.list(type, namespace).filter((object) => labelMatches(object) && fieldMatches(object));
    if (query.continueToken !== undefined && query.continueToken !== '') {
      const token = decodeContinue(query.continueToken);
      listVersion = token.rv;
      items = items.filter((object) => objectKey(namespaceOf(object), nameOf(object)) > token.start);
    }
    const metadata: JsonObject = { resourceVersion: String(listVersion) };
    const limit = query.limit ?? 0;
    if (limit > 0 && items.length > limit) {
      const last = items[limit - 1];
      if (last !== undefined) metadata.continue = encodeContinue(objectKey(namespaceOf(last), nameOf(last)), listVersion);
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    return { kind: type.listKind, apiVersion: apiVersionOf(type), metadata, items: items.map((item) => withTypeMeta(type, item)) };
  }

  create(type: ResourceType, namespace: string, body: JsonObject, options: WriteOptions): WriteResult {
    const object = this.decode(type, body);
    const metadata = metadataOf(object);
    this.matchNamespace(type, metadata, namespace);
    let name = stringAt(metadata, 'name') ?? '';
    const generateName = stringAt(metadata, 'generateName') ?? '';
    if (name === '' && generateName !== '') name = this.generateName(type, namespace, generateName);
    if (name === '') {
      throw invalid(type.kind, '', [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }], type.group);
    }
    metadata.name = name;
    this.requireNamespace(type, namespace);
    if (this.store.get(type, namespace, name) !== undefined) throw alreadyExists(type, name);
    if (type.hasStatus) delete object.status;
    for (const field of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'generation', 'managedFields']) removeKey(metadata, field);
    this.normalize(type, object);
    metadata.managedFields = recordUpdate({
      previous: undefined,
      next: object,
      manager: options.fieldManager ?? options.defaultManager,
      apiVersion: apiVersionOf(type),
      scope: 'main',
      hasStatus: type.hasStatus,
      now: this.now(),
    });
    return this.commit(type, undefined, object, options.dryRun ?? false, 'main');
  }

  replace(type: ResourceType, namespace: string, name: string, scope: Scope, body: JsonObject, options: WriteOptions): WriteResult {
    const previous = this.store.get(type, namespace, name);
    if (previous === undefined) throw notFound(type, name);
    const incoming = this.decode(type, body);
    return this.update(type, previous, incoming, scope, options);
  }

  patch(type: ResourceType, namespace: string, name: string, scope: Scope, contentType: string, body: Json, options: WriteOptions): WriteResult {
    if (contentType === PATCH_TYPES.apply) return this.apply(type, namespace, name, scope, body, options);
    if (options.force === true) {
      throw invalid('PatchOptions.meta.k8s.io', '', [{ reason: 'FieldValueForbidden', message: 'Forbidden: may not be specified for non-apply patch', field: 'force' }]);
    }
    const previous = this.store.get(type, namespace, name);
    if (previous === undefined) throw notFound(type, name);
    let patched: Json;
    if (contentType === PATCH_TYPES.json) {
      patched = jsonPatch(previous, body);
    } else if (contentType === PATCH_TYPES.merge) {
      patched = mergePatch(previous, body);
    } else if (contentType === PATCH_TYPES.strategic) {
      // A real server has no strategic-merge schema for custom resources and refuses the patch.
      if (type.definedBy !== undefined) throw unsupportedMediaType(contentType);
      patched = strategicMergePatch(previous, body);
    } else {
      throw unsupportedMediaType(contentType);
    }
    if (!isObject(patched)) throw badRequest('the patch produced something that is not an object');
    return this.update(type, previous, this.decode(type, patched), scope, options);
  }

  delete(type: ResourceType, namespace: string, name: string, deleteOptions: JsonObject, dryRun: boolean): { status: JsonObject; mutated: boolean } {
    const existing = this.store.get(type, namespace, name);
    if (existing === undefined) throw notFound(type, name);
    const metadata = metadataOf(existing);
    const preconditions = objectAt(deleteOptions, 'preconditions');
    const wantedUid = stringAt(preconditions, 'uid');
    const wantedVersion = stringAt(preconditions, 'resourceVersion');
    if ((wantedUid !== undefined && wantedUid !== metadata.uid) || (wantedVersion !== undefined && wantedVersion !== metadata.resourceVersion)) {
      throw staleConflict(type, name);
    }
    if (type.group === '' && type.plural === 'namespaces' && PROTECTED_NAMESPACES.includes(name)) {
      throw forbidden(`namespaces "${name}" is forbidden: this namespace may not be deleted`);
    }
    const details: JsonObject = { name, kind: type.plural, uid: metadata.uid ?? '' };
    if (type.group !== '') details.group = type.group;
    const status: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
    if (dryRun) return { status, mutated: false };
    if (arrayAt(metadata, 'finalizers').length > 0) {
      // Finalizers hold the object, marked for deletion, until whoever owns them removes them.
      if (metadata.deletionTimestamp === undefined) {
        metadata.deletionTimestamp = this.now();
        metadata.deletionGracePeriodSeconds = 0;
        return { status: withTypeMeta(type, this.store.put(type, existing)), mutated: true };
      }
      return { status: withTypeMeta(type, existing), mutated: false };
    }
    this.remove(type, namespace, name);
    return { status, mutated: true };
  }

  deleteCollection(type: ResourceType, namespace: string | undefined, query: ListQuery, dryRun: boolean): { list: JsonObject; mutated: boolean } {
    const matching = this.list(type, namespace, { labelSelector: query.labelSelector, fieldSelector: query.fieldSelector });
    const items = arrayAt(matching, 'items').filter(isObject);
    let mutated = false;
    for (const item of items) {
      mutated = this.delete(type, namespaceOf(item), nameOf(item), {}, dryRun).mutated || mutated;
    }
    return { list: matching, mutated };
  }

  /**
   * A write made inside the cluster (kubelet, node lifecycle controller) rather than over HTTP: `change` gets the
   * current object, or undefined, and returns the object it wants stored.
   */
  writeInternal(type: ResourceType, namespace: string, name: string, manager: string, scope: Scope, change: (current: JsonObject | undefined) => JsonObject): WriteResult {
    const previous = this.store.get(type, namespace, name);
    const next = change(previous === undefined ? undefined : clone(previous));
    if (previous === undefined) {
      const result = this.create(type, namespace, next, { defaultManager: manager });
      // Creation drops status like any create; a kubelet then reports it through the status subresource.
      if (scope === 'status' && isObject(next.status)) return this.update(type, result.object, next, 'status', { defaultManager: manager });
      return result;
    }
    return this.update(type, previous, this.decode(type, next), scope, { defaultManager: manager });
  }

  removeInternal(type: ResourceType, namespace: string, name: string): boolean {
    if (this.store.get(type, namespace, name) === undefined) return false;
    this.remove(type, namespace, name);
    return true;
  }

  private apply(type: ResourceType, namespace: string, name: string, scope: Scope, body: Json, options: WriteOptions): WriteResult {
    const manager = options.fieldManager ?? '';
    if (manager === '') {
      throw invalid('PatchOptions.meta.k8s.io', '', [{ reason: 'FieldValueRequired', message: 'Required value: is required for apply patch', field: 'fieldManager' }]);
    }
    if (!isObject(body)) throw badRequest('error decoding YAML: the applied configuration must be an object');
    const config = withoutNulls(body);
    if (!isObject(config)) throw badRequest('error decoding YAML: the applied configuration must be an object');
    if (typeof config.apiVersion !== 'string' || typeof config.kind !== 'string') {
      throw badRequest('invalid object type: apiVersion and kind must be set in an applied configuration');
    }
    this.decode(type, config);
    const configMetadata = objectAt(config, 'metadata') ?? {};
    const configName = stringAt(configMetadata, 'name');
    if (configName !== undefined && configName !== name) {
      throw badRequest(`the name of the object (${configName}) does not match the name on the URL (${name})`);
    }
    this.matchNamespace(type, configMetadata, namespace);
    const previous = this.store.get(type, namespace, name);
    if (previous === undefined) this.requireNamespace(type, namespace);
    const wantedVersion = stringAt(configMetadata, 'resourceVersion');
    if (wantedVersion !== undefined && wantedVersion !== stringAt(objectAt(previous ?? {}, 'metadata'), 'resourceVersion')) {
      throw staleConflict(type, name);
    }
    const skeleton: JsonObject = { apiVersion: apiVersionOf(type), kind: type.kind, metadata: type.namespaced ? { name, namespace } : { name } };
    const outcome = serverSideApply({
      live: previous ?? skeleton,
      liveExists: previous !== undefined,
      applied: trackedContent(config, scope, type.hasStatus),
      manager,
      force: options.force ?? false,
      apiVersion: apiVersionOf(type),
      scope,
      now: this.now(),
    });
    if (!outcome.ok) throw conflictError(type, name, outcome.conflicts);
    const next = outcome.object;
    if (previous === undefined) this.validateName(type, name);
    this.normalize(type, next);
    return this.commit(type, previous, next, options.dryRun ?? false, scope);
  }

  private update(type: ResourceType, previous: JsonObject, incoming: JsonObject, scope: Scope, options: WriteOptions): WriteResult {
    const name = nameOf(previous);
    const namespace = namespaceOf(previous);
    const incomingMetadata = metadataOf(incoming);
    const incomingName = stringAt(incomingMetadata, 'name') ?? '';
    if (incomingName !== '' && incomingName !== name) {
      throw badRequest(`the name of the object (${incomingName}) does not match the name on the URL (${name})`);
    }
    this.matchNamespace(type, incomingMetadata, namespace);
    const previousMetadata = metadataOf(previous);
    const wantedVersion = stringAt(incomingMetadata, 'resourceVersion') ?? '';
    if (wantedVersion !== '' && wantedVersion !== previousMetadata.resourceVersion) throw staleConflict(type, name);

    let next: JsonObject;
    if (scope === 'status') {
      next = clone(previous);
      if (incoming.status === undefined) delete next.status;
      else next.status = clone(incoming.status);
    } else {
      next = clone(incoming);
      const metadata = metadataOf(next);
      for (const field of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation']) {
        const value = previousMetadata[field];
        if (value === undefined) removeKey(metadata, field);
        else metadata[field] = value;
      }
      metadata.name = name;
      if (type.namespaced) metadata.namespace = namespace;
      if (type.hasStatus) {
        if (previous.status === undefined) delete next.status;
        else next.status = clone(previous.status);
      }
    }
    metadataOf(next).resourceVersion = previousMetadata.resourceVersion ?? '';
    this.normalize(type, next);
    metadataOf(next).managedFields = recordUpdate({
      previous,
      next,
      manager: options.fieldManager ?? options.defaultManager,
      apiVersion: apiVersionOf(type),
      scope,
      hasStatus: type.hasStatus,
      now: this.now(),
    });
    return this.commit(type, previous, next, options.dryRun ?? false, scope);
  }

  /** The one place objects are stored: server-owned metadata, controllers' status, no-op detection, side effects. */
  private commit(type: ResourceType, previous: JsonObject | undefined, candidate: JsonObject, dryRun: boolean, scope: Scope): WriteResult {
    const object = withTypeMeta(type, candidate);
    const metadata = metadataOf(object);
    const previousMetadata = previous === undefined ? undefined : metadataOf(previous);
    metadata.uid = previousMetadata?.uid ?? randomUUID();
    metadata.creationTimestamp = previousMetadata?.creationTimestamp ?? this.now();
    const previousGeneration = numberAt(previousMetadata, 'generation') ?? 0;
    metadata.generation = previous === undefined ? 1 : deepEqual(specContent(previous), specContent(object)) ? previousGeneration : previousGeneration + 1;
    if (previousMetadata?.resourceVersion !== undefined) metadata.resourceVersion = previousMetadata.resourceVersion;
    else delete metadata.resourceVersion;
    const status = desiredStatus(type, object, this.nodes(), this.now());
    if (status !== undefined) object.status = status;
    this.validate(type, object);
    // Validating admission runs after the object's own validation and before it is stored, dry runs included.
    const admission = this.admit(type, previous, object, scope);

    if (previous !== undefined && deepEqual(withTypeMeta(type, previous), object)) return { object: withTypeMeta(type, previous), created: false, mutated: false, admission };
    if (dryRun) return { object, created: previous === undefined, mutated: false, admission };
    if (metadata.deletionTimestamp !== undefined && arrayAt(metadata, 'finalizers').length === 0) {
      this.remove(type, namespaceOf(object), nameOf(object));
      return { object, created: false, mutated: true, admission };
    }
    const stored = this.store.put(type, object);
    this.afterWrite(type, stored);
    return { object: withTypeMeta(type, stored), created: previous === undefined, mutated: true, admission };
  }

  private admit(type: ResourceType, previous: JsonObject | undefined, object: JsonObject, scope: Scope): AdmissionOutcome {
    const namespace = namespaceOf(object);
    const namespaceType = this.catalog.find('', 'v1', 'namespaces');
    return this.podSecurity.admit({
      operation: previous === undefined ? 'create' : 'update',
      group: type.group,
      resource: type.plural,
      subresource: scope,
      namespace,
      name: nameOf(object),
      object,
      previous,
      namespaceLabels: () => {
        const found = namespaceType === undefined ? undefined : this.store.get(namespaceType, '', namespace);
        return stringMap(objectAt(found, 'metadata')?.labels);
      },
    });
  }

  private remove(type: ResourceType, namespace: string, name: string): void {
    if (type.group === '' && type.plural === 'namespaces') {
      // The namespace controller empties a namespace before it goes; the sandbox does it at once.
      const seen = new Set<string>();
      for (const contained of this.catalog.all()) {
        if (!contained.namespaced || seen.has(typeKey(contained))) continue;
        seen.add(typeKey(contained));
        for (const object of this.store.list(contained, name)) this.store.remove(contained, name, nameOf(object));
      }
    }
    const removed = this.store.remove(type, namespace, name);
    if (removed !== undefined) this.afterRemove(type, removed);
  }

  private afterWrite(type: ResourceType, stored: JsonObject): void {
    if (this.isCrd(type)) this.catalog.defineCustom(nameOf(stored), this.servedBy(stored));
    if (type.group === '' && type.plural === 'nodes') this.reconcileNodeDependents();
  }

  private afterRemove(type: ResourceType, removed: JsonObject): void {
    if (this.isCrd(type)) {
      const served = this.servedBy(removed);
      this.catalog.defineCustom(nameOf(removed), []);
      const first = served[0];
      if (first !== undefined) {
        for (const object of this.store.list(first)) this.store.remove(first, namespaceOf(object), nameOf(object));
      }
    }
    if (type.group === '' && type.plural === 'nodes') this.reconcileNodeDependents();
  }

  /** Re-derives the status of everything that counts nodes, the way controllers react to node events. */
  private reconcileNodeDependents(): void {
    const nodes = this.nodes();
    const seen = new Set<string>();
    for (const type of this.catalog.all()) {
      if (!dependsOnNodes(type) || seen.has(typeKey(type))) continue;
      seen.add(typeKey(type));
      for (const object of this.store.list(type)) {
        const status = desiredStatus(type, object, nodes, this.now());
        if (status === undefined || deepEqual(object.status, status)) continue;
        this.store.put(type, { ...object, status });
      }
    }
  }

  private nodes(): NodeView[] {
    const nodeType = this.catalog.find('', 'v1', 'nodes');
    return nodeType === undefined ? [] : this.store.list(nodeType).map(nodeView);
  }

  private isCrd(type: ResourceType): boolean {
    return type.group === 'apiextensions.k8s.io' && type.plural === 'customresourcedefinitions';
  }

  /** The resource types a CRD asks to serve, one per served version. */
  private servedBy(crd: JsonObject): ResourceType[] {
    const spec = objectAt(crd, 'spec') ?? {};
    const names = objectAt(spec, 'names') ?? {};
    const kind = stringAt(names, 'kind') ?? '';
    const types: ResourceType[] = [];
    for (const version of arrayAt(spec, 'versions')) {
      if (!isObject(version) || version.served === false) continue;
      types.push({
        group: stringAt(spec, 'group') ?? '',
        version: stringAt(version, 'name') ?? '',
        kind,
        listKind: stringAt(names, 'listKind') ?? `${kind}List`,
        plural: stringAt(names, 'plural') ?? '',
        singular: stringAt(names, 'singular') ?? kind.toLowerCase(),
        namespaced: spec.scope === 'Namespaced',
        hasStatus: isObject(objectAt(objectAt(version, 'subresources') ?? {}, 'status')),
        shortNames: arrayAt(names, 'shortNames').filter((item): item is string => typeof item === 'string'),
        nameRule: 'dns-subdomain',
      });
    }
    return types;
  }

  /** Checks the shape every object shares and fills apiVersion and kind from the URL. */
  private decode(type: ResourceType, body: JsonObject): JsonObject {
    const object = clone(body);
    const apiVersion = object.apiVersion;
    if (apiVersion !== undefined && apiVersion !== apiVersionOf(type)) {
      const group = typeof apiVersion === 'string' && apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
      if (group !== type.group) {
        throw badRequest(`the API version in the data (${JSON.stringify(apiVersion)}) does not match the expected API version (${apiVersionOf(type)})`);
      }
    }
    if (object.kind !== undefined && object.kind !== type.kind) {
      throw badRequest(`the kind in the data (${JSON.stringify(object.kind)}) does not match the expected kind (${type.kind})`);
    }
    if (object.metadata !== undefined && !isObject(object.metadata)) {
      throw badRequest('json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta');
    }
    const metadata = metadataOf(object);
    for (const field of ['labels', 'annotations']) {
      const map = metadata[field];
      if (map === undefined || map === null) continue;
      if (!isObject(map) || Object.values(map).some((value) => typeof value !== 'string')) {
        throw badRequest(`json: cannot unmarshal into Go struct field ObjectMeta.metadata.${field} of type map[string]string`);
      }
    }
    if (type.group === '' && (type.kind === 'ConfigMap' || type.kind === 'Secret')) {
      for (const field of type.kind === 'ConfigMap' ? ['data'] : ['data', 'stringData']) {
        const map = object[field];
        if (map !== undefined && map !== null && (!isObject(map) || Object.values(map).some((value) => typeof value !== 'string'))) {
          throw badRequest(`json: cannot unmarshal into Go struct field ${type.kind}.${field} of type map[string]string`);
        }
      }
    }
    object.apiVersion = apiVersionOf(type);
    object.kind = type.kind;
    return object;
  }

  /** Defaults and conversions a real server applies on every write. */
  private normalize(type: ResourceType, object: JsonObject): void {
    if (type.group === '' && type.kind === 'Secret') {
      const stringData = objectAt(object, 'stringData');
      if (stringData !== undefined) {
        const data = ensureObject(object, 'data');
        for (const [key, value] of Object.entries(stringData)) {
          if (typeof value === 'string') data[key] = Buffer.from(value, 'utf8').toString('base64');
        }
        delete object.stringData;
      }
      if (object.type === undefined) object.type = 'Opaque';
    }
    if (type.group === '' && type.kind === 'Namespace') {
      ensureObject(object, 'spec').finalizers = ['kubernetes'];
      ensureObject(metadataOf(object), 'labels')['kubernetes.io/metadata.name'] = nameOf(object);
    }
  }

  private validate(type: ResourceType, object: JsonObject): void {
    this.validateName(type, nameOf(object));
    if (this.isCrd(type)) this.validateCrd(object);
  }

  private validateName(type: ResourceType, name: string): void {
    const rule = NAME_RULES[type.nameRule];
    const problems: string[] = [];
    if (!rule.pattern.test(name)) problems.push(rule.message);
    if (name.length > rule.max) problems.push(`must be no more than ${rule.max} characters`);
    if (problems.length > 0) {
      const causes = problems.map((problem) => ({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(name)}: ${problem}`, field: 'metadata.name' }));
      throw invalid(type.kind, name, causes, type.group);
    }
  }

  private validateCrd(crd: JsonObject): void {
    const name = nameOf(crd);
    const spec = objectAt(crd, 'spec') ?? {};
    const names = objectAt(spec, 'names') ?? {};
    const group = stringAt(spec, 'group') ?? '';
    const plural = stringAt(names, 'plural') ?? '';
    const causes: StatusCause[] = [];
    const cause = (field: string, message: string): void => {
      causes.push({ reason: 'FieldValueInvalid', message, field });
    };
    if (group === '') cause('spec.group', 'Required value');
    else if (!group.includes('.')) cause('spec.group', `Invalid value: ${JSON.stringify(group)}: should be a domain with at least one dot`);
    if (plural === '') cause('spec.names.plural', 'Required value');
    if ((stringAt(names, 'kind') ?? '') === '') cause('spec.names.kind', 'Required value');
    if (name !== `${plural}.${group}`) cause('metadata.name', `Invalid value: ${JSON.stringify(name)}: must be spec.names.plural+"."+spec.group`);
    if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
      cause('spec.scope', `Unsupported value: ${JSON.stringify(spec.scope ?? '')}: supported values: "Cluster", "Namespaced"`);
    }
    const versions = arrayAt(spec, 'versions').filter(isObject);
    if (versions.length === 0) cause('spec.versions', 'Required value');
    else if (versions.filter((version) => version.storage === true).length !== 1) {
      cause('spec.versions', 'Invalid value: must have exactly one version marked as storage version');
    }
    if (group !== '' && plural !== '' && this.catalog.claimedByOther(name, group, plural)) {
      cause('spec.names.plural', `Invalid value: ${JSON.stringify(plural)}: is already served in group ${group}`);
    }
    if (causes.length > 0) throw invalid('CustomResourceDefinition', name, causes, 'apiextensions.k8s.io');
  }

  private matchNamespace(type: ResourceType, metadata: JsonObject, namespace: string): void {
    const declared = stringAt(metadata, 'namespace') ?? '';
    if (!type.namespaced) {
      delete metadata.namespace;
      return;
    }
    if (declared !== '' && declared !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    metadata.namespace = namespace;
  }

  private requireNamespace(type: ResourceType, namespace: string): void {
    if (!type.namespaced) return;
    const namespaces = this.catalog.find('', 'v1', 'namespaces');
    if (namespaces === undefined || this.store.get(namespaces, '', namespace) === undefined) throw notFound({ group: '', plural: 'namespaces' }, namespace);
  }

  private generateName(type: ResourceType, namespace: string, prefix: string): string {
    for (;;) {
      let suffix = '';
      for (let index = 0; index < 5; index++) suffix += GENERATED_NAME_ALPHABET[Math.floor(Math.random() * GENERATED_NAME_ALPHABET.length)] ?? 'x';
      const name = `${prefix}${suffix}`;
      if (this.store.get(type, namespace, name) === undefined) return name;
    }
  }
}
