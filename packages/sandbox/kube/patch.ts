import { type Json, type JsonObject, clone, deepEqual, isObject, removeKey } from './json.ts';
import { keyValue, sharedKey } from './lists.ts';
import { KubeApiError, badRequest } from './status.ts';

/** RFC 7386 JSON merge patch: objects merge, null deletes, everything else (lists included) replaces. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      removeKey(result, key);
    } else {
      result[key] = mergePatch(result[key], value);
    }
  }
  return result;
}

/**
 * Strategic merge patch, approximated: like a merge patch, except lists of keyed objects (containers by name,
 * conditions by type) merge element by element and honour `$patch: delete` and `$patch: replace`.
 */
export function strategicMergePatch(target: Json | undefined, patch: Json): Json {
  if (Array.isArray(patch)) {
    const key = Array.isArray(target) ? sharedKey(target, patch) : undefined;
    if (!Array.isArray(target) || key === undefined) return stripDirectives(patch);
    const result = clone(target);
    for (const element of patch) {
      const id = keyValue(element, key);
      const index = result.findIndex((existing) => keyValue(existing, key) === id);
      if (isObject(element) && element.$patch === 'delete') {
        if (index >= 0) result.splice(index, 1);
      } else if (index >= 0) {
        result[index] = strategicMergePatch(result[index], element);
      } else {
        result.push(stripDirectives(element));
      }
    }
    return result;
  }
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') return stripDirectives(patch);
  if (patch.$patch === 'delete') return {};
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) {
      removeKey(result, key);
    } else {
      result[key] = strategicMergePatch(result[key], value);
    }
  }
  return result;
}

function isDirective(element: Json): boolean {
  return isObject(element) && element.$patch === 'delete';
}

function stripDirectives(value: Json): Json {
  if (Array.isArray(value)) return value.filter((element) => !isDirective(element)).map(stripDirectives);
  if (!isObject(value)) return value;
  const result: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (!key.startsWith('$') && item !== null) result[key] = stripDirectives(item);
  }
  return result;
}

interface JsonPatchOperation {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function parseOperations(patch: Json): JsonPatchOperation[] {
  if (!Array.isArray(patch)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  return patch.map((operation) => {
    if (!isObject(operation) || typeof operation.op !== 'string' || typeof operation.path !== 'string') {
      throw badRequest('invalid JSON patch operation: each operation needs "op" and "path"');
    }
    const parsed: JsonPatchOperation = { op: operation.op, path: operation.path };
    if (typeof operation.from === 'string') parsed.from = operation.from;
    if (Object.hasOwn(operation, 'value')) parsed.value = operation.value ?? null;
    return parsed;
  });
}

function unprocessable(message: string): KubeApiError {
  return new KubeApiError(422, 'Invalid', message);
}

function pointerTokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw unprocessable(`invalid JSON pointer: ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function arrayIndex(token: string, length: number, allowEnd: boolean): number {
  if (allowEnd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw unprocessable(`invalid array index: ${token}`);
  const index = Number(token);
  if (index > length || (!allowEnd && index === length)) throw unprocessable(`array index out of bounds: ${token}`);
  return index;
}

/** Resolves the parent container of a pointer's last token. */
function parentOf(document: Json, tokens: string[], pointer: string): { parent: Json; last: string } {
  let current: Json = document;
  for (const token of tokens.slice(0, -1)) {
    let next: Json | undefined;
    if (Array.isArray(current)) next = current[arrayIndex(token, current.length, false)];
    else if (isObject(current)) next = current[token];
    if (next === undefined) throw unprocessable(`doc is missing path: "${pointer}": missing value`);
    current = next;
  }
  const last = tokens.at(-1);
  if (last === undefined) throw unprocessable(`cannot operate on the document root: "${pointer}"`);
  return { parent: current, last };
}

function getPointer(document: Json, pointer: string): Json {
  let current: Json = document;
  for (const token of pointerTokens(pointer)) {
    let next: Json | undefined;
    if (Array.isArray(current)) next = current[arrayIndex(token, current.length, false)];
    else if (isObject(current)) next = current[token];
    if (next === undefined) throw unprocessable(`doc is missing path: "${pointer}": missing value`);
    current = next;
  }
  return current;
}

function addAt(document: Json, pointer: string, value: Json): Json {
  const tokens = pointerTokens(pointer);
  if (tokens.length === 0) return clone(value);
  const { parent, last } = parentOf(document, tokens, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, true), 0, clone(value));
  else if (isObject(parent)) parent[last] = clone(value);
  else throw unprocessable(`doc is missing path: "${pointer}"`);
  return document;
}

function removeAt(document: Json, pointer: string): Json {
  const { parent, last } = parentOf(document, pointerTokens(pointer), pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, false), 1);
  else if (isObject(parent) && Object.hasOwn(parent, last)) removeKey(parent, last);
  else throw unprocessable(`Unable to remove nonexistent key: ${last}: missing value`);
  return document;
}

/** RFC 6902 JSON patch, all six operations, applied atomically to a copy. */
export function jsonPatch(target: Json, patch: Json): Json {
  let document = clone(target);
  for (const operation of parseOperations(patch)) {
    const value = operation.value;
    switch (operation.op) {
      case 'add':
        if (value === undefined) throw unprocessable('add operation does not apply: missing value');
        document = addAt(document, operation.path, value);
        break;
      case 'remove':
        document = removeAt(document, operation.path);
        break;
      case 'replace':
        if (value === undefined) throw unprocessable('replace operation does not apply: missing value');
        getPointer(document, operation.path);
        document = pointerTokens(operation.path).length === 0 ? clone(value) : addAt(removeAt(document, operation.path), operation.path, value);
        break;
      case 'move': {
        if (operation.from === undefined) throw unprocessable('move operation does not apply: missing from');
        const moved = getPointer(document, operation.from);
        document = addAt(removeAt(document, operation.from), operation.path, moved);
        break;
      }
      case 'copy': {
        if (operation.from === undefined) throw unprocessable('copy operation does not apply: missing from');
        document = addAt(document, operation.path, getPointer(document, operation.from));
        break;
      }
      case 'test':
        if (!deepEqual(getPointer(document, operation.path), value ?? null)) {
          throw unprocessable(`testing value ${operation.path} failed: test failed`);
        }
        break;
      default:
        throw badRequest(`Unexpected kind: ${operation.op}`);
    }
  }
  return document;
}
