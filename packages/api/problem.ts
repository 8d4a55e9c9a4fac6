import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ERROR_CODES, type ErrorCode, KilnError, type Logger, type Problem, problemFor } from '#core';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const HTTP_CODES: Partial<Record<number, ErrorCode>> = {
  400: 'malformed_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** When a client should try again after a transient failure of a service Kiln depends on. */
const RETRY_AFTER_SECONDS = 5;

/** Errors of AWS services (and of the connection to them) that pass: throttling, a server fault, a timeout. */
const TRANSIENT_NAMES: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'RequestThrottled',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalFailure',
  'KMSInternalException',
  'DependencyTimeoutException',
  'TimeoutError',
]);
const TRANSIENT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/** A failure of a service Kiln depends on (an AWS SDK error, or no connection to one): its name, and whether it passes. */
function dependencyFailure(error: unknown): { name: string; transient: boolean } | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const candidate = error as { name?: unknown; code?: unknown; $metadata?: unknown; $fault?: unknown; $retryable?: unknown; cause?: unknown };
  const name = typeof candidate.name === 'string' ? candidate.name : 'Error';
  if (candidate.$metadata !== undefined) {
    return { name, transient: candidate.$fault === 'server' || candidate.$retryable !== undefined || TRANSIENT_NAMES.has(name) };
  }
  const code = typeof candidate.code === 'string' ? candidate.code : undefined;
  if (code !== undefined && TRANSIENT_CODES.has(code)) return { name: code, transient: true };
  if (name === 'TimeoutError') return { name, transient: true };
  return undefined;
}

/**
 * The one place an error becomes an HTTP response. Kiln's own errors keep
 * their detail; anything else is logged and answered with a generic 500 that
 * carries the request id, never the message or stack.
 */
export function problemResponse(c: Context, error: unknown, log: Logger): Response {
  const requestId = c.get('requestId') as string | undefined;
  let problem: Problem;
  if (error instanceof KilnError) {
    problem = problemFor(error.code, error.detail, error.errors, c.req.path);
  } else if (error instanceof HTTPException && HTTP_CODES[error.status] !== undefined) {
    const code = HTTP_CODES[error.status] ?? 'malformed_request';
    const detail = code === 'malformed_request' ? 'The request body is not valid JSON.' : error.message || ERROR_CODES[code].title;
    problem = problemFor(code, detail, [], c.req.path);
  } else if (dependencyFailure(error) !== undefined) {
    const failure = dependencyFailure(error);
    log.error('dependency failed', { requestId, path: c.req.path, error });
    problem =
      failure?.transient === true
        ? problemFor('unavailable', `A service Kiln depends on did not answer in time (${failure.name}): retry in a few seconds.`, [], c.req.path)
        : problemFor('internal', `A service Kiln depends on refused the request (${failure?.name ?? 'unknown'}). Quote the request id when you report it.`, [], c.req.path);
  } else {
    log.error('unhandled error', { requestId, path: c.req.path, error });
    problem = problemFor('internal', 'Kiln could not complete the request. Quote the request id when you report it.', [], c.req.path);
  }
  if (requestId !== undefined) problem.requestId = requestId;
  // A fresh Response drops the headers middleware set on the context, so the request id goes on explicitly.
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE, ...(requestId === undefined ? {} : { 'x-request-id': requestId }) };
  if (problem.status === 401) headers['www-authenticate'] = 'Bearer realm="kiln"';
  if (problem.status === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  if (error instanceof KilnError) Object.assign(headers, error.headers);
  return new Response(JSON.stringify(problem), { status: problem.status, headers });
}
