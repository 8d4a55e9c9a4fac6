import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { describe, expect, it } from 'vitest';
import { createLogger } from '#core';
import { problemResponse } from './problem.ts';

/** An app whose one route fails with `error`, answered as the API answers every error. */
async function answerTo(error: unknown) {
  const app = new Hono();
  app.use('*', requestId({ headerName: 'x-request-id' }));
  app.onError((caught, c) => problemResponse(c, caught, createLogger('silent', { service: 'test' })));
  app.get('/fails', () => {
    throw error;
  });
  const response = await app.request('/fails');
  return { response, body: (await response.json()) as { status: number; code: string; detail: string; requestId?: string } };
}

const awsError = (name: string, message: string, fields: Record<string, unknown>) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 }, ...fields });

describe('a failure of a service Kiln depends on', () => {
  it('is a 503 with Retry-After when it passes (throttling, a server fault, no connection), naming it but not its message', async () => {
    for (const error of [
      awsError('ThrottlingException', 'Rate exceeded for key arn:aws:kms:eu-central-1:1:key/secret', { $fault: 'client', $retryable: { throttling: true } }),
      awsError('KMSInternalException', 'internal', { $fault: 'server' }),
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:443'), { code: 'ECONNREFUSED' }),
    ]) {
      const { response, body } = await answerTo(error);
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(response.headers.get('x-request-id')).toBe(body.requestId);
      expect(body).toMatchObject({ status: 503, code: 'unavailable', detail: expect.stringMatching(/did not answer in time \((ThrottlingException|KMSInternalException|ECONNREFUSED)\): retry/) });
      expect(JSON.stringify(body)).not.toMatch(/arn:aws|10\.0\.0\.5|Rate exceeded/);
    }
  });

  it('is a 500 that names the refusal when it does not pass, and anything else a 500 that says nothing', async () => {
    const refused = await answerTo(awsError('InvalidCiphertextException', 'ciphertext for key arn:aws:kms:x', { $fault: 'client' }));
    expect(refused.response.status).toBe(500);
    expect(refused.body.detail).toContain('refused the request (InvalidCiphertextException)');
    expect(refused.body.detail).not.toContain('arn:aws');
    const unknown = await answerTo(new Error('secret internals'));
    expect(unknown.response.status).toBe(500);
    expect(unknown.response.headers.get('retry-after')).toBeNull();
    expect(JSON.stringify(unknown.body)).not.toContain('secret internals');
  });
});
