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
  } else {
    log.error('unhandled error', { requestId, path: c.req.path, error });
    problem = problemFor('internal', 'Kiln could not complete the request. Quote the request id when you report it.', [], c.req.path);
  }
  if (requestId !== undefined) problem.requestId = requestId;
  // A fresh Response drops the headers middleware set on the context, so the request id goes on explicitly.
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE, ...(requestId === undefined ? {} : { 'x-request-id': requestId }) };
  if (problem.status === 401) headers['www-authenticate'] = 'Bearer realm="kiln"';
  return new Response(JSON.stringify(problem), { status: problem.status, headers });
}
