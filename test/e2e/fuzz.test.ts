import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type OpenApiDocument, type OperationObject, bodyOf, garbage, valueOf } from '../support/openapi-arbitraries.ts';
import { localSession, order } from '../support/local-session.ts';

/**
 * Property-based fuzzing of every operation in the OpenAPI document, against local mode: requests a client that
 * read the document would send, and ones with something wrong. `npm test` sends a short run; `npm run test:soak`
 * (KILN_SOAK=1) at least 2,000 requests.
 */
const RUNS = process.env.KILN_SOAK === '1' ? 2500 : 150;
/** What "no hang" means: every answer within this. */
const ANSWER_WITHIN_MS = 15_000;

// The fuzzer sends as fast as it can: its tenant's rate limit is not what it checks (the tests beside the app do).
process.env.KILN_RATE_LIMIT_PER_SECOND = '10000';
process.env.KILN_RATE_LIMIT_BURST = '100000';
const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0, webhookDeliverySeconds: 0 });

interface Operation {
  method: string;
  path: string;
  spec: OperationObject;
}

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

let document: OpenApiDocument;
let operations: Operation[];
let key: string;
let ids: string[];
/** A second tenant's key: it fuzzes with the first tenant's ids. */
let stranger: string;

beforeAll(async () => {
  const { api } = session;
  document = (await api<OpenApiDocument>('GET', '/openapi.json')).body;
  operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, spec]) => ({ method: method.toUpperCase(), path, spec })));
  // A tenant with room for one small cluster, so valid orders are mostly refused by quota rather than built.
  const tenant = await api<{ apiKey: string }>('POST', '/v1/tenants', { token: session.stack.adminToken, body: { name: 'fuzz', quotas: { clusters: 1, nodes: 5 } } });
  key = tenant.body.apiKey;
  const cluster = await api<{ id: string; status: { activeOperationId: string } }>('POST', '/v1/clusters', { token: key, body: { ...order('fuzzed'), nodePools: [{ name: 'default', size: 1 }] } });
  const endpoint = await api<{ id: string }>('POST', '/v1/webhook-endpoints', { token: key, body: { url: 'https://203.0.113.10/hooks' } });
  const apiKey = await api<{ id: string }>('POST', '/v1/api-keys', { token: key, body: {} });
  ids = [cluster.body.id, cluster.body.status.activeOperationId, endpoint.body.id, apiKey.body.id];
  stranger = (await api<{ apiKey: string }>('POST', '/v1/tenants', { token: session.stack.adminToken, body: { name: 'stranger', quotas: { clusters: 1, nodes: 5 } } })).body.apiKey;
}, 120_000);

function requestOf(operation: Operation, as: () => string = () => key): fc.Arbitrary<Sent> {
  const parameters = operation.spec.parameters ?? [];
  const pathValue = fc.oneof(fc.constantFrom(...ids), valueOf({ type: 'string', pattern: '^[a-z]{2,3}_[0-9a-z]{26}$' }, document), fc.string({ maxLength: 30 }));
  const pathParams = fc.record(Object.fromEntries(parameters.filter((parameter) => parameter.in === 'path').map((parameter) => [parameter.name, pathValue])));
  const queryParams = fc.record(
    Object.fromEntries(parameters.filter((parameter) => parameter.in === 'query').map((parameter) => [parameter.name, fc.oneof(valueOf(parameter.schema, document), garbage).map((value) => (typeof value === 'string' ? value : JSON.stringify(value)))])),
    { requiredKeys: [] },
  );
  const headers = fc.record(
    {
      'idempotency-key': fc.oneof(fc.uuid(), fc.string({ maxLength: 300 })),
      'if-match': fc.oneof(fc.constantFrom('*', '"1"', '"2"', 'W/"1"'), fc.string({ maxLength: 70 })),
      'if-none-match': fc.constantFrom('*', '"1"', 'nonsense'),
      'content-type': fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', 'application/merge-patch+json'),
    },
    { requiredKeys: [] },
  );
  const token = fc.oneof({ weight: 8, arbitrary: fc.constant('tenant') }, { weight: 1, arbitrary: fc.constant('admin') }, { weight: 1, arbitrary: fc.constantFrom('none', 'kiln_forged', 'Basic abc') });
  const schema = operation.spec.requestBody?.content?.['application/json']?.schema;
  const body = schema === undefined ? fc.constant(undefined) : fc.oneof({ weight: 9, arbitrary: bodyOf(schema, document).map((value) => JSON.stringify(value)) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) });
  return fc.record({ pathParams, queryParams, headers, token, body }).map(({ pathParams: values, queryParams: query, headers: extra, token: who, body: text }) => {
    const path = operation.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(typeof values[name] === 'string' ? values[name] : ''));
    const search = new URLSearchParams(query as Record<string, string>).toString();
    const authorization = who === 'tenant' ? `Bearer ${as()}` : who === 'admin' ? `Bearer ${session.stack.adminToken}` : who === 'none' ? undefined : who;
    return {
      method: operation.method,
      path: search === '' ? path : `${path}?${search}`,
      headers: { ...(text === undefined ? {} : { 'content-type': 'application/json' }), ...extra, ...(authorization === undefined ? {} : { authorization }) },
      ...(text === undefined ? {} : { body: text }),
    };
  });
}

describe('every operation of the OpenAPI document, fuzzed', () => {
  it(`answers ${String(RUNS)} generated requests with no 5xx, a problem document for every error, no stack trace and no hang`, async () => {
    const statuses = new Map<number, number>();
    const request = fc.constantFrom(...operations).chain(requestOf);
    await fc.assert(
      fc.asyncProperty(request, async (sent) => {
        const response = await fetch(`${session.stack.url}${sent.path}`, {
          method: sent.method,
          headers: sent.headers,
          ...(sent.body === undefined ? {} : { body: sent.body }),
          signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
        });
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const where = `${sent.method} ${sent.path} -> ${String(response.status)}: ${text.slice(0, 300)}`;
        expect(response.status, where).toBeLessThan(500);
        if (response.status >= 400) {
          expect(response.headers.get('content-type'), where).toBe('application/problem+json');
          const problem = JSON.parse(text) as { status?: number; type?: string; title?: string };
          expect(problem.status, where).toBe(response.status);
          expect(typeof problem.type === 'string' && typeof problem.title === 'string', where).toBe(true);
        }
        expect(text, where).not.toMatch(/\n\s+at [\w.<>]+ \(|node_modules|\/work\/|\.ts:\d+/);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    const counts = [...statuses.entries()].sort(([a], [b]) => a - b).map(([status, count]) => `${String(status)}: ${String(count)}`);
    console.log(`fuzzed ${String(RUNS)} requests over ${String(operations.length)} operations; answers by status: ${counts.join(', ')}`);
    expect([...statuses.values()].reduce((sum, count) => sum + count, 0)).toBe(RUNS);
  }, 600_000);
});

describe('tenant isolation, fuzzed', () => {
  /** What an answer says, without what differs between any two requests (its request id) or what the caller sent. */
  async function answerTo(sent: Sent, sentIds: readonly string[]): Promise<{ status: number; shown: string }> {
    const response = await fetch(`${session.stack.url}${sent.path}`, { method: sent.method, headers: sent.headers, ...(sent.body === undefined ? {} : { body: sent.body }), signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
    let shown = await response.text();
    try {
      const { requestId: _differs, ...rest } = JSON.parse(shown) as Record<string, unknown>;
      shown = JSON.stringify(rest);
    } catch {
      // not JSON: compared as text
    }
    for (const id of sentIds) shown = shown.replaceAll(id, '<id>');
    return { status: response.status, shown };
  }

  it("answers another tenant's ids exactly as ids that never existed, whatever else the request holds", async () => {
    const request = fc.constantFrom(...operations.filter((operation) => operation.path.includes('{'))).chain((operation) => requestOf(operation, () => stranger));
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(request, async (sent) => {
        const foreign = ids.filter((id) => sent.path.includes(id));
        if (sent.headers.authorization !== `Bearer ${stranger}` || foreign.length === 0) return;
        // The same request with ids of the same kinds that no tenant has (and its own Idempotency-Key, if any).
        const missing = foreign.map((id) => `${id.slice(0, id.indexOf('_') + 1)}${'0'.repeat(26)}`);
        // A valid Idempotency-Key gets a twin of its own (one key never names two requests); an invalid one stays as it is.
        const idempotencyKey = sent.headers['idempotency-key'];
        const twinKey: Record<string, string> = idempotencyKey !== undefined && /^[\x21-\x7e]{1,250}$/.test(idempotencyKey) ? { 'idempotency-key': `${idempotencyKey}-twin` } : {};
        const twin: Sent = {
          ...sent,
          path: foreign.reduce((path, id, index) => path.replaceAll(id, missing[index] ?? ''), sent.path),
          headers: { ...sent.headers, ...twinKey },
        };
        const [theirs, nobodys] = [await answerTo(sent, foreign), await answerTo(twin, missing)];
        const where = `${sent.method} ${sent.path}`;
        expect(theirs.status, where).toBeLessThan(500);
        expect(theirs, where).toEqual(nobodys);
        compared += 1;
      }),
      { numRuns: Math.ceil(RUNS / 3), endOnFailure: true },
    );
    console.log(`compared ${String(compared)} requests with another tenant's ids against ids that never existed`);
    expect(compared).toBeGreaterThan(0);
  }, 600_000);
});
