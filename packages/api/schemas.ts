import { z } from '@hono/zod-openapi';
import { Problem, idPattern } from '#core';

export const ClusterIdParam = z.object({
  id: z.string().regex(idPattern('cluster'), 'must be a cluster id (cls_...)').openapi({ param: { name: 'id', in: 'path' }, example: 'cls_01jd8x7t5k3m4n5p6q7r8s9t0v' }),
});

export const OperationIdParam = z.object({
  id: z.string().regex(idPattern('operation'), 'must be an operation id (op_...)').openapi({ param: { name: 'id', in: 'path' }, example: 'op_01jd8x7t5k3m4n5p6q7r8s9t0v' }),
});

export const TenantIdParam = z.object({
  id: z.string().regex(idPattern('tenant'), 'must be a tenant id (ten_...)').openapi({ param: { name: 'id', in: 'path' }, example: 'ten_01jd8x7t5k3m4n5p6q7r8s9t0v' }),
});

export const ApiKeyIdParam = z.object({
  id: z.string().regex(idPattern('apiKey'), 'must be an API key id (key_...)').openapi({ param: { name: 'id', in: 'path' }, example: 'key_01jd8x7t5k3m4n5p6q7r8s9t0v' }),
});

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ param: { name: 'limit', in: 'query' }, description: 'Items per page (1-100).' }),
  cursor: z.string().max(1024).optional().openapi({ param: { name: 'cursor', in: 'query' }, description: 'The nextCursor of the previous page.' }),
});

export const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, 'must be 1-255 visible ASCII characters')
    .optional()
    .openapi({
      param: { name: 'idempotency-key', in: 'header' },
      description:
        'Makes the request safe to retry for 24 hours: the same key with the same body returns the first response; with a different body, 422.',
    }),
});

/** Idempotency-Key plus If-Match, for requests that change an existing cluster. */
export function changeHeaders(ifMatchDescription: string) {
  return IdempotencyHeaders.extend({
    'if-match': z
      .string()
      .max(64)
      .optional()
      .openapi({ param: { name: 'if-match', in: 'header' }, description: ifMatchDescription }),
  });
}

export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z
    .object({
      items: z.array(item),
      nextCursor: z.string().optional().describe('Pass as cursor to get the next page; absent on the last page.'),
    })
    .openapi(id);
}

const problemContent = {
  'application/problem+json': {
    schema: Problem,
  },
} as const;

const PROBLEM_DESCRIPTIONS = {
  400: 'Malformed JSON or a field of the wrong shape (problem+json with errors[]).',
  401: 'Missing or unknown bearer token.',
  403: 'The token may not call this endpoint, or (quota_exceeded) the change would take the tenant past its quota.',
  404: 'No such resource for this tenant.',
  409: 'Conflicts with the current state (a name taken, an operation running).',
  412: 'If-Match does not match the current ETag.',
  415: 'The body is not application/json.',
  422: 'The order breaks a rule spanning fields, or an Idempotency-Key was reused with another body.',
} as const;

/**
 * Every answer carries the request id (errors too), the one to quote when reporting a problem. The document adds it,
 * and the RateLimit fields below, to every /v1 answer in one place (annotated() in app.ts).
 */
export const REQUEST_ID_HEADER = { 'x-request-id': { description: 'The request id (in a problem, also its requestId): quote it when reporting a problem.', required: true, schema: { type: 'string' } } } as const;

/** The RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10) every /v1 answer carries. */
export const RATE_LIMIT_HEADERS = {
  RateLimit: {
    description: 'What is left of the caller\'s request bucket: `"tenant";r=<requests left>;t=<seconds until it is full again>`.',
    required: true,
    schema: { type: 'string', example: '"tenant";r=99;t=1' },
  },
  'RateLimit-Policy': {
    description: 'The caller\'s request bucket: `"tenant";q=<requests at once>;w=<seconds to refill>`.',
    required: true,
    schema: { type: 'string', example: '"tenant";q=100;w=5' },
  },
} as const;

/** The RateLimit fields on an answer that may come before the rate limiter ran (a 500 or 503 in authentication or in the limiter). */
export const RATE_LIMIT_HEADERS_IF_ADMITTED = {
  RateLimit: { ...RATE_LIMIT_HEADERS.RateLimit, required: false, description: `${RATE_LIMIT_HEADERS.RateLimit.description} Absent when the failure came before the rate limiter.` },
  'RateLimit-Policy': { ...RATE_LIMIT_HEADERS['RateLimit-Policy'], required: false, description: `${RATE_LIMIT_HEADERS['RateLimit-Policy'].description} Absent when the failure came before the rate limiter.` },
} as const;

/** What any operation may answer besides its own problems: Kiln's own fault, or a dependency's that passes. */
const ALWAYS = {
  429: {
    description: "The caller's requests came faster than its rate limit (per tenant): retry after Retry-After seconds.",
    headers: { 'Retry-After': { description: 'Seconds until the next request is granted.', required: true, schema: { type: 'integer' } } },
    content: problemContent,
  },
  500: { description: 'Kiln could not complete the request (the problem carries the request id to quote).', content: problemContent },
  503: {
    description: 'A service Kiln depends on throttled, faulted or did not answer: retry after Retry-After seconds.',
    headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'integer' } } },
    content: problemContent,
  },
} as const;

export function problems(...statuses: (keyof typeof PROBLEM_DESCRIPTIONS)[]) {
  return {
    ...(Object.fromEntries(statuses.map((status) => [status, { description: PROBLEM_DESCRIPTIONS[status], content: problemContent }])) as Record<
      (typeof statuses)[number],
      { description: string; content: typeof problemContent }
    >),
    ...ALWAYS,
  };
}
