import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiClient, eventually } from '../support/api.ts';

/**
 * Local mode (`npm start`) killed with SIGKILL while it provisions several clusters, then started again on the same
 * data directory: nothing is lost and nothing stuck. In the soak suite (`npm run test:soak`): it starts local mode
 * twice as its own process.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

interface Running {
  child: ChildProcess;
  url: string;
  adminToken: string;
  apiKey: string;
}

const dataDir = await mkdtemp(join(tmpdir(), 'kiln-restart-'));
let running: Running | undefined;

/** `npm start`'s program in its own process group (DynamoDB Local's JVM is its child), on a free port. */
async function start(): Promise<Running> {
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'scripts/start.ts')], {
    cwd: dataDir,
    detached: true,
    env: { ...process.env, PORT: '0', KILN_DATA_DIR: dataDir, KILN_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const field = (name: string) => new RegExp(`${name}\\s+(\\S+)`).exec(output)?.[1];
  await eventually('local mode to start', () => Promise.resolve(output.includes('Kiln is running') ? true : undefined), 90_000);
  return { child, url: field('API') ?? '', adminToken: field('admin token') ?? '', apiKey: field('dev API key') ?? '' };
}

function kill(target: Running, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    target.child.once('exit', () => {
      resolve();
    });
    // The whole group: the JVM dies with it, as everything does when a machine loses power.
    process.kill(-(target.child.pid ?? 0), signal);
  });
}

/** The Kiln API of `target`, as the dev tenant. */
function call<T>(target: Running, method: string, path: string, body?: unknown) {
  return apiClient(target.url)<T>(method, path, { token: target.apiKey, ...(body === undefined ? {} : { body }) });
}

afterAll(async () => {
  if (running !== undefined) await kill(running, 'SIGTERM');
  await rm(dataDir, { recursive: true, force: true });
});

describe('local mode killed in the middle of provisioning', () => {
  it('comes back on the same data directory with every cluster Ready or clearly Failed, and an earlier kubeconfig still issued', async () => {
    running = await start();
    const first = running;
    const names = ['one', 'two', 'three'];
    const ids: string[] = [];
    for (const name of names) {
      const created = await call<{ id: string }>(first, 'POST', '/v1/clusters', { name, region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
      expect(created.status).toBe(202);
      ids.push(created.body.id);
    }
    // Some way into their workflows, not done.
    await eventually('a cluster to be provisioning', async () => {
      const phases = await Promise.all(ids.map(async (id) => (await call<{ status: { phase: string } }>(first, 'GET', `/v1/clusters/${id}`)).body.status.phase));
      return phases.some((phase) => phase === 'Provisioning') ? true : undefined;
    });
    await kill(first, 'SIGKILL');

    running = await start();
    const second = running;
    // The admin token and the dev tenant's key are kept with the data.
    expect(second.adminToken).toBe(first.adminToken);
    expect(second.apiKey).toBe(first.apiKey);
    const ended = await eventually(
      'every cluster to be Ready or Failed',
      async () => {
        const clusters = await Promise.all(ids.map(async (id) => (await call<{ status: { phase: string; reason?: string } }>(second, 'GET', `/v1/clusters/${id}`)).body.status));
        return clusters.every((status) => status.phase === 'Ready' || status.phase === 'Failed') ? clusters : undefined;
      },
      180_000,
    );
    for (const status of ended) if (status.phase === 'Failed') expect(status.reason ?? '').not.toBe('');
    const listed = await call<{ items: { id: string }[] }>(second, 'GET', '/v1/clusters');
    expect(listed.body.items.map((cluster) => cluster.id).sort()).toEqual([...ids].sort());
    // What was sealed before the restart opens after it: a kubeconfig for a cluster that became Ready.
    const ready = ids.find((_, index) => ended[index]?.phase === 'Ready');
    expect(ready).toBeDefined();
    const kubeconfig = await call(second, 'GET', `/v1/clusters/${ready ?? ''}/kubeconfig`);
    expect(kubeconfig.status).toBe(200);
    expect(kubeconfig.text).toContain('client-certificate-data');
  }, 420_000);
});
