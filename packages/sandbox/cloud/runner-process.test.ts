import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunnerProcess } from './runner-process.ts';
import { removeStaleRunners, runnerModule } from './runner-module.ts';

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

  it('leaves no compiled runner of older code behind once it is a day old, and keeps the current one and recent ones', () => {
    const directory = mkdtempSync(join(tmpdir(), 'kiln-runners-'));
    try {
      const [current, recent, stale, other] = ['runner-current.mjs', 'runner-recent.mjs', 'runner-stale.mjs', 'unrelated.mjs'].map((name) => join(directory, name)) as [string, string, string, string];
      for (const file of [current, recent, stale, other]) writeFileSync(file, '');
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
      for (const file of [current, stale, other]) utimesSync(file, twoDaysAgo, twoDaysAgo);
      removeStaleRunners(directory, current);
      expect([current, recent, stale, other].map((file) => existsSync(file))).toEqual([true, true, false, true]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
