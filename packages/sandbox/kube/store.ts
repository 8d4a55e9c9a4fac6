import type { ResourceType } from './catalog.ts';
import { typeKey } from './catalog.ts';
import { ENCRYPTED_RESOURCE, type SecretEncryptionAtRest, type StoredSecretKey } from './encryption-at-rest.ts';
import { type JsonObject, clone, ensureObject, objectAt, stringAt } from './json.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: WatchEventType;
  /** `group/plural`, the same for every version of a resource. */
  resource: string;
  namespace: string;
  object: JsonObject;
  /** The object before this event, so a watch with a selector can tell "stopped matching" from "changed". */
  previous: JsonObject | undefined;
  resourceVersion: number;
}

const HISTORY_LIMIT = 5000;

export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function nameOf(object: JsonObject): string {
  return stringAt(objectAt(object, 'metadata'), 'name') ?? '';
}

export function namespaceOf(object: JsonObject): string {
  return stringAt(objectAt(object, 'metadata'), 'namespace') ?? '';
}

/**
 * Every object of one sandbox cluster, like etcd behind a real server: one global revision counter that each write
 * advances and stamps on the object as metadata.resourceVersion, and a bounded event history that watches replay.
 */
export class ObjectStore {
  private revision = 1;
  private readonly objects = new Map<string, Map<string, JsonObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly listeners = new Set<(event: StoreEvent) => void>();

  /** With encryption at rest, Secrets are kept sealed here and opened on every read; watch events stay plain, like the watch cache. */
  constructor(private readonly atRest?: SecretEncryptionAtRest) {}

  private toStorage(resource: string, object: JsonObject): JsonObject {
    if (this.atRest === undefined || !this.atRest.applies(resource)) return object;
    return this.atRest.seal(namespaceOf(object), nameOf(object), object);
  }

  private fromStorage(resource: string, stored: JsonObject): JsonObject {
    if (this.atRest === undefined || !this.atRest.applies(resource)) return clone(stored);
    return clone(this.atRest.open(namespaceOf(stored), nameOf(stored), stored));
  }

  /** Whether an object is stored under a key other than the one new writes use, so a no-op update must still write it. */
  isStale(type: ResourceType, namespace: string, name: string): boolean {
    const stored = this.objects.get(typeKey(type))?.get(objectKey(namespace, name));
    if (stored === undefined || this.atRest === undefined || !this.atRest.applies(typeKey(type))) return false;
    return this.atRest.isStale(namespace, name, stored);
  }

  /** Which key each stored Secret is under, without decrypting anything. */
  storedSecretKeys(): StoredSecretKey[] {
    const bucket = this.objects.get(ENCRYPTED_RESOURCE);
    if (bucket === undefined) return [];
    const atRest = this.atRest;
    return [...bucket.values()].map((stored) =>
      atRest === undefined
        ? { namespace: namespaceOf(stored), name: nameOf(stored), provider: 'identity', key: 'identity' }
        : atRest.describe(namespaceOf(stored), nameOf(stored), stored),
    );
  }

  get resourceVersion(): number {
    return this.revision;
  }

  private bucket(resource: string): Map<string, JsonObject> {
    let bucket = this.objects.get(resource);
    if (bucket === undefined) {
      bucket = new Map();
      this.objects.set(resource, bucket);
    }
    return bucket;
  }

  /** A copy of the stored object; callers may change it freely. */
  get(type: ResourceType, namespace: string, name: string): JsonObject | undefined {
    const stored = this.objects.get(typeKey(type))?.get(objectKey(namespace, name));
    return stored === undefined ? undefined : this.fromStorage(typeKey(type), stored);
  }

  /** Copies of the stored objects of one resource, ordered by namespace then name so list pages are stable. */
  list(type: ResourceType, namespace?: string): JsonObject[] {
    const bucket = this.objects.get(typeKey(type));
    if (bucket === undefined) return [];
    return [...bucket.entries()]
      .filter(([, object]) => namespace === undefined || namespaceOf(object) === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => this.fromStorage(typeKey(type), object));
  }

  /** Stores a new version and returns it as stored, with its new resourceVersion. */
  put(type: ResourceType, object: JsonObject): JsonObject {
    const stored = clone(object);
    const bucket = this.bucket(typeKey(type));
    const key = objectKey(namespaceOf(stored), nameOf(stored));
    const kept = bucket.get(key);
    // Opened before the revision moves, so a Secret no configured key opens fails the write without a trace.
    const previous = kept === undefined ? undefined : this.fromStorage(typeKey(type), kept);
    this.revision++;
    ensureObject(stored, 'metadata').resourceVersion = String(this.revision);
    bucket.set(key, this.toStorage(typeKey(type), stored));
    this.emit({
      type: previous === undefined ? 'ADDED' : 'MODIFIED',
      resource: typeKey(type),
      namespace: namespaceOf(stored),
      object: stored,
      previous,
      resourceVersion: this.revision,
    });
    return clone(stored);
  }

  remove(type: ResourceType, namespace: string, name: string): JsonObject | undefined {
    const bucket = this.objects.get(typeKey(type));
    const key = objectKey(namespace, name);
    const kept = bucket?.get(key);
    if (bucket === undefined || kept === undefined) return undefined;
    const previous = this.fromStorage(typeKey(type), kept);
    bucket.delete(key);
    this.revision++;
    const deleted = clone(previous);
    ensureObject(deleted, 'metadata').resourceVersion = String(this.revision);
    this.emit({ type: 'DELETED', resource: typeKey(type), namespace, object: deleted, previous, resourceVersion: this.revision });
    return clone(deleted);
  }

  /** Every event after a resourceVersion, or undefined when the history no longer reaches back that far. */
  eventsSince(resourceVersion: number): StoreEvent[] | undefined {
    const oldest = this.history[0];
    if (oldest !== undefined && oldest.resourceVersion > resourceVersion + 1) return undefined;
    return this.history.filter((event) => event.resourceVersion > resourceVersion);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private emit(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    for (const listener of this.listeners) listener(event);
  }
}
