// A burst of orders against Kiln in local mode: many tenants order at once, some of their requests are retried with
// the same Idempotency-Key while the first is in flight, and every cluster must come up Ready. Reports what a
// customer sees: server errors, duplicates, the time from order to Ready, and how a quiet tenant's single order fares
// while the others burst.
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { DEFAULT_INFRASTRUCTURE_CONCURRENCY } from '#core';
import { type LocalStack, startLocalStack } from '#sandbox';
import { type BenchRow, median, quantile } from './report.ts';

/** `orders/tenants`; the issue's burst by default. `KILN_BENCH_BURST=100/10 npm run bench -- burst` for a short run. */
const DEFAULT_BURST = '1000/100';
/** One in this many orders is sent twice at once, the second as a client's retry with the same Idempotency-Key. */
const RETRY_EVERY = 10;
/** Requests in flight at once, as a fleet of clients would send them. */
const IN_FLIGHT = 64;
const POLL_MS = 5_000;
const DEADLINE_MS = 3 * 3_600_000;
/** How often the infrastructure queue is sampled: are slots left free while operations wait? */
const SLOT_SAMPLE_MS = 2_000;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

interface Order {
  tenant: number;
  name: string;
  key: string;
  /** The cluster ids the order's answers named (one, or the same twice for a retried order). */
  ids: string[];
}

interface Counts {
  statuses: Map<number, number>;
  /** 429s a client waited out (Retry-After) and sent again. */
  waited: number;
  /** Requests sent again after the connection failed. */
  resent: number;
}

function scale(): { orders: number; tenants: number } {
  const [orders = Number.NaN, tenants = Number.NaN] = (process.env.KILN_BENCH_BURST ?? DEFAULT_BURST).split('/').map(Number);
  if (!Number.isInteger(orders) || !Number.isInteger(tenants) || orders < 1 || tenants < 1) throw new Error('KILN_BENCH_BURST must be <orders>/<tenants>, such as 1000/100');
  return { orders, tenants };
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function pooled<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await work(item);
      }
    }),
  );
}

export async function benchOrderBurst(): Promise<BenchRow[]> {
  const { orders: orderCount, tenants: tenantCount } = scale();
  const stack = await startLocalStack({ port: 0, logLevel: 'error', healthPollSeconds: 0, webhookDeliverySeconds: 0 });
  const counts: Counts = { statuses: new Map(), waited: 0, resent: 0 };
  try {
    /** A client as a well-behaved integration writes one: it waits out a 429 or a 409 in flight for as long as Retry-After says. */
    const call = async (method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
      for (let attempt = 1; ; attempt++) {
        const response = await fetch(`${stack.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        }).catch((error: unknown) => {
          // A connection the server closed as the client reused it: sent again (an order carries its Idempotency-Key).
          if (attempt >= 5) throw error;
          counts.resent += 1;
          return undefined;
        });
        if (response === undefined) {
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
          continue;
        }
        const answer = { status: response.status, body: (await response.json()) as Record<string, unknown> };
        counts.statuses.set(answer.status, (counts.statuses.get(answer.status) ?? 0) + 1);
        const wait = Number(response.headers.get('retry-after'));
        const inFlight = answer.status === 409 && answer.body.code === 'idempotency_request_in_flight';
        if ((answer.status !== 429 && !inFlight) || !Number.isFinite(wait)) return answer;
        counts.waited += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, wait) * 1000));
      }
    };
    const newTenant = async (name: string): Promise<string> => {
      const created = await call('POST', '/v1/tenants', stack.adminToken, { name });
      if (created.status !== 201) throw new Error(`creating tenant ${name}: ${String(created.status)} ${JSON.stringify(created.body)}`);
      return String(created.body.apiKey);
    };
    const order = (name: string) => ({ name, region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
    /** Orders one cluster and waits until it is Ready: milliseconds from the order to its Ready condition. */
    const orderAndWait = async (apiKey: string, name: string): Promise<number> => {
      const created = await call('POST', '/v1/clusters', apiKey, order(name), { 'idempotency-key': randomUUID() });
      if (created.status !== 202) throw new Error(`ordering ${name}: ${String(created.status)} ${JSON.stringify(created.body)}`);
      for (;;) {
        const read = await call('GET', `/v1/clusters/${String(created.body.id)}`, apiKey);
        const ready = readyAfter(read.body);
        if (ready !== undefined) return ready;
        if ((read.body.status as { phase?: string } | undefined)?.phase === 'Failed') throw new Error(`${name} failed: ${JSON.stringify(read.body.status)}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    };

    // A quiet tenant's single order on an idle Kiln: what the burst is compared with.
    const quiet = await newTenant('quiet');
    const idleMs = await orderAndWait(quiet, 'alone');
    const keys: string[] = [];
    for (let tenant = 0; tenant < tenantCount; tenant++) keys.push(await newTenant(`burst-${String(tenant)}`));
    for (const status of counts.statuses.keys()) counts.statuses.set(status, 0);

    const orders: Order[] = Array.from({ length: orderCount }, (_, index) => ({ tenant: index % tenantCount, name: `burst-${String(index)}`, key: randomUUID(), ids: [] }));
    const started = performance.now();
    const sends = orders.flatMap((item, index) => (index % RETRY_EVERY === 0 ? [item, item] : [item]));
    let acceptedMs = 0;
    const burst = pooled(sends, IN_FLIGHT, async (item) => {
      const answer = await call('POST', '/v1/clusters', keys[item.tenant] ?? '', order(item.name), { 'idempotency-key': item.key });
      if (answer.status === 202) item.ids.push(String(answer.body.id));
    }).then(() => {
      acceptedMs = performance.now() - started;
    });
    // The quiet tenant orders once more while the others burst.
    const during = orderAndWait(quiet, 'during-burst');
    const slots = sampleSlots(stack);
    await burst;

    // Every tenant's clusters, until each is Ready or Failed (or the deadline passes), while the quiet order goes on.
    const settled = new Map<string, { phase: string; readyMs?: number; tenant: number; name: string }>();
    const deadline = Date.now() + DEADLINE_MS;
    let cpu = process.cpuUsage();
    let sampledAt = performance.now();
    while (settled.size < orderCount && Date.now() < deadline) {
      for (const [tenant, apiKey] of keys.entries()) {
        let cursor: string | undefined;
        do {
          const page = await call('GET', `/v1/clusters?limit=100${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, apiKey);
          for (const cluster of (page.body.items as Record<string, unknown>[] | undefined) ?? []) {
            const phase = String((cluster.status as { phase?: string } | undefined)?.phase);
            if (phase !== 'Ready' && phase !== 'Failed') continue;
            const readyMs = readyAfter(cluster);
            // Why, as soon as it is seen: a run stopped before the end still says what failed.
            if (phase === 'Failed' && !settled.has(String(cluster.id))) process.stderr.write(`burst: ${String(cluster.name)} (${String(cluster.id)}) Failed: ${String((cluster.status as { reason?: string }).reason)}\n`);
            settled.set(String(cluster.id), { phase, tenant, name: String(cluster.name), ...(readyMs === undefined ? {} : { readyMs }) });
          }
          cursor = typeof page.body.nextCursor === 'string' ? page.body.nextCursor : undefined;
        } while (cursor !== undefined);
      }
      const failed = [...settled.values()].filter((cluster) => cluster.phase === 'Failed').length;
      // Progress on stderr, so a run stopped early still says how far it got.
      // What held the run back: the queue (slots held of the limit, operations waiting), the machine's load, and this process's CPU (the API, the workflows and the sandbox, but not its Pulumi runners).
      const used = process.cpuUsage(cpu);
      const busy = ((used.user + used.system) / 1000 / (performance.now() - sampledAt)) * 100;
      [cpu, sampledAt] = [process.cpuUsage(), performance.now()];
      const queue = slots.last === undefined ? '' : `; slots ${String(slots.last.held)} held, ${String(slots.last.waiting)} waiting`;
      process.stderr.write(
        `burst: ${String(settled.size - failed)} Ready, ${String(failed)} Failed of ${String(orderCount)} after ${((performance.now() - started) / 1000).toFixed(0)} s${queue}; load ${(loadavg()[0] ?? 0).toFixed(1)}, process CPU ${busy.toFixed(0)}%\n`,
      );
      if (settled.size < orderCount) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const allMs = performance.now() - started;
    const duringMs = await during;
    slots.stop();
    reportFailures(stack, settled);

    const serverErrors = [...counts.statuses].filter(([status]) => status >= 500).reduce((sum, [, count]) => sum + count, 0);
    const accepted = orders.filter((item) => item.ids.length > 0);
    // A duplicate: an Idempotency-Key whose answers named two clusters, or a tenant holding two clusters of one name.
    const splitKeys = orders.filter((item) => new Set(item.ids).size > 1).length;
    const names = [...settled.values()].map((cluster) => `${String(cluster.tenant)}/${cluster.name}`);
    const duplicates = splitKeys + names.length - new Set(names).size;
    const ready = [...settled.values()].filter((cluster) => cluster.phase === 'Ready');
    const readyTimes = ready.flatMap((cluster) => (cluster.readyMs === undefined ? [] : [cluster.readyMs]));
    const seconds = (value: number) => `${(value / 1000).toFixed(1)} s`;
    const statusList = [...counts.statuses].filter(([, count]) => count > 0).sort(([a], [b]) => a - b).map(([status, count]) => `${String(status)}: ${String(count)}`).join(', ');
    const benchmark = `burst of ${String(orderCount)} orders from ${String(tenantCount)} tenants`;
    return [
      { benchmark, measured: `${String(serverErrors)} answers 5xx (${statusList}; ${String(counts.waited)} waited out, ${String(counts.resent)} resent after a connection failed)`, baseline: '-', result: String(serverErrors), target: '= 0', pass: serverErrors === 0 },
      { benchmark, measured: `${String(accepted.length)} accepted in ${seconds(acceptedMs)}, ${String(sends.length - orderCount)} sent twice`, baseline: '-', result: String(duplicates), target: '0 duplicates', pass: duplicates === 0 && accepted.length === orderCount },
      { benchmark, measured: `${String(ready.length)} of ${String(orderCount)} Ready after ${seconds(allMs)}`, baseline: '-', result: String(ready.length), target: `= ${String(orderCount)}`, pass: ready.length === orderCount },
      {
        benchmark: `${benchmark}, order to Ready`,
        measured: `median ${seconds(median(readyTimes))}, p90 ${seconds(quantile(readyTimes, 0.9))}, max ${seconds(Math.max(0, ...readyTimes))}`,
        baseline: `one order on an idle Kiln ${seconds(idleMs)}`,
        result: (median(readyTimes) / idleMs).toFixed(2),
        target: 'info',
        pass: undefined,
      },
      {
        benchmark: `${benchmark}, infrastructure slots`,
        measured: `${String(slots.samples)} samples every ${String(SLOT_SAMPLE_MS / 1000)} s: ${String(slots.idleWhileWaiting)} had a slot free while operations waited`,
        baseline: '-',
        result: slots.samples === 0 ? '-' : `${((slots.idleWhileWaiting / slots.samples) * 100).toFixed(0)}%`,
        target: 'info',
        pass: undefined,
      },
      { benchmark: `${benchmark}, a quiet tenant's one order meanwhile`, measured: seconds(duringMs), baseline: `idle ${seconds(idleMs)}`, result: (duringMs / idleMs).toFixed(2), target: 'info', pass: undefined },
    ];
  } finally {
    await stack.stop();
  }
}

interface SlotSampler {
  /** The latest sample: slots held, operations waiting. */
  last?: { held: number; waiting: number };
  samples: number;
  /** Samples with a slot free while operations waited. */
  idleWhileWaiting: number;
  stop(): void;
}

/**
 * Samples the infrastructure queue until stopped: how often a slot stood free while operations waited for one (each
 * release and recovery pass dispatches; a dispatch that lost every race leaves its slot to the next).
 */
function sampleSlots(stack: LocalStack): SlotSampler {
  const limit = stack.services.infrastructureConcurrency ?? DEFAULT_INFRASTRUCTURE_CONCURRENCY;
  const sampler: SlotSampler = {
    samples: 0,
    idleWhileWaiting: 0,
    stop: () => {
      clearInterval(timer);
    },
  };
  let sampling = false;
  const timer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    stack.services.store.infrastructureSlots
      .usage()
      .then(({ held, waiting }) => {
        sampler.last = { held, waiting };
        sampler.samples += 1;
        if (held < limit && waiting > 0) sampler.idleWhileWaiting += 1;
      })
      .catch(() => undefined)
      .finally(() => {
        sampling = false;
      });
  }, SLOT_SAMPLE_MS);
  return sampler;
}

/**
 * Why each Failed cluster failed, on stderr: its workflow executions' error and the last states they went through
 * (a timeout names the state that ran out of time only there).
 */
function reportFailures(stack: LocalStack, settled: Map<string, { phase: string }>): void {
  const failed = new Set([...settled].filter(([, cluster]) => cluster.phase === 'Failed').map(([id]) => id));
  if (failed.size === 0) return;
  const time = (date: Date) => date.toISOString().slice(11, 23);
  for (const execution of stack.executions()) {
    const clusterId = (JSON.parse(execution.input) as { clusterId?: string }).clusterId;
    if (clusterId === undefined || !failed.has(clusterId)) continue;
    const states = execution.history
      .filter((entry) => entry.stateName !== undefined || entry.error !== undefined)
      .slice(-12)
      .map((entry) => `${time(entry.timestamp)} ${entry.type}${entry.stateName === undefined ? '' : ` ${entry.stateName}`}${entry.error === undefined ? '' : ` (${entry.error})`}`);
    process.stderr.write(`burst: cluster ${clusterId} execution ${execution.name} ${execution.status}${execution.error === undefined ? '' : ` ${execution.error}`}; its last states:\n  ${states.join('\n  ')}\n`);
  }
}

/** Milliseconds from a cluster's creation to its Ready condition turning True; undefined while it is not Ready. */
function readyAfter(cluster: Record<string, unknown>): number | undefined {
  const status = cluster.status as { phase?: string; conditions?: { type: string; status: string; lastTransitionTime: string }[] } | undefined;
  if (status?.phase !== 'Ready') return undefined;
  const ready = status.conditions?.find((condition) => condition.type === 'Ready' && condition.status === 'True');
  return ready === undefined ? undefined : Date.parse(ready.lastTransitionTime) - Date.parse(String(cluster.createdAt));
}
