import type { JsonObject } from './json.ts';

/** The reasons a real API server puts in a failed Status (metav1.StatusReason). */
export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout';

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A failure the server answers with a `kind: Status` body, which client-node surfaces as ApiException.body. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly reason: StatusReason;
  readonly details: StatusDetails | undefined;

  constructor(code: number, reason: StatusReason, message: string, details?: StatusDetails) {
    super(message);
    this.name = 'KubeApiError';
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): JsonObject {
    const status: JsonObject = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details !== undefined) status.details = JSON.parse(JSON.stringify(this.details)) as JsonObject;
    return status;
  }
}

/** How a resource is named in Status details: the plural resource and, outside the core group, its group. */
export interface ResourceRef {
  group: string;
  plural: string;
}

function describe(ref: ResourceRef): string {
  return ref.group === '' ? ref.plural : `${ref.plural}.${ref.group}`;
}

function detailsFor(ref: ResourceRef, name: string): StatusDetails {
  return ref.group === '' ? { name, kind: ref.plural } : { name, group: ref.group, kind: ref.plural };
}

export function notFound(ref: ResourceRef, name: string): KubeApiError {
  return new KubeApiError(404, 'NotFound', `${describe(ref)} "${name}" not found`, detailsFor(ref, name));
}

export function alreadyExists(ref: ResourceRef, name: string): KubeApiError {
  return new KubeApiError(409, 'AlreadyExists', `${describe(ref)} "${name}" already exists`, detailsFor(ref, name));
}

export function staleConflict(ref: ResourceRef, name: string): KubeApiError {
  return new KubeApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${describe(ref)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    detailsFor(ref, name),
  );
}

export function invalid(kind: string, name: string, causes: StatusCause[], group = ''): KubeApiError {
  const summary = causes.map((cause) => (cause.field === undefined ? cause.message : `${cause.field}: ${cause.message}`)).join(', ');
  const details: StatusDetails = group === '' ? { name, kind, causes } : { name, group, kind, causes };
  return new KubeApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${summary}`, details);
}

export function badRequest(message: string): KubeApiError {
  return new KubeApiError(400, 'BadRequest', message);
}

export function forbidden(message: string): KubeApiError {
  return new KubeApiError(403, 'Forbidden', message);
}

export function methodNotAllowed(): KubeApiError {
  return new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

export function unsupportedMediaType(contentType: string): KubeApiError {
  return new KubeApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got "${contentType}")`);
}

export function pathNotFound(): KubeApiError {
  return new KubeApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** The reason a real server pairs with an HTTP status, for injected faults that name only a code. */
export function reasonForCode(code: number): StatusReason {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    case 410:
      return 'Expired';
    case 415:
      return 'UnsupportedMediaType';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return 'InternalError';
  }
}
