import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type LocalStack, startLocalStack } from '#sandbox';

/**
 * `npm start`: Kiln in local mode. Everything runs on this machine and stops
 * with Ctrl-C or SIGTERM, DynamoDB Local's JVM included.
 */
const port = Number(process.env.PORT ?? 8787);
const dataDir = process.env.KILN_DATA_DIR === undefined || process.env.KILN_DATA_DIR === '' ? undefined : resolve(process.env.KILN_DATA_DIR);

let stack: LocalStack | undefined = undefined;
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping Kiln…\n`);
  await stack?.stop();
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void shutdown(signal);
  });
}

const started = Date.now();
mkdirSync('.kiln', { recursive: true });
stack = await startLocalStack({
  port,
  envFile: '.kiln/local.env',
  ...(dataDir === undefined ? {} : { dataDir }),
  ...(process.env.KILN_ADMIN_TOKEN === undefined || process.env.KILN_ADMIN_TOKEN === '' ? {} : { adminToken: process.env.KILN_ADMIN_TOKEN }),
  logLevel: process.env.KILN_LOG_LEVEL === 'debug' || process.env.KILN_LOG_LEVEL === 'warn' || process.env.KILN_LOG_LEVEL === 'error' ? process.env.KILN_LOG_LEVEL : 'info',
});

process.stdout.write(
  [
    '',
    `Kiln is running in local mode (ready in ${((Date.now() - started) / 1000).toFixed(1)} s).`,
    `  API          ${stack.url}`,
    `  API docs     ${stack.url}/docs`,
    `  admin token  ${stack.adminToken}`,
    `  tenant dev   ${stack.devTenant.id}`,
    `  dev API key  ${stack.devTenant.apiKey}`,
    `  data         ${dataDir ?? 'in memory (set KILN_DATA_DIR to keep it)'}`,
    '',
    'In another shell: `source .kiln/local.env`, then follow the README walk-through.',
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'),
);
