import { randomBytes } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { newId } from '#core';
import { type LocalDynamoDb, connectLocalDynamoDb, ensureTable } from '#sandbox';
import { KilnStore } from './store.ts';
import type { InfrastructureSlots, SlotWaiter } from './infrastructure-slots.ts';

let dynamo: LocalDynamoDb | undefined;
let slots: InfrastructureSlots;
const HOUR = 60 * 60 * 1000;

// The queue is one partition for the whole table: each test gets a table of its own.
beforeEach(async () => {
  dynamo ??= connectLocalDynamoDb(inject('dynamoDbEndpoint'));
  const tableName = `kiln-slots-${randomBytes(4).toString('hex')}`;
  await ensureTable(dynamo.client, tableName);
  slots = new KilnStore(dynamo.client, tableName).infrastructureSlots;
});

afterAll(async () => {
  await dynamo?.close();
});

function waiter(tenantId: string): SlotWaiter {
  return { tenantId, operationId: newId('operation'), sealedTaskToken: `sealed-token-${randomBytes(8).toString('hex')}` };
}

/** Queues the waiters one after another (operation ids sort by time, so this is their order within a tenant). */
async function queue(...waiters: SlotWaiter[]): Promise<void> {
  for (const one of waiters) expect(await slots.wait(one, new Date())).toBe(true);
}

describe('the infrastructure slots', () => {
  it('grants at most the limit at once, in queue order, and the next only after a release', async () => {
    const tenant = newId('tenant');
    const [first, second, third] = [waiter(tenant), waiter(tenant), waiter(tenant)] as const;
    await queue(first, second, third);
    const now = new Date();
    expect(await slots.grantNext(2, now, HOUR)).toEqual(first);
    expect(await slots.grantNext(2, now, HOUR)).toEqual(second);
    expect(await slots.grantNext(2, now, HOUR)).toBeUndefined();
    expect(await slots.usage()).toMatchObject({ held: 2, waiting: 1 });
    expect(await slots.release(first.operationId)).toBe(true);
    expect(await slots.release(first.operationId)).toBe(false);
    expect(await slots.grantNext(2, now, HOUR)).toEqual(third);
    expect(await slots.grantNext(2, now, HOUR)).toBeUndefined();
  });

  it("gives a quiet tenant's one operation a turn before a busy tenant's next ones", async () => {
    const busy = newId('tenant');
    const quiet = newId('tenant');
    const burst = Array.from({ length: 5 }, () => waiter(busy));
    const single = waiter(quiet);
    await queue(...burst, single);
    const now = new Date();
    const granted = [await slots.grantNext(2, now, HOUR), await slots.grantNext(2, now, HOUR)];
    expect(granted).toContainEqual(single);
    // The busy tenant holds one; when it frees it, its next operation follows (the quiet tenant waits for nothing).
    const busyHolder = granted.find((one) => one?.tenantId === busy);
    expect(busyHolder).toEqual(burst[0]);
    await slots.release(busyHolder?.operationId ?? '');
    expect(await slots.grantNext(2, now, HOUR)).toEqual(burst[1]);
  });

  it('shares slots evenly: with three tenants waiting, none holds two while another holds none', async () => {
    const tenants = [newId('tenant'), newId('tenant'), newId('tenant')];
    // Each tenant queues four, the first tenant all of its own before the others.
    await queue(...tenants.flatMap((tenant) => Array.from({ length: 4 }, () => waiter(tenant))));
    const now = new Date();
    const granted = [];
    for (let slot = 0; slot < 3; slot++) granted.push(await slots.grantNext(3, now, HOUR));
    expect(new Set(granted.map((one) => one?.tenantId))).toEqual(new Set(tenants));
  });

  it('queues an operation once: again, it keeps its place with the newest token; once it holds a slot, not at all', async () => {
    const tenant = newId('tenant');
    const first = waiter(tenant);
    const later = waiter(tenant);
    await queue(first, later);
    const retried = { ...first, sealedTaskToken: 'sealed-token-of-the-new-run' };
    expect(await slots.wait(retried, new Date())).toBe(true);
    expect(await slots.usage()).toMatchObject({ waiting: 2 });
    expect(await slots.grantNext(1, new Date(), HOUR)).toEqual(retried);
    expect(await slots.wait(retried, new Date())).toBe(false);
    expect(await slots.usage()).toMatchObject({ held: 1, waiting: 1 });
  });

  it('undoes only the grant it names, and reclaims a slot whose holder is past its time', async () => {
    const tenant = newId('tenant');
    const [holder, next] = [waiter(tenant), waiter(tenant)] as const;
    await queue(holder, next);
    const granted = new Date();
    expect(await slots.grantNext(1, granted, HOUR)).toEqual(holder);
    expect(await slots.release(holder.operationId, 'another-token')).toBe(false);
    expect(await slots.grantNext(1, granted, HOUR)).toBeUndefined();
    // An hour later the holder never released (its workflow ended some other way): the slot is free again.
    expect(await slots.grantNext(1, new Date(granted.getTime() + HOUR + 1), HOUR)).toEqual(next);
    expect(await slots.usage()).toMatchObject({ held: 1, waiting: 0 });
  });

  it('grants exactly the limit to dispatchers racing on other instances', async () => {
    const tenants = [newId('tenant'), newId('tenant'), newId('tenant')];
    await queue(...tenants.flatMap((tenant) => [waiter(tenant), waiter(tenant), waiter(tenant)]));
    const now = new Date();
    const dispatcher = async () => {
      const granted = [];
      for (let next = await slots.grantNext(4, now, HOUR); next !== undefined; next = await slots.grantNext(4, now, HOUR)) granted.push(next);
      return granted;
    };
    const granted = (await Promise.all([dispatcher(), dispatcher(), dispatcher(), dispatcher()])).flat();
    expect(granted).toHaveLength(4);
    expect(new Set(granted.map((one) => one.operationId)).size).toBe(4);
    expect(await slots.usage()).toMatchObject({ held: 4, waiting: 5 });
  });

  it('starts no try after its deadline, and leaves the queue as it was', async () => {
    const queued = waiter(newId('tenant'));
    await queue(queued);
    expect(await slots.grantNext(1, new Date(), HOUR, Date.now() - 1)).toBeUndefined();
    expect(await slots.usage()).toMatchObject({ held: 0, waiting: 1 });
    expect(await slots.grantNext(1, new Date(), HOUR, Date.now() + HOUR)).toEqual(queued);
  });
});
