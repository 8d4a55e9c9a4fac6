import { type Json, type JsonObject, clone, deepEqual, isObject, removeKey } from './json.ts';
import { associativeKey, keyValue, sharedKey } from './lists.ts';

/**
 * Field ownership for server-side apply, in the shape of the real fieldsV1 format: a path is a list of segments,
 * `f:<field>` for a map field, `k:{"name":"x"}` for an element of a keyed list and `.` for that element itself.
 * Paths are kept as JSON strings in sets so ownership can be compared and moved between managers cheaply.
 */
export type FieldPath = readonly string[];

export type Scope = 'main' | 'status';

export interface ManagedEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  subresource: string;
  fields: Set<string>;
}

export interface FieldConflict {
  manager: string;
  apiVersion: string;
  path: FieldPath;
}

/** Metadata the server owns; no manager ever owns these. */
const SERVER_METADATA = [
  'name',
  'namespace',
  'generateName',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
];

const encode = (path: FieldPath): string => JSON.stringify(path);
const decode = (encoded: string): FieldPath => JSON.parse(encoded) as string[];

/** The part of an object whose fields managers own: for the main resource everything but status (when it is a subresource). */
export function trackedContent(object: JsonObject, scope: Scope, hasStatus: boolean): JsonObject {
  if (scope === 'status') return isObject(object.status) ? { status: clone(object.status) } : {};
  const tracked: JsonObject = {};
  for (const [key, value] of Object.entries(object)) {
    if (key === 'apiVersion' || key === 'kind' || (key === 'status' && hasStatus)) continue;
    if (key === 'metadata' && isObject(value)) {
      const metadata: JsonObject = {};
      for (const [field, item] of Object.entries(value)) {
        if (!SERVER_METADATA.includes(field)) metadata[field] = clone(item);
      }
      if (Object.keys(metadata).length > 0) tracked.metadata = metadata;
      continue;
    }
    tracked[key] = clone(value);
  }
  return tracked;
}

function elementSegment(key: string, element: Json): string {
  return `k:${JSON.stringify({ [key]: keyValue(element, key) ?? null })}`;
}

function collect(value: Json, path: string[], out: Set<string>): void {
  if (isObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0 && path.length > 0) out.add(encode(path));
    for (const key of keys) collect(value[key] ?? null, [...path, `f:${key}`], out);
    return;
  }
  if (Array.isArray(value)) {
    const key = associativeKey(value);
    if (key === undefined) {
      out.add(encode(path));
      return;
    }
    for (const element of value) {
      const elementPath = [...path, elementSegment(key, element)];
      out.add(encode([...elementPath, '.']));
      if (isObject(element)) {
        for (const [field, item] of Object.entries(element)) collect(item, [...elementPath, `f:${field}`], out);
      }
    }
    return;
  }
  out.add(encode(path));
}

/** Every leaf a manager would own by setting this content. */
export function fieldSet(content: JsonObject): Set<string> {
  const out = new Set<string>();
  collect(content, [], out);
  return out;
}

function elementMatches(element: Json, segment: string): boolean {
  const wanted = JSON.parse(segment.slice(2)) as JsonObject;
  return Object.entries(wanted).every(([key, value]) => isObject(element) && element[key] === value);
}

/** The value a path points at, or undefined when the object has nothing there. */
export function valueAt(root: Json | undefined, path: FieldPath): Json | undefined {
  let current: Json | undefined = root;
  for (const segment of path) {
    if (current === undefined) return undefined;
    if (segment === '.') continue;
    if (segment.startsWith('f:')) {
      current = isObject(current) ? current[segment.slice(2)] : undefined;
    } else if (segment.startsWith('k:')) {
      current = Array.isArray(current) ? current.find((element) => elementMatches(element, segment)) : undefined;
    } else {
      return undefined;
    }
  }
  return current;
}

/** Removes whatever a path points at; a `.` or `k:` path removes the whole list element. */
function deleteAt(root: JsonObject, path: FieldPath): void {
  const trimmed = path.at(-1) === '.' ? path.slice(0, -1) : path;
  const last = trimmed.at(-1);
  if (last === undefined) return;
  const parent = valueAt(root, trimmed.slice(0, -1));
  if (last.startsWith('f:') && isObject(parent)) {
    removeKey(parent, last.slice(2));
  } else if (last.startsWith('k:') && Array.isArray(parent)) {
    const index = parent.findIndex((element) => elementMatches(element, last));
    if (index >= 0) parent.splice(index, 1);
  }
}

function isPrefix(prefix: FieldPath, path: FieldPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, index) => path[index] === segment);
}

/** `.spec.template.spec.containers[name="app"].image`, the way the API server names fields in conflicts. */
export function describePath(path: FieldPath): string {
  let text = '';
  for (const segment of path) {
    if (segment === '.') continue;
    if (segment.startsWith('f:')) {
      text += `.${segment.slice(2)}`;
    } else if (segment.startsWith('k:')) {
      const keys = JSON.parse(segment.slice(2)) as JsonObject;
      text += `[${Object.entries(keys)
        .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
        .join(',')}]`;
    }
  }
  return text;
}

function toFieldsV1(fields: Set<string>): JsonObject {
  const root: JsonObject = {};
  for (const encoded of [...fields].sort()) {
    let node = root;
    for (const segment of decode(encoded)) {
      const child = node[segment];
      if (isObject(child)) {
        node = child;
      } else {
        const created: JsonObject = {};
        node[segment] = created;
        node = created;
      }
    }
  }
  return root;
}

function fromFieldsV1(node: JsonObject, prefix: string[], out: Set<string>): void {
  for (const [segment, child] of Object.entries(node)) {
    const path = [...prefix, segment];
    if (isObject(child) && Object.keys(child).length > 0) fromFieldsV1(child, path, out);
    else out.add(encode(path));
  }
}

export function readManagedFields(object: JsonObject | undefined): ManagedEntry[] {
  const metadata = object?.metadata;
  const list = isObject(metadata) && Array.isArray(metadata.managedFields) ? metadata.managedFields : [];
  const entries: ManagedEntry[] = [];
  for (const item of list) {
    if (!isObject(item) || typeof item.manager !== 'string') continue;
    const fields = new Set<string>();
    if (isObject(item.fieldsV1)) fromFieldsV1(item.fieldsV1, [], fields);
    entries.push({
      manager: item.manager,
      operation: item.operation === 'Apply' ? 'Apply' : 'Update',
      apiVersion: typeof item.apiVersion === 'string' ? item.apiVersion : '',
      time: typeof item.time === 'string' ? item.time : '',
      subresource: typeof item.subresource === 'string' ? item.subresource : '',
      fields,
    });
  }
  return entries;
}

export function renderManagedFields(entries: readonly ManagedEntry[]): JsonObject[] {
  return entries
    .filter((entry) => entry.fields.size > 0)
    .map((entry) => {
      const rendered: JsonObject = {
        manager: entry.manager,
        operation: entry.operation,
        apiVersion: entry.apiVersion,
        time: entry.time,
        fieldsType: 'FieldsV1',
        fieldsV1: toFieldsV1(entry.fields),
      };
      if (entry.subresource !== '') rendered.subresource = entry.subresource;
      return rendered;
    });
}

function sameFields(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((field) => b.has(field));
}

/** Merges applied content into the live object: maps merge, keyed lists merge by key (new elements go last), the rest replaces. */
export function mergeApplied(live: Json | undefined, applied: Json): Json {
  if (isObject(applied)) {
    const result: JsonObject = isObject(live) ? clone(live) : {};
    for (const [key, value] of Object.entries(applied)) result[key] = mergeApplied(result[key], value);
    return result;
  }
  if (Array.isArray(applied)) {
    const key = Array.isArray(live) ? sharedKey(live, applied) : undefined;
    if (!Array.isArray(live) || key === undefined) return clone(applied);
    const result: Json[] = live.map((element) => {
      const update = applied.find((candidate) => keyValue(candidate, key) === keyValue(element, key));
      return update === undefined ? clone(element) : mergeApplied(element, update);
    });
    for (const element of applied) {
      if (!live.some((existing) => keyValue(existing, key) === keyValue(element, key))) result.push(clone(element));
    }
    return result;
  }
  return applied;
}

/** Drops nulls from applied configuration: in an apply, a null means "I do not set this", never "store a null". */
export function withoutNulls(value: Json): Json {
  if (Array.isArray(value)) return value.filter((item) => item !== null).map(withoutNulls);
  if (!isObject(value)) return value;
  const result: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (item !== null) result[key] = withoutNulls(item);
  }
  return result;
}

export interface ApplyRequest {
  /** The stored object, or a skeleton with apiVersion, kind and identity metadata when the apply creates it. */
  live: JsonObject;
  liveExists: boolean;
  /** The applied configuration, already reduced to the fields of `scope` (see trackedContent). */
  applied: JsonObject;
  manager: string;
  force: boolean;
  apiVersion: string;
  scope: Scope;
  now: string;
}

export type ApplyOutcome = { ok: true; object: JsonObject } | { ok: false; conflicts: FieldConflict[] };

/**
 * Server-side apply, simplified: conflicts are detected per owned leaf whose value the apply would change;
 * fields this manager applied before and no longer applies are removed unless another manager still owns them.
 */
export function serverSideApply(request: ApplyRequest): ApplyOutcome {
  const { live, applied, manager, force, scope } = request;
  const subresource = scope === 'status' ? 'status' : '';
  const appliedFields = fieldSet(applied);
  const entries = request.liveExists ? readManagedFields(live) : [];
  const isSelf = (entry: ManagedEntry): boolean => entry.manager === manager && entry.operation === 'Apply' && entry.subresource === subresource;
  const self = entries.find(isSelf);
  const others = entries.filter((entry) => !isSelf(entry));

  const merged = mergeApplied(live, applied);
  if (!isObject(merged)) return { ok: true, object: live };

  // A conflict is a field another manager owns whose value this apply would change (an applied empty map changes nothing).
  const conflicts: FieldConflict[] = [];
  for (const encoded of appliedFields) {
    const path = decode(encoded);
    if (path.at(-1) === '.') continue;
    const liveValue = valueAt(live, path);
    if (liveValue === undefined || deepEqual(liveValue, valueAt(merged, path))) continue;
    for (const entry of others) {
      if (entry.manager !== manager && entry.subresource === subresource && entry.fields.has(encoded)) {
        conflicts.push({ manager: entry.manager, apiVersion: entry.apiVersion, path });
      }
    }
  }
  if (conflicts.length > 0 && !force) return { ok: false, conflicts };
  for (const conflict of conflicts) {
    for (const entry of others) {
      if (entry.manager === conflict.manager) entry.fields.delete(encode(conflict.path));
    }
  }

  const ownedByOthers = (path: FieldPath): boolean => {
    const subject = path.at(-1) === '.' ? path.slice(0, -1) : path;
    return others.some((entry) => [...entry.fields].some((field) => isPrefix(subject, decode(field))));
  };
  const dropped = [...(self?.fields ?? [])]
    .filter((field) => !appliedFields.has(field))
    .map(decode)
    .sort((a, b) => b.length - a.length);
  for (const path of dropped) {
    if (ownedByOthers(path)) continue;
    deleteAt(merged, path);
    pruneEmptyParents(merged, path, appliedFields, others);
  }

  const nextSelf: ManagedEntry = {
    manager,
    operation: 'Apply',
    apiVersion: request.apiVersion,
    time: self !== undefined && sameFields(self.fields, appliedFields) && self.apiVersion === request.apiVersion ? self.time : request.now,
    subresource,
    fields: appliedFields,
  };
  const nextEntries = self === undefined ? [...entries, nextSelf] : entries.map((entry) => (isSelf(entry) ? nextSelf : entry));
  const metadata = isObject(merged.metadata) ? merged.metadata : {};
  metadata.managedFields = renderManagedFields(nextEntries);
  merged.metadata = metadata;
  return { ok: true, object: merged };
}

/** A map left empty by removing a field goes too, unless someone owns it as such. */
function pruneEmptyParents(root: JsonObject, path: FieldPath, applied: Set<string>, others: readonly ManagedEntry[]): void {
  for (let length = path.length - 1; length > 0; length--) {
    const ancestor = path.slice(0, length);
    if (!(ancestor.at(-1) ?? '').startsWith('f:')) return;
    const value = valueAt(root, ancestor);
    if (!isObject(value) || Object.keys(value).length > 0) return;
    const encoded = encode(ancestor);
    if (applied.has(encoded) || others.some((entry) => entry.fields.has(encoded))) return;
    deleteAt(root, ancestor);
  }
}

export interface UpdateRequest {
  previous: JsonObject | undefined;
  next: JsonObject;
  manager: string;
  apiVersion: string;
  scope: Scope;
  hasStatus: boolean;
  now: string;
}

/**
 * Ownership after a create, update or non-apply patch: the writer takes every field it changed (no conflicts for
 * updates, as in Kubernetes), and fields it removed are owned by nobody afterwards.
 */
export function recordUpdate(request: UpdateRequest): JsonObject[] {
  const { previous, next, scope, hasStatus } = request;
  const subresource = scope === 'status' ? 'status' : '';
  const before = previous === undefined ? new Set<string>() : fieldSet(trackedContent(previous, scope, hasStatus));
  const after = fieldSet(trackedContent(next, scope, hasStatus));
  const changed = new Set<string>();
  for (const encoded of after) {
    if (!before.has(encoded)) {
      changed.add(encoded);
      continue;
    }
    const path = decode(encoded);
    if (path.at(-1) !== '.' && !deepEqual(valueAt(previous, path), valueAt(next, path))) changed.add(encoded);
  }
  const removed = [...before].filter((encoded) => !after.has(encoded));
  const entries = readManagedFields(previous);
  const isSelf = (entry: ManagedEntry): boolean => entry.manager === request.manager && entry.operation === 'Update' && entry.subresource === subresource;
  for (const entry of entries) {
    if (isSelf(entry)) continue;
    for (const encoded of [...changed, ...removed]) entry.fields.delete(encoded);
  }
  if (changed.size === 0 && removed.length === 0) return renderManagedFields(entries);
  const self = entries.find(isSelf);
  const fields = new Set([...(self?.fields ?? []), ...changed]);
  for (const encoded of removed) fields.delete(encoded);
  const nextSelf: ManagedEntry = { manager: request.manager, operation: 'Update', apiVersion: request.apiVersion, time: request.now, subresource, fields };
  const nextEntries = self === undefined ? [...entries, nextSelf] : entries.map((entry) => (isSelf(entry) ? nextSelf : entry));
  return renderManagedFields(nextEntries);
}
