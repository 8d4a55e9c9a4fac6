import { type JsonObject, isObject, objectAt, stringMap } from './json.ts';
import { badRequest } from './status.ts';

type LabelRequirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] };

export type Selector = (object: JsonObject) => boolean;

const matchAll: Selector = () => true;

/** Splits on commas that are not inside the parentheses of an `in (...)` set. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts.map((part) => part.trim()).filter((part) => part !== '');
}

function parseLabelRequirement(text: string): LabelRequirement {
  const setMatch = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(text);
  if (setMatch !== null) {
    const [, key = '', op = 'in', list = ''] = setMatch;
    const values = list
      .split(',')
      .map((value) => value.trim())
      .filter((value) => value !== '');
    return { op: op === 'in' ? 'in' : 'notin', key, values };
  }
  const comparison = /^([^\s!=(),]+)\s*(==|!=|=)\s*([^\s!=(),]*)$/.exec(text);
  if (comparison !== null) {
    const [, key = '', op = '=', value = ''] = comparison;
    return { op: op === '!=' ? 'neq' : 'eq', key, value };
  }
  const existence = /^(!?)([^\s!=(),]+)$/.exec(text);
  if (existence !== null) {
    const [, bang = '', key = ''] = existence;
    return { op: bang === '!' ? 'notexists' : 'exists', key };
  }
  throw badRequest(`unable to parse requirement: ${JSON.stringify(text)}`);
}

function labelMatches(requirement: LabelRequirement, labels: Record<string, string>): boolean {
  const value = labels[requirement.key];
  switch (requirement.op) {
    case 'exists':
      return value !== undefined;
    case 'notexists':
      return value === undefined;
    case 'eq':
      return value === requirement.value;
    case 'neq':
      return value !== requirement.value;
    case 'in':
      return value !== undefined && requirement.values.includes(value);
    case 'notin':
      return value === undefined || !requirement.values.includes(value);
  }
}

/** Parses a labelSelector query parameter: equality, inequality, existence and set requirements, ANDed. */
export function parseLabelSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === '') return matchAll;
  const requirements = splitTopLevel(text).map(parseLabelRequirement);
  return (object) => {
    const labels = stringMap(objectAt(object, 'metadata')?.labels);
    return requirements.every((requirement) => labelMatches(requirement, labels));
  };
}

/** Whether an object's labels satisfy a LabelSelector object (matchLabels and matchExpressions), as workloads use. */
export function matchesLabelSelectorObject(selector: JsonObject | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return true;
  const matchLabels = stringMap(selector.matchLabels);
  for (const [key, value] of Object.entries(matchLabels)) {
    if (labels[key] !== value) return false;
  }
  const expressions = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
  for (const expression of expressions) {
    if (!isObject(expression)) continue;
    const key = typeof expression.key === 'string' ? expression.key : '';
    const values = Array.isArray(expression.values) ? expression.values.filter((value) => typeof value === 'string') : [];
    const operator = expression.operator;
    const op = operator === 'In' ? 'in' : operator === 'NotIn' ? 'notin' : operator === 'Exists' ? 'exists' : 'notexists';
    const requirement: LabelRequirement = op === 'in' || op === 'notin' ? { op, key, values } : { op, key };
    if (!labelMatches(requirement, labels)) return false;
  }
  return true;
}

function fieldValue(object: JsonObject, path: string): string | undefined {
  let current: unknown = object;
  for (const segment of path.split('.')) {
    if (!isObject(current)) return undefined;
    current = current[segment];
  }
  if (typeof current === 'string') return current;
  if (typeof current === 'number' || typeof current === 'boolean') return String(current);
  return undefined;
}

/** Parses a fieldSelector: `=`, `==` and `!=` on dotted paths such as metadata.name or spec.nodeName. */
export function parseFieldSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === '') return matchAll;
  const requirements = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const match = /^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$/.exec(part);
      if (match === null) throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
      const [, path = '', op = '=', value = ''] = match;
      return { path, negate: op === '!=', value };
    });
  return (object) =>
    requirements.every((requirement) => {
      const actual = fieldValue(object, requirement.path) ?? '';
      return requirement.negate ? actual !== requirement.value : actual === requirement.value;
    });
}
