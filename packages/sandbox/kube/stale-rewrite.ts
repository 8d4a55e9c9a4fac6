import type { Scope } from './fields.ts';
import type { Json, JsonObject } from './json.ts';
import { objectAt } from './json.ts';
import type { ResourceCatalog, ResourceType } from './catalog.ts';
import { ApiRegistry, type WriteOptions, type WriteResult } from './registry.ts';
import type { ObjectStore } from './store.ts';

/**
 * The registry skips updates that change nothing, but kube-apiserver's storage layer still writes an object it read
 * with a key other than the current write key (a "stale" read). Rotation depends on that: "read and replace every
 * Secret" is how Secrets move to the new key. This adds that write for replace and patch.
 */
export class StaleRewritingRegistry extends ApiRegistry {
  private readonly objects: ObjectStore;

  constructor(catalog: ResourceCatalog, store: ObjectStore, clock: () => Date) {
    super(catalog, store, clock);
    this.objects = store;
  }

  override replace(type: ResourceType, namespace: string, name: string, scope: Scope, body: JsonObject, options: WriteOptions): WriteResult {
    return this.rewriteIfStale(type, namespace, name, options, super.replace(type, namespace, name, scope, body, options));
  }

  override patch(type: ResourceType, namespace: string, name: string, scope: Scope, contentType: string, body: Json, options: WriteOptions): WriteResult {
    return this.rewriteIfStale(type, namespace, name, options, super.patch(type, namespace, name, scope, contentType, body, options));
  }

  private rewriteIfStale(type: ResourceType, namespace: string, name: string, options: WriteOptions, result: WriteResult): WriteResult {
    if (result.mutated || options.dryRun === true || !this.objects.isStale(type, namespace, name)) return result;
    const stored = this.objects.put(type, result.object);
    return { object: { ...result.object, metadata: objectAt(stored, 'metadata') ?? {} }, created: false, mutated: true };
  }
}
