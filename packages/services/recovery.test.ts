import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec } from '#core';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { orderCluster } from './clusters.ts';
import type { KilnServices } from './context.ts';
import { recoverOperations } from './recovery.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** Workflows whose executions are lost until recovery starts them again (as after a crash between write and start). */
function losingStarts(): { services: KilnServices; executions: Set<string> } {
  const executions = new Set<string>();
  const services: KilnServices = {
    ...api.services,
    workflows: {
      start: (_workflow, input) => {
        executions.add(input.operationId);
        return Promise.resolve();
      },
      status: (_workflow, operationId) => Promise.resolve(executions.has(operationId) ? 'RUNNING' : 'MISSING'),
      completeTask: () => Promise.resolve(false),
    },
  };
  return { services, executions };
}

/** Orders whose executions never started (the process died after the write). */
async function ordersLost(services: KilnServices, tenantId: string, count: number): Promise<string[]> {
  const crashing: KilnServices = { ...services, workflows: { ...services.workflows, start: () => Promise.reject(new Error('process died')) } };
  const operations: string[] = [];
  for (let index = 0; index < count; index++) {
    const outcome = await orderCluster(crashing, tenantId, ClusterSpec.parse({ name: `lost-${String(index)}`, region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] }));
    if (outcome.kind !== 'fresh') throw new Error('expected a fresh order');
    operations.push(outcome.value.status.activeOperationId ?? '');
  }
  return operations;
}

describe('recovery', () => {
  it('takes turns through the active operations a page a pass, so a lost execution behind the first page is started too', async () => {
    const { services, executions } = losingStarts();
    const tenant = await api.newTenant();
    const lost = await ordersLost(services, tenant.id, 5);

    // Two a pass: the oldest two, the next two, the last one (the list ends, so the next pass starts at the oldest again).
    const passes = [];
    for (let pass = 0; pass < 3; pass++) passes.push(await recoverOperations(services, { graceMs: 0, pageSize: 2 }));
    expect(passes.map((report) => report.started)).toEqual([lost.slice(0, 2), lost.slice(2, 4), lost.slice(4)]);
    expect(await services.store.recoveryCursor()).toBeUndefined();
    expect([...executions]).toEqual(lost);

    // Round again: every one runs now, so nothing is started twice.
    const again = await recoverOperations(services, { graceMs: 0, pageSize: 2 });
    expect(again).toMatchObject({ checked: 2, started: [] });
  });

  it('starts again at the oldest when the operations after its cursor finished meanwhile', async () => {
    const { services } = losingStarts();
    const tenant = await api.newTenant();
    const lost = await ordersLost(services, tenant.id, 1);
    // A cursor past every active operation: they were newer, and finished.
    await services.store.setRecoveryCursor('9999-12-31T23:59:59.999Z');
    const report = await recoverOperations(services, { graceMs: 0, pageSize: 100 });
    expect(report.started).toContain(lost[0]);
  });

  it('sweeps every active operation in one call, without moving the cursor, as after a local restart', async () => {
    const { services, executions } = losingStarts();
    const tenant = await api.newTenant();
    const lost = await ordersLost(services, tenant.id, 5);
    await services.store.setRecoveryCursor(undefined);
    const report = await recoverOperations(services, { graceMs: 0, pageSize: 2, sweep: true });
    expect(report.started).toEqual(expect.arrayContaining(lost));
    expect(lost.every((operationId) => executions.has(operationId))).toBe(true);
    expect(await services.store.recoveryCursor()).toBeUndefined();
  });

  it('leaves an operation younger than the grace period to its own start', async () => {
    const { services } = losingStarts();
    const tenant = await api.newTenant();
    const [young] = await ordersLost(services, tenant.id, 1);
    const report = await recoverOperations(services, { sweep: true });
    expect(report.started).not.toContain(young);
  });
});
