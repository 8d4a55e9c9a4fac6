import { getPriority } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { RunnerProcess } from './runner-process.ts';

const runners: RunnerProcess[] = [];
afterAll(() => {
  for (const runner of runners) runner.kill();
});

describe('a sandbox Pulumi runner', () => {
  it('runs below the priority of the process that plays AWS, so runs never starve DynamoDB Local or the steps', async () => {
    const runner = new RunnerProcess();
    runners.push(runner);
    await runner.ready;
    expect(runner.pid).toBeDefined();
    expect(getPriority(runner.pid)).toBeGreaterThanOrEqual(getPriority() + 10);
  });
});
