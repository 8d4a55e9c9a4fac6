import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { RunnerProcess } from './runner-process.ts';
import { runnerModule } from './runner-module.ts';

const runners: RunnerProcess[] = [];
afterAll(() => {
  for (const runner of runners) runner.kill();
});

describe('a sandbox Pulumi runner', () => {
  it('runs below the priority of the process that plays AWS, so runs never starve DynamoDB Local or the steps', () => {
    // The priority is set as the child is forked; waiting for a niced runner to load Pulumi beside busy test workers
    // took 18 s.
    const runner = new RunnerProcess();
    runners.push(runner);
    expect(runner.pid).toBeDefined();
    expect(getPriority(runner.pid)).toBeGreaterThanOrEqual(getPriority() + 10);
  });

  it('is forked from the runner compiled to JavaScript beside the dependencies, not from TypeScript through a loader', () => {
    const module = runnerModule();
    expect(module).toMatch(/\/node_modules\/\.cache\/kiln-sandbox\/runner-[0-9a-f]{16}\.mjs$/);
    expect(readFileSync(module, 'utf8')).toContain('@pulumi/pulumi');
    expect(runnerModule()).toBe(module);
  });
});
