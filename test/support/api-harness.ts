import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { newApp } from '#api';
import { sha256 } from '#core';
import { type KilnServices, createTenant } from '#services';
import { loadConfig } from '../../functions/wiring/config.ts';
import { createServices } from '../../functions/wiring/services.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, type LocalDynamoDb, connectLocalDynamoDb, ensureTable } from '#sandbox';
import type { ApiResponse } from './api.ts';

/** Nothing listens here: a route that reaches for an AWS service it should not need fails at once. */
const UNREACHABLE = 'http://127.0.0.1:9';

export interface ApiHarness {
  services: KilnServices;
  adminToken: string;
  /** A fresh tenant for one test, with its API key. */
  newTenant(): Promise<{ id: string; apiKey: string }>;
  call<T = Record<string, unknown>>(method: string, path: string, options?: { token?: string; body?: unknown }): Promise<ApiResponse<T>>;
  /** As `call`, with the body sent exactly as given (to send what is not JSON). */
  callRaw(method: string, path: string, options?: { token?: string; body?: string; headers?: Record<string, string> }): Promise<ApiResponse>;
  close(): Promise<void>;
}

/**
 * The API app over the real store on DynamoDB Local, for the tests beside
 * each route; requests go straight to the app (no socket). Workflows, KMS and
 * the clusters are not there: routes that need them are tested end to end.
 */
export async function startApiHarness(): Promise<ApiHarness> {
  const dynamo: LocalDynamoDb = connectLocalDynamoDb(inject('dynamoDbEndpoint'));
  const tableName = `kiln-routes-${randomBytes(4).toString('hex')}`;
  await ensureTable(dynamo.client, tableName);
  const adminToken = `kiln_admin_${randomBytes(24).toString('base64url')}`;
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey });
  const services = createServices(
    loadConfig({
      KILN_TABLE_NAME: tableName,
      AWS_REGION: LOCAL_REGION,
      KILN_DYNAMODB_ENDPOINT: dynamo.endpoint,
      KILN_STEPFUNCTIONS_ENDPOINT: UNREACHABLE,
      KILN_KMS_ENDPOINT: UNREACHABLE,
      KILN_SSM_ENDPOINT: UNREACHABLE,
      KILN_STS_ENDPOINT: UNREACHABLE,
      KILN_PROVISION_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-provision',
      KILN_DEPROVISION_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-deprovision',
      KILN_UPDATE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-update',
      KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-rotate-encryption-key',
      KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:kiln-remediate-node',
      KILN_SEALING_KEY_ID: 'alias/kiln-unreachable',
      KILN_ACCOUNT_ID: '000000000000',
      KILN_ADMIN_TOKEN_SHA256: sha256(adminToken),
      KILN_LOG_LEVEL: 'silent',
    }),
  );
  const app = newApp(services);
  const callRaw = async (method: string, path: string, options: { token?: string; body?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    Object.assign(headers, options.headers);
    const response = await app.request(path, { method, headers, ...(options.body === undefined ? {} : { body: options.body }) });
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, headers: response.headers, body: body as Record<string, unknown>, text };
  };
  return {
    services,
    adminToken,
    newTenant: async () => {
      const tenant = await createTenant(services, `t-${randomBytes(4).toString('hex')}`);
      return { id: tenant.id, apiKey: tenant.apiKey };
    },
    call: (method: string, path: string, options: { token?: string; body?: unknown } = {}) =>
      // The caller names the body's type, as with the e2e client.
      callRaw(method, path, { ...(options.token === undefined ? {} : { token: options.token }), ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }) }) as Promise<ApiResponse<never>>,
    callRaw,
    close: () => dynamo.close(),
  };
}
