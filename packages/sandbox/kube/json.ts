/** JSON values as the API server stores them: every object is plain data, never a class instance. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function clone<T extends Json>(value: T): T {
  return structuredClone(value);
}

/** Deep equality that ignores the order of object keys, as two encodings of one Kubernetes object are equal. */
export function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => deepEqual(item, b[index]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
  }
  return false;
}

/** Converts anything JSON.parse or the YAML parser produced into Json, dropping undefined the way JSON.stringify would. */
export function toJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null)) as Json;
}

/** Deletes a key chosen at run time; objects here are plain JSON maps, never records with a fixed shape. */
export function removeKey(object: JsonObject, key: string): void {
  Reflect.deleteProperty(object, key);
}

export function objectAt(parent: JsonObject | undefined, key: string): JsonObject | undefined {
  const value = parent?.[key];
  return isObject(value) ? value : undefined;
}

export function stringAt(parent: JsonObject | undefined, key: string): string | undefined {
  const value = parent?.[key];
  return typeof value === 'string' ? value : undefined;
}

export function numberAt(parent: JsonObject | undefined, key: string): number | undefined {
  const value = parent?.[key];
  return typeof value === 'number' ? value : undefined;
}

export function arrayAt(parent: JsonObject | undefined, key: string): Json[] {
  const value = parent?.[key];
  return Array.isArray(value) ? value : [];
}

/** The strings of the array at parent[key] (none when it is missing or not an array). */
export function stringsAt(parent: JsonObject | undefined, key: string): string[] {
  return arrayAt(parent, key).filter((value): value is string => typeof value === 'string');
}

/** Returns parent[key] as an object, creating an empty one when it is missing or not an object. */
export function ensureObject(parent: JsonObject, key: string): JsonObject {
  const existing = parent[key];
  if (isObject(existing)) return existing;
  const created: JsonObject = {};
  parent[key] = created;
  return created;
}

export function stringMap(value: Json | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  if (!isObject(value)) return result;
  for (const [key, item] of Object.entries(value)) {
    if (typeof item === 'string') result[key] = item;
  }
  return result;
}
