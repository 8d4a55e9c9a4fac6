import { type Json, isObject } from './json.ts';

/**
 * Keys that make a list of objects a map keyed by that field. A real server learns this per field from the
 * OpenAPI schema (listType=map, patchMergeKey); the sandbox infers it from the data, trying these in order.
 * Lists that fit none (tolerations, RBAC rules, args) stay atomic, which is also what the schema says for them.
 */
const MERGE_KEY_CANDIDATES = ['name', 'mountPath', 'containerPort', 'port', 'type', 'ip', 'devicePath'];

export type ListKeyValue = string | number;

/** The field a list is keyed by, when every element is an object carrying a distinct scalar value for it. */
export function associativeKey(list: readonly Json[]): string | undefined {
  if (list.length === 0) return undefined;
  const elements = list.filter(isObject);
  if (elements.length !== list.length) return undefined;
  return MERGE_KEY_CANDIDATES.find((key) => {
    const seen = new Set<ListKeyValue>();
    for (const element of elements) {
      const value = element[key];
      if (typeof value !== 'string' && typeof value !== 'number') return false;
      if (seen.has(value)) return false;
      seen.add(value);
    }
    return true;
  });
}

export function keyValue(element: Json | undefined, key: string): ListKeyValue | undefined {
  if (!isObject(element)) return undefined;
  const value = element[key];
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

/** Whether both lists can be merged element by element on the same key. */
export function sharedKey(target: readonly Json[], patch: readonly Json[]): string | undefined {
  const key = associativeKey(patch);
  if (key === undefined) return undefined;
  if (target.length === 0) return key;
  return target.every((element) => keyValue(element, key) !== undefined) ? key : undefined;
}
