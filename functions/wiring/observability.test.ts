import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KMSClient } from '@aws-sdk/client-kms';
import { loadConfig } from './config.ts';
import { createObservability, emfMetrics, powertoolsLog, stepHandler } from './observability.ts';

/** What Powertools writes to stdout while `run` runs, one JSON object per line. */
async function written(run: () => unknown): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return lines.join('').split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
}

const LAMBDA_CONTEXT = {
  functionName: 'kiln-prod-Api',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-central-1:123456789012:function:kiln-prod-Api',
  memoryLimitInMB: '1024',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: '/aws/lambda/kiln-prod-Api',
  logStreamName: 'stream',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 1000,
} as Context;

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("Kiln's logger on Powertools", () => {
  it('writes JSON with the fields of the call and of its parents, and drops secret-looking fields', async () => {
    const log = powertoolsLog(new PowertoolsLogger({ serviceName: 'kiln', logLevel: 'INFO' }));
    const [line] = await written(() => {
      log.child({ requestId: 'req-1' }).info('issued', { clusterId: 'cls_1', kubeconfig: 'apiVersion: v1 …', nested: { apiKey: 'kiln_secret' } });
      log.debug('not at info');
    });
    expect(line).toMatchObject({ level: 'INFO', message: 'issued', service: 'kiln', requestId: 'req-1', clusterId: 'cls_1', kubeconfig: '[redacted]', nested: { apiKey: '[redacted]' } });
  });

  it("gives a step's lines the Lambda request id, the cold start, and the ids of its work with the API request id", async () => {
    const logger = new PowertoolsLogger({ serviceName: 'kiln', logLevel: 'INFO' });
    const observability = {
      invoked: (context: Context | undefined) => {
        if (context !== undefined) logger.addContext(context);
        return Promise.resolve();
      },
    };
    const handler = stepHandler({ log: powertoolsLog(logger) }, observability as never, (services, event) => {
      services.log.info('step ran', { event: typeof event });
      return Promise.resolve('done');
    });
    const [line] = await written(() => handler({ tenantId: 'ten_1', clusterId: 'cls_1', operationId: 'op_1', requestId: 'req-42', ignored: 7 }, LAMBDA_CONTEXT));
    expect(line).toMatchObject({
      message: 'step ran',
      requestId: 'req-42',
      operationId: 'op_1',
      tenantId: 'ten_1',
      clusterId: 'cls_1',
      function_request_id: LAMBDA_CONTEXT.awsRequestId,
      function_name: 'kiln-prod-Api',
      cold_start: expect.any(Boolean),
    });
    expect(line).not.toHaveProperty('ignored');
  });
});

describe("Kiln's metrics on Powertools", () => {
  it('writes them in the embedded metric format, in the Kiln namespace, on flush', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const metrics = emfMetrics(() => Promise.resolve(new PowertoolsMetrics({ namespace: 'Kiln', serviceName: 'kiln' })));
    metrics.count('Requests');
    metrics.count('RateLimited');
    metrics.milliseconds('Latency', 12.5);
    const [line] = await written(() => metrics.flush());
    expect(line).toMatchObject({ Requests: 1, RateLimited: 1, Latency: 12.5, service: 'kiln' });
    const directive = (line?._aws as { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string; Unit: string }[] }[] }).CloudWatchMetrics[0];
    expect(directive?.Namespace).toBe('Kiln');
    expect(directive?.Metrics).toEqual(
      expect.arrayContaining([
        { Name: 'Requests', Unit: 'Count' },
        { Name: 'Latency', Unit: 'Milliseconds' },
      ]),
    );
  });
});

describe('tracing', () => {
  it('in Lambda, captures the AWS SDK clients with X-Ray, also one made before the tracer was ready', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'kiln-prod-Api');
    vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs24.x');
    // Its capture of node:http would stay patched in this test worker for the files after it, whose requests have no
    // Lambda segment (X-Ray then logs "context missing" on each); this test is about the SDK clients.
    vi.stubEnv('POWERTOOLS_TRACER_CAPTURE_HTTPS_REQUESTS', 'false');
    const observability = createObservability(loadConfig({ KILN_PROVISION_STATE_MACHINE_ARN: 'a', KILN_DEPROVISION_STATE_MACHINE_ARN: 'a', KILN_UPDATE_STATE_MACHINE_ARN: 'a', KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: 'a', KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: 'a', KILN_SEALING_KEY_ID: 'k', KILN_ACCOUNT_ID: '000000000000', KILN_LOG_LEVEL: 'silent' }));
    const early = observability.traced(new KMSClient({ region: 'eu-central-1' }));
    await observability.invoked(undefined);
    const late = observability.traced(new KMSClient({ region: 'eu-central-1' }));
    for (const client of [early, late]) expect(client.middlewareStack.identify().join(' ')).toMatch(/XRay/i);
  });

  it('outside Lambda, loads no tracer and leaves the clients alone', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', undefined);
    const observability = createObservability(loadConfig({ KILN_PROVISION_STATE_MACHINE_ARN: 'a', KILN_DEPROVISION_STATE_MACHINE_ARN: 'a', KILN_UPDATE_STATE_MACHINE_ARN: 'a', KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: 'a', KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: 'a', KILN_SEALING_KEY_ID: 'k', KILN_ACCOUNT_ID: '000000000000', KILN_LOG_LEVEL: 'silent' }));
    const client = observability.traced(new KMSClient({ region: 'eu-central-1' }));
    await observability.invoked(undefined);
    expect(client.middlewareStack.identify().join(' ')).not.toMatch(/XRay/i);
  });
});
