import type { ZodError } from 'zod';

/**
 * The closed list of error codes Kiln can answer with. Each maps to exactly one
 * HTTP status and problem type; the API maps them to RFC 9457 problem+json in
 * one place (packages/api/problem.ts), and workflows record them on operations.
 */
export const ERROR_CODES = {
  malformed_request: { status: 400, title: 'Malformed request' },
  validation_failed: { status: 400, title: 'Validation failed' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  quota_exceeded: { status: 403, title: 'Quota exceeded' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  idempotency_request_in_flight: { status: 409, title: 'Idempotent request in flight' },
  gone: { status: 410, title: 'Gone' },
  precondition_failed: { status: 412, title: 'Precondition failed' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  unprocessable: { status: 422, title: 'Unprocessable order' },
  idempotency_key_reused: { status: 422, title: 'Idempotency key reused' },
  rate_limited: { status: 429, title: 'Too many requests' },
  provisioning_failed: { status: 500, title: 'Provisioning step failed' },
  internal: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * One problem with one input: a JSON pointer (RFC 6901) into the request body,
 * or the name of the query parameter or header it is about.
 */
export type FieldProblem = { pointer: string; detail: string } | { parameter: string; detail: string } | { header: string; detail: string };

/** The base of every error Kiln throws on purpose. `detail` is safe to show a client. */
export class KilnError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  readonly errors: readonly FieldProblem[];
  /** Response headers the answer carries (Retry-After, RateLimit). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, detail: string, errors: readonly FieldProblem[] = [], headers: Readonly<Record<string, string>> = {}) {
    super(detail);
    this.name = 'KilnError';
    this.code = code;
    this.detail = detail;
    this.errors = errors;
    this.headers = headers;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export class ValidationError extends KilnError {
  constructor(detail: string, errors: readonly FieldProblem[]) {
    super('validation_failed', detail, errors);
    this.name = 'ValidationError';
  }
}

export class UnprocessableError extends KilnError {
  constructor(detail: string, errors: readonly FieldProblem[]) {
    super('unprocessable', detail, errors);
    this.name = 'UnprocessableError';
  }
}

export class NotFoundError extends KilnError {
  constructor(kind: string, id: string) {
    super('not_found', `No ${kind} with id '${id}' exists.`);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends KilnError {
  constructor(detail: string) {
    super('conflict', detail);
    this.name = 'ConflictError';
  }
}

/** A tenant's quota (clusters or nodes) would be exceeded; nothing was changed. */
export class QuotaExceededError extends KilnError {
  constructor(detail: string) {
    super('quota_exceeded', detail);
    this.name = 'QuotaExceededError';
  }
}

export class UnauthorizedError extends KilnError {
  constructor(detail = 'A valid bearer token is required.') {
    super('unauthorized', detail);
    this.name = 'UnauthorizedError';
  }
}

/**
 * Step failures carry a name Step Functions matches on: `Kiln.Transient` is
 * retried with backoff, `Kiln.Permanent` goes straight to the Catch.
 */
export class StepError extends Error {
  readonly retriable: boolean;
  readonly step: string;

  constructor(step: string, message: string, retriable: boolean) {
    super(message);
    this.step = step;
    this.retriable = retriable;
    this.name = retriable ? 'Kiln.Transient' : 'Kiln.Permanent';
  }
}

/** A JSON pointer (RFC 6901) for a path of object keys and array indexes. */
export function jsonPointer(path: readonly PropertyKey[]): string {
  return path
    .map((segment) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`)
    .join('');
}

/** Where a request's invalid input sits: the JSON body, a header, or a query or path parameter. */
export type InputTarget = 'json' | 'header' | 'parameter';

/** zod's issues as field problems: one per unknown key (named), one per other issue, each at its place. */
export function fieldProblemsOf(error: ZodError, target: InputTarget = 'json'): FieldProblem[] {
  return error.issues.flatMap((issue): FieldProblem[] => {
    const keysAtFault = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    return keysAtFault.map((key) => {
      const path = key === undefined ? issue.path : [...issue.path, key];
      const detail = issue.code === 'unrecognized_keys' ? 'is not a known field' : issue.message;
      if (target === 'json') return { pointer: jsonPointer(path), detail };
      if (target === 'header') return { header: String(path[0] ?? ''), detail };
      return { parameter: String(path[0] ?? ''), detail };
    });
  });
}

/** The 400 for input of the wrong shape; its detail names the first problem. */
export function validationErrorOf(error: ZodError, target: InputTarget = 'json', subject = 'The request'): ValidationError {
  const problems = fieldProblemsOf(error, target);
  const first = problems[0];
  const where = first === undefined ? '' : 'pointer' in first ? ` at ${first.pointer || '/'}` : '';
  return new ValidationError(`${subject} is not valid${where}: ${first?.detail ?? 'see errors'}.`, problems);
}
