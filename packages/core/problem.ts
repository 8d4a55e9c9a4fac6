import { ERROR_CODES, type ErrorCode, type FieldProblem } from './errors.ts';
import type { Problem } from './resources.ts';

const PROBLEM_BASE = 'https://kiln.dev/problems/';

export function problemType(code: ErrorCode): string {
  return `${PROBLEM_BASE}${code.replaceAll('_', '-')}`;
}

/** An RFC 9457 problem for one of Kiln's error codes. */
export function problemFor(code: ErrorCode, detail: string, errors: readonly FieldProblem[] = [], instance?: string): Problem {
  const { status, title } = ERROR_CODES[code];
  return {
    type: problemType(code),
    title,
    status,
    detail,
    code,
    ...(instance === undefined ? {} : { instance }),
    ...(errors.length === 0 ? {} : { errors: [...errors] }),
  };
}
