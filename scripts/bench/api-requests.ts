// Kiln's API against a bare Hono handler (scripts/bench/bare-handler.ts), both bundled as Lambda bundles them and each
// invoked in a process of its own (scripts/bench/lambda-runner.ts), on the same DynamoDB Local and the same Step
// Functions stand-in running Kiln's provision workflow: the time to order a cluster and to read one at concurrency
// 1, and the CPU each request costs the Lambda.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startLocalDynamoDb } from '#sandbox';
import { type BenchRequest, type Instance, compiledRunner, startApiDependencies, startInstance } from '../lambda-instance.ts';
import { type BenchRow, median, ms, quantile, ratio } from './report.ts';

/** The targets: Kiln's p50 over the baseline's, per request type, and the CPU a request costs over the baseline's. */
const LATENCY_TARGET_RATIO = 1.3;
const CPU_TARGET_RATIO = 1.5;
/** DynamoDB Local's JVM writes at full speed only after 15-20 s of load; both sides warm up together for this long. */
const WARM_UP_MS = 25_000;
/** Short rounds, the two sides taking turns, so a slow stretch of the machine (or of DynamoDB Local's JVM) hits both alike. */
const ROUNDS = 40;
const REQUESTS_PER_ROUND = 10;

const REFERENCE_ORDER = join(import.meta.dirname, '../../packages/bootstrap/examples/full-order.json');

/** The bundles to compare, as `npm run bench` built them. */
export interface ApiBundles {
  api: string;
  bare: string;
}

/** The reference order, with a generated at-rest key (a key of the customer's own would be a KMS call the baseline does not make). */
async function benchOrder(): Promise<Record<string, unknown>> {
  const order = JSON.parse(await readFile(REFERENCE_ORDER, 'utf8')) as Record<string, unknown>;
  const encryption = order.encryption as { atRest: Record<string, unknown> };
  const { key: _key, ...atRest } = encryption.atRest;
  return { ...order, encryption: { ...encryption, atRest: { ...atRest, keySource: 'generated' } } };
}

interface Side {
  name: string;
  instance: Instance;
  headers: Record<string, string>;
  createMs: number[];
  getMs: number[];
  createCpu: number[];
  getCpu: number[];
  ids: string[];
  created: number;
}

export async function benchApiRequests(bundles: ApiBundles): Promise<BenchRow[]> {
  const dynamo = await startLocalDynamoDb();
  const instances: Instance[] = [];
  let dependencies: Awaited<ReturnType<typeof startApiDependencies>> | undefined;
  try {
    dependencies = await startApiDependencies(dynamo, {
      // The benchmark sends far more than a tenant's default 20 a second; the bucket is still taken from on every request.
      KILN_RATE_LIMIT_PER_SECOND: '10000',
      KILN_RATE_LIMIT_BURST: '100000',
      KILN_LOG_LEVEL: 'info',
    });
    const { environment, adminToken } = dependencies;
    const runner = await compiledRunner();
    // KILN_BENCH_PROFILE=<directory> keeps a CPU profile of each instance there (open it in Chrome's DevTools).
    const profile = process.env.KILN_BENCH_PROFILE === undefined ? {} : { nodeArguments: ['--cpu-prof', '--cpu-prof-dir', process.env.KILN_BENCH_PROFILE] };
    const [kiln, bare] = await Promise.all([startInstance(runner, bundles.api, environment, profile), startInstance(runner, bundles.bare, environment, profile)]);
    instances.push(kiln, bare);

    const tenant = await kiln.run(
      [{ method: 'POST', path: '/v1/tenants', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench', quotas: { clusters: 10_000, nodes: 1_000_000 } }) }],
      201,
      true,
    );
    if (tenant.unexpected !== undefined) throw new Error(`creating the tenant failed: ${tenant.unexpected}`);
    const { id: tenantId, apiKey } = JSON.parse(tenant.bodies?.[0] ?? '{}') as { id: string; apiKey: string };

    const order = await benchOrder();
    const side = (name: string, instance: Instance, headers: Record<string, string>): Side => ({ name, instance, headers, createMs: [], getMs: [], createCpu: [], getCpu: [], ids: [], created: 0 });
    const sides = [side('kiln', kiln, { authorization: `Bearer ${apiKey}` }), side('bare', bare, { 'x-tenant': tenantId })];
    const creates = (s: Side, count: number): BenchRequest[] =>
      Array.from({ length: count }, () => ({
        method: 'POST',
        path: '/v1/clusters',
        headers: { ...s.headers, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
        body: JSON.stringify({ ...order, name: `${s.name}-${String(s.created++)}` }),
      }));
    const gets = (s: Side, count: number): BenchRequest[] =>
      Array.from({ length: count }, (_, index) => ({ method: 'GET', path: `/v1/clusters/${s.ids[(index * 7) % s.ids.length] ?? ''}`, headers: s.headers }));
    /** One round: each side orders, then reads, in turn (the order of the sides alternates between rounds). */
    const round = async (count: number, record: boolean, first: number) => {
      for (const s of first === 0 ? sides : [...sides].reverse()) {
        const created = await s.instance.run(creates(s, count), 202, true);
        if (created.unexpected !== undefined) throw new Error(`${s.name}: ${created.unexpected}`);
        s.ids.push(...(created.bodies ?? []).map((body) => (JSON.parse(body) as { id: string }).id));
        const read = await s.instance.run(gets(s, count), 200);
        if (read.unexpected !== undefined) throw new Error(`${s.name}: ${read.unexpected}`);
        if (!record) continue;
        s.createMs.push(...created.latencies);
        s.getMs.push(...read.latencies);
        s.createCpu.push(created.cpuMicros / count);
        s.getCpu.push(read.cpuMicros / count);
      }
    };
    const warmUntil = performance.now() + WARM_UP_MS;
    for (let turn = 0; performance.now() < warmUntil; turn++) await round(REQUESTS_PER_ROUND, false, turn % 2);
    for (let turn = 0; turn < ROUNDS; turn++) await round(REQUESTS_PER_ROUND, true, turn % 2);

    const [k, b] = sides as [Side, Side];
    const latencyRow = (what: string, kilnMs: number[], bareMs: number[]): BenchRow => {
      const value = median(kilnMs) / median(bareMs);
      return {
        benchmark: `API ${what}, p50 at concurrency 1 (${String(kilnMs.length)} requests)`,
        measured: `${ms(median(kilnMs))} (p99 ${ms(quantile(kilnMs, 0.99))})`,
        baseline: `bare handler ${ms(median(bareMs))} (p99 ${ms(quantile(bareMs, 0.99))})`,
        result: ratio(value),
        target: `<= ${String(LATENCY_TARGET_RATIO)}`,
        pass: value <= LATENCY_TARGET_RATIO,
      };
    };
    const cpuRow = (what: string, kilnCpu: number[], bareCpu: number[]): BenchRow => {
      const value = median(kilnCpu) / median(bareCpu);
      return {
        benchmark: `API ${what}, Lambda CPU per request`,
        measured: ms(median(kilnCpu) / 1000),
        baseline: `bare handler ${ms(median(bareCpu) / 1000)}`,
        result: ratio(value),
        target: `<= ${String(CPU_TARGET_RATIO)}`,
        pass: value <= CPU_TARGET_RATIO,
      };
    };
    return [
      latencyRow('POST /v1/clusters', k.createMs, b.createMs),
      latencyRow('GET /v1/clusters/{id}', k.getMs, b.getMs),
      cpuRow('POST /v1/clusters', k.createCpu, b.createCpu),
      cpuRow('GET /v1/clusters/{id}', k.getCpu, b.getCpu),
    ];
  } finally {
    await Promise.all(instances.map((instance) => instance.close()));
    await dependencies?.close();
    await dynamo.close();
  }
}
