import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/api.ts';

const root = new URL('../..', import.meta.url).pathname;

/** Every process below `pid`, from /proc, so the test sees exactly what `npm start` left running. */
function descendants(pid: number): number[] {
  const children: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`, { withFileTypes: true })) {
    const text = readFileSync(`/proc/${pid}/task/${task.name}/children`, 'utf8').trim();
    for (const child of text === '' ? [] : text.split(/\s+/).map(Number)) children.push(child, ...descendants(child));
  }
  return children;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

let child: ChildProcess | undefined;

afterAll(() => {
  if (child?.pid !== undefined && alive(child.pid)) child.kill('SIGKILL');
});

describe('npm start', () => {
  it('prints how to reach Kiln, serves it, and leaves nothing running after SIGTERM', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'kiln-start-'));
    child = spawn(join(root, 'node_modules/.bin/tsx'), [join(root, 'scripts/start.ts')], {
      cwd: workDir,
      env: { ...process.env, PORT: '0', KILN_ADMIN_TOKEN: 'admin-token-for-the-start-test', KILN_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

    await eventually('the start banner', () => Promise.resolve(output.includes('Ctrl-C stops everything') ? true : undefined), 90_000, 200);
    const url = /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    expect(url).toBeDefined();
    expect(output).toContain('admin token  admin-token-for-the-start-test');
    expect(output).toMatch(/dev API key\s+kiln_[A-Za-z0-9_-]{43}/);
    expect((await fetch(`${url ?? ''}/healthz`)).status).toBe(200);

    const envFile = join(workDir, '.kiln/local.env');
    expect(readFileSync(envFile, 'utf8')).toContain(`export KILN=${url ?? ''}`);

    const pid = child.pid ?? 0;
    const running = descendants(pid);
    expect(running.map(commandOf).some((command) => command.includes('DynamoDBLocal.jar'))).toBe(true);

    const exited = new Promise<number | null>((resolve) => child?.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await eventually('every child process to exit', () => Promise.resolve(running.every((descendant) => !alive(descendant)) ? true : undefined), 15_000, 100);
    expect(existsSync(envFile)).toBe(false);
  });
});
