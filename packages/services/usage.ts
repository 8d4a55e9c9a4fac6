import { type ClusterSpec, type UsagePeriod, type UsageReport, type UsageRow, tenantWideEvent } from '#core';
import { type MachineUsageRecord, type UsageHourRecord, VersionConflictError } from '#store';
import type { KilnServices } from './context.ts';

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;
/**
 * An hour is reported this long after it ended: a health poll that started before the hour ended has written what
 * it saw by then, so a reported hour never changes.
 */
export const USAGE_SETTLE_MINUTES = 15;
/** Hours one run reports per tenant at most (a reporter that was down catches up over a few runs). */
const HOURS_PER_RUN = 48;

/** A machine as the cloud shows it: what metering needs of the health poller's view. */
export interface MeteredMachine {
  instanceId: string;
  group: { role: 'control-plane' } | { role: 'worker'; pool: string };
  state: string;
  instanceType?: string;
}

/** Machines EC2 bills for: on, or coming up. */
const METERED_STATES: ReadonlySet<string> = new Set(['pending', 'running']);

const startOfHour = (time: number) => Math.floor(time / HOUR_MS) * HOUR_MS;

/** The instance type a machine has, as EC2 says or else as the cluster's spec orders for its group. */
function instanceTypeOf(machine: MeteredMachine, spec: Pick<ClusterSpec, 'controlPlane' | 'nodePools'>): string {
  if (machine.instanceType !== undefined) return machine.instanceType;
  const { group } = machine;
  if (group.role === 'control-plane') return spec.controlPlane.instanceType;
  return spec.nodePools.find((pool) => pool.name === group.pool)?.instanceType ?? 'unknown';
}

/**
 * Brings the cluster's recorded usage in line with the machines the cloud shows now: a machine that runs and has no
 * open usage starts one at `now` (it joined, or replaced another); open usage whose machine no longer runs ends at
 * `now` (removed, replaced, terminated). Run by every health poll, so joins, removals and replacements are counted
 * whichever workflow (or Auto Scaling itself) made them, to the poll.
 */
export async function meterCluster(
  services: KilnServices,
  cluster: { tenantId: string; id: string; spec: Pick<ClusterSpec, 'controlPlane' | 'nodePools'> },
  machines: readonly MeteredMachine[],
  now: Date,
): Promise<{ opened: number; closed: number }> {
  const { version, open } = await services.store.getMeter(cluster.tenantId, cluster.id);
  const running = machines.filter((machine) => METERED_STATES.has(machine.state));
  const openIds = new Set(open.map((usage) => usage.instanceId));
  const runningIds = new Set(running.map((machine) => machine.instanceId));
  const at = now.toISOString();
  const opened = running
    .filter((machine) => !openIds.has(machine.instanceId))
    .map(
      (machine): MachineUsageRecord => ({
        tenantId: cluster.tenantId,
        clusterId: cluster.id,
        instanceId: machine.instanceId,
        role: machine.group.role,
        ...(machine.group.role === 'worker' ? { pool: machine.group.pool } : {}),
        instanceType: instanceTypeOf(machine, cluster.spec),
        startedAt: at,
      }),
    );
  const closed = open.filter((usage) => !runningIds.has(usage.instanceId)).map((usage) => ({ ...usage, endedAt: at }));
  if (opened.length + closed.length > 0) {
    await services.store.saveMachineUsage(cluster.tenantId, cluster.id, version, { open: [...open.filter((usage) => runningIds.has(usage.instanceId)), ...opened], closed });
  }
  return { opened: opened.length, closed: closed.length };
}

/** Ends the usage of every machine of a deleted cluster (its infrastructure is destroyed). */
export async function endClusterUsage(services: KilnServices, tenantId: string, clusterId: string, now: Date): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    const { version, open } = await services.store.getMeter(tenantId, clusterId);
    if (open.length === 0) return;
    try {
      await services.store.saveMachineUsage(tenantId, clusterId, version, { open: [], closed: open.map((usage) => ({ ...usage, endedAt: now.toISOString() })) });
      return;
    } catch (error) {
      if (!(error instanceof VersionConflictError) || attempt >= 3) throw error;
    }
  }
}

const rowKey = (row: Pick<UsageRow, 'clusterId' | 'role' | 'pool' | 'instanceType'>) => `${row.clusterId}\u0000${row.role}\u0000${row.pool ?? ''}\u0000${row.instanceType}`;

/** Rows with their seconds summed per cluster, role, pool and instance type, in a stable order. */
function rowsOf(seconds: ReadonlyMap<string, Omit<UsageRow, 'nodeHours'>>): UsageRow[] {
  return [...seconds.entries()]
    .filter(([, row]) => row.nodeSeconds > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, row]) => ({ ...row, nodeHours: Math.round((row.nodeSeconds / 3600) * 1e6) / 1e6 }));
}

function add(into: Map<string, Omit<UsageRow, 'nodeHours'>>, row: Omit<UsageRow, 'nodeHours'>): void {
  const key = rowKey(row);
  const existing = into.get(key);
  into.set(key, { ...row, nodeSeconds: (existing?.nodeSeconds ?? 0) + row.nodeSeconds });
}

/** The node-seconds of one hour, from the machines' usage: each machine's time inside the hour, to the second. */
export function usageOfHour(usage: readonly MachineUsageRecord[], hourStart: number): UsagePeriod {
  const hourEnd = hourStart + HOUR_MS;
  const seconds = new Map<string, Omit<UsageRow, 'nodeHours'>>();
  for (const record of usage) {
    const from = Math.max(Date.parse(record.startedAt), hourStart);
    const to = Math.min(record.endedAt === undefined ? hourEnd : Date.parse(record.endedAt), hourEnd);
    if (to <= from) continue;
    const { clusterId, role, pool, instanceType } = record;
    add(seconds, { clusterId, role, ...(pool === undefined ? {} : { pool }), instanceType, nodeSeconds: Math.round((to - from) / 1000) });
  }
  const items = rowsOf(seconds);
  return { from: new Date(hourStart).toISOString(), to: new Date(hourEnd).toISOString(), items, nodeSeconds: items.reduce((sum, row) => sum + row.nodeSeconds, 0) };
}

/**
 * The hourly usage report: for every metered tenant, each hour that ended at least USAGE_SETTLE_MINUTES ago and is
 * not reported yet is computed from the machines' usage and written once, with its `usage.reported` event, in one
 * transaction that moves the tenant's ledger past it. Hours in which nothing ran get no event (and no record).
 */
export async function reportUsage(services: KilnServices, now = new Date()): Promise<{ tenants: number; hours: number; events: number }> {
  const settledThrough = startOfHour(now.getTime() - USAGE_SETTLE_MINUTES * 60_000);
  const report = { tenants: 0, hours: 0, events: 0 };
  for (const tenantId of await services.store.listMeteredTenants()) {
    const found = await services.store.getUsageLedger(tenantId);
    if (found === undefined || Date.parse(found.reportedThrough) >= settledThrough) continue;
    let ledger = found;
    report.tenants += 1;
    const usage = await services.store.listMachineUsage(tenantId);
    for (let done = 0; done < HOURS_PER_RUN && Date.parse(ledger.reportedThrough) < settledThrough; done += 1) {
      const from = Date.parse(ledger.reportedThrough);
      const period = usageOfHour(usage, from);
      // Nothing ran then, nor later until the next usage starts: skip the idle hours in one step.
      const nextStart = Math.min(...usage.filter((record) => record.endedAt === undefined || Date.parse(record.endedAt) > from).map((record) => startOfHour(Date.parse(record.startedAt))));
      const to = period.items.length > 0 ? from + HOUR_MS : Math.min(settledThrough, Math.max(from + HOUR_MS, nextStart));
      const event = period.items.length === 0 ? undefined : tenantWideEvent('usage.reported', period, now);
      const hour: UsageHourRecord = { tenantId, ...period, to: new Date(to).toISOString(), ...(event === undefined ? {} : { eventId: event.id }) };
      try {
        await services.store.saveUsageHour(ledger, hour, event === undefined ? [] : [event]);
      } catch (error) {
        // Another reporter wrote this hour first.
        if (error instanceof VersionConflictError) break;
        throw error;
      }
      report.hours += 1;
      if (event !== undefined) report.events += 1;
      ledger = { ...ledger, reportedThrough: hour.to, version: ledger.version + 1 };
    }
  }
  return report;
}

/**
 * The tenant's usage from its reported hours: per hour, or per UTC day (the sum of its hours), every reported period
 * in [from, to). The figures are the ones the usage.reported events carried for the same hours.
 */
export async function getUsage(services: KilnServices, tenantId: string, query: { from: Date; to: Date; granularity: 'hour' | 'day' }): Promise<UsageReport> {
  const ledger = await services.store.getUsageLedger(tenantId);
  const reportedThrough = ledger === undefined ? undefined : Date.parse(ledger.reportedThrough);
  const hours = await services.store.listUsageHours(tenantId, query.from.toISOString(), query.to.toISOString());
  const step = query.granularity === 'hour' ? HOUR_MS : DAY_MS;
  const periods: UsagePeriod[] = [];
  for (let start = query.from.getTime(); start < query.to.getTime() && reportedThrough !== undefined && start + step <= reportedThrough; start += step) {
    const seconds = new Map<string, Omit<UsageRow, 'nodeHours'>>();
    for (const hour of hours) {
      const at = Date.parse(hour.from);
      if (at >= start && at < start + step) for (const row of hour.items) add(seconds, row);
    }
    const items = rowsOf(seconds);
    periods.push({ from: new Date(start).toISOString(), to: new Date(start + step).toISOString(), items, nodeSeconds: items.reduce((sum, row) => sum + row.nodeSeconds, 0) });
  }
  return {
    from: query.from.toISOString(),
    to: query.to.toISOString(),
    granularity: query.granularity,
    reportedThrough: ledger?.reportedThrough ?? null,
    periods,
  };
}
