import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { type ResourceCatalog, type ResourceType, apiVersionOf, typeKey } from './catalog.ts';
import { evictPod } from './eviction.ts';
import { type Json, type JsonObject, arrayAt, isObject, toJson } from './json.ts';
import type { AdmissionOutcome } from './pod-security.ts';
import { PATCH_TYPES, type ApiRegistry, type ListQuery, type WriteOptions, type WriteResult } from './registry.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { KubeApiError, badRequest, methodNotAllowed, pathNotFound, unsupportedMediaType } from './status.ts';
import { type ObjectStore, type StoreEvent, namespaceOf } from './store.ts';

/** What a request asks for, as fault predicates and the request log see it. */
export interface KubeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** get, list, watch, create, update, patch, apply, delete, deletecollection; discovery, version or health off the resource paths. */
  verb: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  fieldManager?: string;
  contentType?: string;
}

export interface ServedRequest {
  status: number;
  /** Whether the request stored anything. */
  mutated: boolean;
  /** What admission said of a write it let through. */
  admission?: AdmissionOutcome;
}

/**
 * A write's answer: admission warnings go out as `Warning: 299 - "<text>"` headers, one each, as
 * kubernetes/kubernetes@v1.35.9 staging/src/k8s.io/apiserver/pkg/endpoints/filters/warning.go writes them.
 */
function sendWritten(response: ServerResponse, status: number, result: WriteResult): ServedRequest {
  const warnings = result.admission?.warnings ?? [];
  if (warnings.length > 0) response.setHeader('Warning', warnings.map((warning) => `299 - ${JSON.stringify(warning)}`));
  sendJson(response, status, result.object);
  return { status, mutated: result.mutated, ...(result.admission === undefined ? {} : { admission: result.admission }) };
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;
const NAMESPACE_SUBRESOURCES = ['status', 'finalize'];

function normalizedContentType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function verbFor(method: string, hasName: boolean, query: Record<string, string>, contentType: string): string {
  switch (method) {
    case 'GET':
      if (hasName) return 'get';
      return query.watch === 'true' || query.watch === '1' ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return contentType === PATCH_TYPES.apply ? 'apply' : 'patch';
    case 'DELETE':
      return hasName ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

/** Splits a request path the way the API server's router does, without checking that the resource exists. */
export function describeRequest(method: string, rawUrl: string, contentTypeHeader: string | undefined): KubeRequest {
  const url = new URL(rawUrl, 'http://sandbox.invalid');
  const query = Object.fromEntries(url.searchParams.entries());
  const contentType = normalizedContentType(contentTypeHeader);
  const segments = url.pathname.split('/').filter((segment) => segment !== '').map(decodeURIComponent);
  const request: KubeRequest = { method, path: url.pathname, query, verb: 'discovery' };
  if (contentType !== '') request.contentType = contentType;
  if (query.fieldManager !== undefined) request.fieldManager = query.fieldManager;
  const [root, ...rest] = segments;
  if (root === 'version') return { ...request, verb: 'version' };
  if (root === 'healthz' || root === 'livez' || root === 'readyz') return { ...request, verb: 'health' };
  let group: string;
  let version: string | undefined;
  let tail: string[];
  if (root === 'api') {
    group = '';
    [version, ...tail] = rest;
  } else if (root === 'apis') {
    const [first, second, ...others] = rest;
    group = first ?? '';
    version = second;
    tail = others;
    if (first === undefined) return request;
  } else {
    return { ...request, verb: 'unknown' };
  }
  if (version === undefined || tail.length === 0) return { ...request, group, ...(version === undefined ? {} : { version }) };
  const located: KubeRequest = { ...request, group, version };
  let parts = tail;
  if (parts[0] === 'namespaces' && parts.length >= 3 && !NAMESPACE_SUBRESOURCES.includes(parts[2] ?? '')) {
    located.namespace = parts[1];
    parts = parts.slice(2);
  }
  const [resource, name, ...subresource] = parts;
  if (resource !== undefined) located.resource = resource;
  if (name !== undefined) located.name = name;
  if (subresource.length > 0) located.subresource = subresource.join('/');
  located.verb = verbFor(method, name !== undefined, query, contentType);
  return located;
}

function defaultManager(userAgent: string | undefined): string {
  const prefix = (userAgent ?? '').split('/')[0]?.trim() ?? '';
  return prefix === '' ? 'unknown' : prefix;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new KubeApiError(413, 'BadRequest', 'Request entity too large: limit is 3145728');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text: string, contentType: string): Json {
  if (text.trim() === '') throw badRequest('the request body is empty');
  const yaml = contentType.endsWith('yaml');
  try {
    return yaml ? toJson(parseYaml(text)) : toJson(JSON.parse(text));
  } catch (error) {
    throw badRequest(`error decoding ${yaml ? 'YAML' : 'JSON'}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function sendJson(response: ServerResponse, status: number, body: Json): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

/** Sends a Status for a failure the way the API server does; anything unexpected becomes an InternalError. */
export function sendError(response: ServerResponse, error: unknown): number {
  const apiError = error instanceof KubeApiError ? error : new KubeApiError(500, 'InternalError', `Internal error occurred: ${error instanceof Error ? error.message : String(error)}`);
  if (!response.headersSent) sendJson(response, apiError.code, apiError.toStatus());
  else response.end();
  return apiError.code;
}

function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 0) throw badRequest(`invalid limit: ${value}`);
  return limit;
}

/**
 * A check on the object a write would store, before it is stored (the RBAC storage's escalation check): an error
 * refuses the write.
 */
export type WriteGuard = (stored: JsonObject) => KubeApiError | undefined;

/** Runs a write as a dry run first when a guard must see what it would store, then for real. */
function guarded(guard: WriteGuard | undefined, options: WriteOptions, write: (options: WriteOptions) => WriteResult): WriteResult {
  if (guard !== undefined) {
    const refusal = guard(write({ ...options, dryRun: true }).object);
    if (refusal !== undefined) throw refusal;
  }
  return write(options);
}

export interface HttpApiOptions {
  catalog: ResourceCatalog;
  store: ObjectStore;
  registry: ApiRegistry;
  version: () => string;
  address: () => string;
}

/** Serves the Kubernetes REST API of one sandbox cluster over node:http, JSON only. */
export class KubeHttpApi {
  private readonly options: HttpApiOptions;
  private readonly watches = new Set<ServerResponse>();

  constructor(options: HttpApiOptions) {
    this.options = options;
  }

  /** Ends every open watch, as a restarting API server would; clients re-list and watch again. */
  closeWatches(): void {
    for (const watch of this.watches) watch.end();
    this.watches.clear();
  }

  async serve(described: KubeRequest, request: IncomingMessage, response: ServerResponse, guard?: WriteGuard): Promise<ServedRequest> {
    try {
      return await this.route(described, request, response, guard);
    } catch (error) {
      return { status: sendError(response, error), mutated: false };
    }
  }

  private async route(described: KubeRequest, request: IncomingMessage, response: ServerResponse, guard: WriteGuard | undefined): Promise<ServedRequest> {
    const { catalog } = this.options;
    if (described.verb === 'health') {
      sendText(response, 200, 'ok');
      return { status: 200, mutated: false };
    }
    if (described.verb === 'version') {
      sendJson(response, 200, this.versionInfo());
      return { status: 200, mutated: false };
    }
    if (described.verb === 'discovery') {
      if (described.method !== 'GET') throw methodNotAllowed();
      const body = this.discovery(described);
      sendJson(response, 200, body);
      return { status: 200, mutated: false };
    }
    const { group, version, resource } = described;
    const type = group === undefined || version === undefined || resource === undefined ? undefined : catalog.find(group, version, resource);
    if (type === undefined) throw pathNotFound();
    if (described.namespace !== undefined && !type.namespaced) throw pathNotFound();
    if (described.subresource === 'eviction' && type.group === '' && type.plural === 'pods') return this.eviction(described, request, response);
    if (described.subresource !== undefined && (described.subresource !== 'status' || !type.hasStatus)) throw pathNotFound();
    if (described.name === undefined) return this.collection(type, described, request, response, guard);
    return this.item(type, described, request, response, guard);
  }

  private async collection(type: ResourceType, described: KubeRequest, request: IncomingMessage, response: ServerResponse, guard: WriteGuard | undefined): Promise<ServedRequest> {
    const { registry } = this.options;
    const namespace = type.namespaced ? described.namespace : undefined;
    const query = this.listQuery(described.query);
    switch (described.method) {
      case 'GET':
        if (described.verb === 'watch') {
          this.watch(type, namespace, described.query, request, response);
          return { status: 200, mutated: false };
        }
        sendJson(response, 200, registry.list(type, namespace, query));
        return { status: 200, mutated: false };
      case 'POST': {
        if (type.namespaced && namespace === undefined) throw methodNotAllowed();
        const body = await this.objectBody(request, ['application/json', 'application/yaml', '']);
        const result = guarded(guard, this.writeOptions(described, request), (options) => registry.create(type, namespace ?? '', body, options));
        return sendWritten(response, 201, result);
      }
      case 'DELETE': {
        const result = registry.deleteCollection(type, namespace, query, this.dryRun(described.query));
        sendJson(response, 200, result.list);
        return { status: 200, mutated: result.mutated };
      }
      default:
        throw methodNotAllowed();
    }
  }

  private async item(type: ResourceType, described: KubeRequest, request: IncomingMessage, response: ServerResponse, guard: WriteGuard | undefined): Promise<ServedRequest> {
    const { registry } = this.options;
    const namespace = type.namespaced ? (described.namespace ?? '') : '';
    if (type.namespaced && described.namespace === undefined) throw pathNotFound();
    const name = described.name ?? '';
    const scope = described.subresource === 'status' ? 'status' : 'main';
    switch (described.method) {
      case 'GET':
        sendJson(response, 200, registry.get(type, namespace, name));
        return { status: 200, mutated: false };
      case 'PUT': {
        const body = await this.objectBody(request, ['application/json', 'application/yaml', '']);
        const result = guarded(guard, this.writeOptions(described, request), (options) => registry.replace(type, namespace, name, scope, body, options));
        return sendWritten(response, 200, result);
      }
      case 'PATCH': {
        const contentType = described.contentType ?? '';
        if (!Object.values(PATCH_TYPES).some((patchType) => patchType === contentType)) throw unsupportedMediaType(contentType);
        const body = parseBody(await readBody(request), contentType);
        const result = guarded(guard, this.writeOptions(described, request), (options) => registry.patch(type, namespace, name, scope, contentType, body, options));
        return sendWritten(response, result.created ? 201 : 200, result);
      }
      case 'DELETE': {
        if (scope === 'status') throw methodNotAllowed();
        const text = await readBody(request);
        const options = text.trim() === '' ? {} : parseBody(text, 'application/json');
        const result = registry.delete(type, namespace, name, isObject(options) ? options : {}, this.dryRun(described.query));
        sendJson(response, 200, result.status);
        return { status: 200, mutated: result.mutated };
      }
      default:
        throw methodNotAllowed();
    }
  }

  /** POST pods/{name}/eviction: a Status either way, 201 when the pod was evicted. */
  private async eviction(described: KubeRequest, request: IncomingMessage, response: ServerResponse): Promise<ServedRequest> {
    if (described.namespace === undefined || described.name === undefined) throw pathNotFound();
    if (described.method !== 'POST') throw methodNotAllowed();
    const body = await this.objectBody(request, ['application/json', 'application/yaml', '']);
    const { catalog, registry } = this.options;
    const outcome = evictPod(registry, catalog, described.namespace, described.name, body, this.dryRun(described.query));
    sendJson(response, outcome.code, outcome.status);
    return { status: outcome.code, mutated: outcome.mutated };
  }

  private async objectBody(request: IncomingMessage, accepted: string[]): Promise<JsonObject> {
    const contentType = normalizedContentType(request.headers['content-type']);
    if (!accepted.includes(contentType)) throw unsupportedMediaType(contentType);
    const body = parseBody(await readBody(request), contentType);
    if (!isObject(body)) throw badRequest('the request body must be a JSON object');
    return body;
  }

  private listQuery(query: Record<string, string>): ListQuery {
    return { labelSelector: query.labelSelector, fieldSelector: query.fieldSelector, limit: parseLimit(query.limit), continueToken: query.continue };
  }

  private dryRun(query: Record<string, string>): boolean {
    const value = query.dryRun;
    if (value === undefined || value === '') return false;
    if (value !== 'All') throw badRequest(`dryRun: Unsupported value: "${value}": supported values: "All"`);
    return true;
  }

  private writeOptions(described: KubeRequest, request: IncomingMessage): WriteOptions {
    const force = described.query.force;
    return {
      fieldManager: described.query.fieldManager,
      defaultManager: defaultManager(request.headers['user-agent']),
      force: force === 'true' || force === '1',
      dryRun: this.dryRun(described.query),
    };
  }

  private versionInfo(): JsonObject {
    const gitVersion = this.options.version();
    const [major = '1', minor = '0'] = gitVersion.replace(/^v/, '').split('.');
    return {
      major,
      minor,
      gitVersion,
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2025-01-01T00:00:00Z',
      goVersion: 'go1.24.0',
      compiler: 'gc',
      platform: 'linux/amd64',
    };
  }

  private discovery(described: KubeRequest): JsonObject {
    const { catalog } = this.options;
    const { group, version } = described;
    if (group === undefined && described.path.replace(/\/$/, '') === '/apis') {
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: catalog.groups().map(({ group: name, versions }) => this.apiGroup(name, versions)),
      };
    }
    if (group === '' && version === undefined) {
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.options.address() }] };
    }
    if (group !== undefined && group !== '' && version === undefined) {
      const entry = catalog.groups().find((candidate) => candidate.group === group);
      if (entry === undefined) throw pathNotFound();
      return { kind: 'APIGroup', apiVersion: 'v1', ...this.apiGroup(entry.group, entry.versions) };
    }
    if (group !== undefined && version !== undefined && catalog.serves(group, version)) return catalog.resourceList(group, version);
    throw pathNotFound();
  }

  private apiGroup(name: string, versions: string[]): JsonObject {
    const entries = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
    return { name, versions: entries, preferredVersion: entries[0] ?? {} };
  }

  /** A watch stream: newline-delimited {type, object} events, replayed from resourceVersion when one is given. */
  private watch(type: ResourceType, namespace: string | undefined, query: Record<string, string>, request: IncomingMessage, response: ServerResponse): void {
    const { store, registry } = this.options;
    const labelMatches = parseLabelSelector(query.labelSelector);
    const fieldMatches = parseFieldSelector(query.fieldSelector);
    const matches = (object: JsonObject | undefined): boolean =>
      object !== undefined && (namespace === undefined || namespaceOf(object) === namespace) && labelMatches(object) && fieldMatches(object);
    const withType = (object: JsonObject): JsonObject => ({ ...object, apiVersion: apiVersionOf(type), kind: type.kind });
    const send = (eventType: string, object: JsonObject): void => {
      response.write(`${JSON.stringify({ type: eventType, object })}\n`);
    };
    const forward = (event: StoreEvent): void => {
      if (event.resource !== typeKey(type)) return;
      const now = event.type !== 'DELETED' && matches(event.object);
      const before = event.type === 'DELETED' ? matches(event.object) : event.type === 'MODIFIED' && matches(event.previous);
      if (now && before) send('MODIFIED', withType(event.object));
      else if (now) send('ADDED', withType(event.object));
      else if (before) send('DELETED', withType(event.object));
    };

    const since = query.resourceVersion;
    const replay = since === undefined || since === '' || since === '0' ? undefined : store.eventsSince(Number(since));
    response.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' });
    // A watcher waits for the headers before it reads events; Node would hold them back until the first event.
    response.flushHeaders();
    if (since !== undefined && since !== '' && since !== '0' && (replay === undefined || Number.isNaN(Number(since)))) {
      const expired = new KubeApiError(410, 'Expired', `too old resource version: ${since} (${store.resourceVersion})`);
      send('ERROR', expired.toStatus());
      response.end();
      return;
    }
    if (replay === undefined) {
      const current = registry.list(type, namespace, { labelSelector: query.labelSelector, fieldSelector: query.fieldSelector });
      for (const object of arrayAt(current, 'items').filter(isObject)) send('ADDED', object);
    } else {
      for (const event of replay) forward(event);
    }
    const unsubscribe = store.subscribe(forward);
    this.watches.add(response);
    const finish = (): void => {
      unsubscribe();
      clearTimeout(timer);
      this.watches.delete(response);
      if (!response.writableEnded) response.end();
    };
    const timeoutSeconds = Number(query.timeoutSeconds ?? '');
    const timer = setTimeout(finish, Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds * 1000 : 30 * 60 * 1000);
    timer.unref();
    request.on('close', finish);
    response.on('close', finish);
  }
}
