import { setTimeout as delay } from 'node:timers/promises';
import { DescribeExecutionCommand, type DescribeExecutionCommandOutput, SFNClient } from '@aws-sdk/client-sfn';

/** Helpers for this folder's tests: talk to the service only through the real SDK. */

export const REGION = 'us-east-1';
export const ACCOUNT_ID = '123456789012';

export function lambdaArn(name: string): string {
  return `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${name}`;
}

export function sfnClient(endpoint: string): SFNClient {
  return new SFNClient({ endpoint, region: REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
}

/** Polls DescribeExecution until the execution has left RUNNING, failing after `timeoutMs`. */
export async function waitForFinish(client: SFNClient, executionArn: string, timeoutMs = 10_000): Promise<DescribeExecutionCommandOutput> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const execution = await client.send(new DescribeExecutionCommand({ executionArn }));
    if (execution.status !== 'RUNNING') return execution;
    if (Date.now() > deadline) throw new Error(`Execution ${executionArn} is still RUNNING after ${timeoutMs} ms`);
    await delay(5);
  }
}

/** Resolves when `condition` holds, failing after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}`);
    await delay(5);
  }
}

/** An error the way a Kiln step handler throws it: Step Functions matches on its name. */
export function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
