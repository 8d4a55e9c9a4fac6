import type { TestItem } from './benchmark.ts';

/** What one test item found: whether the flag/field exists and its value. */
export interface Finding {
  present: boolean;
  value: string;
  /** Where the value was read, when not the flag itself (a config file field). */
  label?: string;
}

export interface ItemVerdict {
  pass: boolean;
  /** Human-readable account, e.g. "--profiling=true, expected eq false". */
  detail: string;
}

function toInt(text: string): number | undefined {
  return /^-?\d+$/.test(text.trim()) ? Number.parseInt(text, 10) : undefined;
}

/** kube-bench's compare operators (check/test.go), with its lower-casing of eq/noteq. */
export function compareOp(op: string, actual: string, expected: string): boolean {
  switch (op) {
    case 'eq':
      return actual.toLowerCase() === expected.toLowerCase();
    case 'noteq':
      return actual.toLowerCase() !== expected.toLowerCase();
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const a = toInt(actual);
      const e = toInt(expected);
      if (a === undefined || e === undefined) return false;
      if (op === 'gt') return a > e;
      if (op === 'gte') return a >= e;
      if (op === 'lt') return a < e;
      return a <= e;
    }
    case 'has':
      return actual.includes(expected);
    case 'nothave':
      return !actual.includes(expected);
    case 'regex':
      return new RegExp(expected).test(actual);
    case 'valid_elements': {
      const allowed = new Set(expected.split(',').map((s) => s.trim()));
      const elements = actual.split(',').map((s) => s.trim()).filter((s) => s !== '');
      return elements.length > 0 && elements.every((e) => allowed.has(e));
    }
    case 'bitmask': {
      // "At most": every permission bit set on the file is allowed by the mask.
      const mode = Number.parseInt(actual, 8);
      const mask = Number.parseInt(expected, 8);
      if (Number.isNaN(mode) || Number.isNaN(mask)) return false;
      return (mode & mask) === mode;
    }
    default:
      throw new Error(`unsupported compare op ${op}`);
  }
}

export function evaluateItem(item: TestItem, finding: Finding): ItemVerdict {
  const name = finding.label ?? item.flag ?? item.path ?? item.env ?? '?';
  const shown = finding.present ? `${name}=${finding.value}` : `${name} not set`;
  if (!item.set) return { pass: !finding.present, detail: `${shown}, expected unset` };
  if (!finding.present) return { pass: false, detail: `${shown}, expected set` };
  if (!item.compare) return { pass: true, detail: shown };
  return {
    pass: compareOp(item.compare.op, finding.value, item.compare.value),
    detail: `${shown}, expected ${item.compare.op} ${item.compare.value}`,
  };
}

export function combine(binOp: 'and' | 'or' | undefined, verdicts: ItemVerdict[]): ItemVerdict {
  const pass = binOp === 'or' ? verdicts.some((v) => v.pass) : verdicts.every((v) => v.pass);
  const shown = pass ? verdicts.filter((v) => v.pass) : verdicts;
  return { pass, detail: [...new Set(shown.map((v) => v.detail))].join(binOp === 'or' ? ' | ' : '; ') };
}

/**
 * kube-bench's reading of a flag in text output ("permissions=600",
 * "root:root", "ownership=root:root /etc/kubernetes/admin.conf").
 */
export function findInOutput(output: string, flag: string): Finding {
  if (output === '' || !output.includes(flag)) return { present: false, value: '' };
  const escaped = flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`(${escaped})(=|: *)*([^\\s]*) *`).exec(output);
  const value = match?.[3] ?? '';
  if (value !== '') return { present: true, value };
  return { present: true, value: flag.startsWith('--') ? 'true' : flag };
}
