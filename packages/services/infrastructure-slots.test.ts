import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { newId } from '#core';
import { KmsSealer, type SecretSealer } from '#encryption';
import { type KmsService, LOCAL_CREDENTIALS, LOCAL_REGION, startKmsService } from '#sandbox';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import type { KilnServices } from './context.ts';
import { awaitInfrastructureSlot, dispatchInfrastructureSlots, releaseInfrastructureSlot, slotWaiter } from './infrastructure-slots.ts';
import { recoverOperations } from './recovery.ts';
import type { Workflows } from './workflows.ts';

let api: ApiHarness;
let kms: KmsService;
let kmsClient: KMSClient;
/** Seals with a key of the KMS stand-in: the harness's own KMS endpoint is unreachable. */
let sealer: SecretSealer;
beforeAll(async () => {
  api = await startApiHarness();
  kms = await startKmsService();
  kmsClient = new KMSClient({ endpoint: kms.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const key = await kmsClient.send(new CreateKeyCommand({}));
  sealer = new KmsSealer(() => Promise.resolve(kmsClient), key.KeyMetadata?.KeyId ?? '');
});
afterAll(async () => {
  kmsClient.destroy();
  await kms.close();
  await api.close();
});

/** A harness's services (the shared one unless given) with `limit` slots, and workflows whose waiting tasks `completeTask` answers. */
function withSlots(limit: number, completeTask: Workflows['completeTask'], base: KilnServices = api.services): KilnServices {
  return { ...base, sealer, infrastructureConcurrency: limit, workflows: { ...base.workflows, completeTask } };
}

describe('the infrastructure slot steps', () => {
  it('send waiting workflows their tokens while slots are free, pass a grant nobody takes on, and hand a released slot to the next', async () => {
    const sent: string[] = [];
    // A workflow stopped while it waited no longer takes its token.
    const services = withSlots(2, (taskToken) => {
      if (taskToken.startsWith('stopped')) return Promise.resolve(false);
      sent.push(taskToken);
      return Promise.resolve(true);
    });
    const [busy, other] = [newId('tenant'), newId('tenant')];
    const order = (tenantId: string, taskToken: string) => ({ tenantId, clusterId: newId('cluster'), operationId: newId('operation'), requestId: 'req', taskToken });
    const first = order(busy, 'token-first');
    await awaitInfrastructureSlot(services, first);
    await awaitInfrastructureSlot(services, order(other, 'stopped-token'));
    await awaitInfrastructureSlot(services, order(busy, 'token-second'));
    await awaitInfrastructureSlot(services, order(busy, 'token-third'));
    // Two slots: the first and the second go on; the stopped workflow's grant went to the second; the third waits.
    expect(sent).toEqual(['token-first', 'token-second']);
    expect(await services.store.infrastructureSlots.usage()).toMatchObject({ held: 2, waiting: 1 });

    await releaseInfrastructureSlot(services, { ...first, taskToken: undefined });
    expect(sent).toEqual(['token-first', 'token-second', 'token-third']);
    expect(await services.store.infrastructureSlots.usage()).toMatchObject({ held: 2, waiting: 0 });

    // A new execution of an operation that holds a slot (its first execution was lost) goes on with that slot.
    const [holding] = await heldOperations(services);
    await awaitInfrastructureSlot(services, { ...order(busy, 'token-of-the-new-execution'), operationId: holding });
    expect(sent.at(-1)).toBe('token-of-the-new-execution');
    // One that stopped waiting before it got a slot leaves the queue, and takes no slot later.
    const waiting = order(other, 'token-never-sent');
    await awaitInfrastructureSlot(services, waiting);
    await releaseInfrastructureSlot(services, { ...waiting, taskToken: undefined });
    const usage = await services.store.infrastructureSlots.usage();
    expect(usage).toMatchObject({ held: 2, waiting: 0 });
    // A tenant with nothing held or waiting leaves the fair order.
    expect(usage.tenants.map((tenant) => tenant.tenantId)).toEqual([busy]);
    await expect(awaitInfrastructureSlot(services, { tenantId: busy })).rejects.toThrow(/operationId/);
  });
});

describe('recovery', () => {
  it('hands out a free slot an operation waits for, should every grant for it have lost its race', async () => {
    const sent: string[] = [];
    // One more than the slots the test above left held.
    const services = withSlots(3, (taskToken) => {
      sent.push(taskToken);
      return Promise.resolve(true);
    });
    // Queued, and no grant made for it (as when every grant lost its race).
    await services.store.infrastructureSlots.wait(await slotWaiter(services, { tenantId: newId('tenant'), operationId: newId('operation'), taskToken: 'token-left-waiting' }), new Date());
    expect(await recoverOperations(services, { graceMs: 0 })).toMatchObject({ slotsGranted: 1 });
    expect(sent).toEqual(['token-left-waiting']);
  });
});

describe('one dispatch', () => {
  it('grants at most as many slots as there are, however fast others come free meanwhile', async () => {
    const sent: string[] = [];
    const waiters = Array.from({ length: 6 }, (_, index) => ({ tenantId: newId('tenant'), operationId: newId('operation'), taskToken: `token-${String(index)}` }));
    // One more than the tests above left held. Each run ends the moment it starts, so a slot is always free again.
    const services = withSlots(4, async (taskToken) => {
      sent.push(taskToken);
      const waiter = waiters.find((candidate) => candidate.taskToken === taskToken);
      if (waiter !== undefined) await api.services.store.infrastructureSlots.release(waiter.operationId);
      return true;
    });
    for (const waiter of waiters) await services.store.infrastructureSlots.wait(await slotWaiter(services, waiter), new Date());
    expect(await dispatchInfrastructureSlots(services)).toBe(4);
    expect(sent).toHaveLength(4);
  });
});

describe('the dispatch a slot step does for others', () => {
  it('never fails the step: a grant whose token cannot be sent is given back, and a spent time budget starts no grant', async () => {
    const own = await startApiHarness();
    try {
      let stepFunctionsDown = true;
      const sent: string[] = [];
      const services = withSlots(
        1,
        (taskToken) => {
          if (stepFunctionsDown) return Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
          sent.push(taskToken);
          return Promise.resolve(true);
        },
        own.services,
      );
      const order = (taskToken: string) => ({ tenantId: newId('tenant'), clusterId: newId('cluster'), operationId: newId('operation'), requestId: 'req', taskToken });
      const usage = () => services.store.infrastructureSlots.usage();

      // The step queues its operation and succeeds; the grant it made but could not send is undone.
      const queued = vi.spyOn(services.store.infrastructureSlots, 'wait');
      const first = order('token-first');
      await awaitInfrastructureSlot(services, first);
      expect(await usage()).toMatchObject({ held: 0, waiting: 1 });
      // The queue is given the token sealed, never as it is.
      expect(JSON.stringify(queued.mock.calls)).not.toContain('token-first');
      queued.mockRestore();
      // Recovery's pass, which dispatches and nothing else, says it could not.
      await expect(dispatchInfrastructureSlots(services)).rejects.toThrow('Rate exceeded');
      expect(await usage()).toMatchObject({ held: 0, waiting: 1 });

      stepFunctionsDown = false;
      expect(await dispatchInfrastructureSlots(services, new Date(), 0)).toBe(0);
      expect(sent).toEqual([]);
      expect(await dispatchInfrastructureSlots(services)).toBe(1);
      expect(sent).toEqual(['token-first']);

      // A release while Step Functions is down frees the slot all the same, and the next waiter keeps its place.
      stepFunctionsDown = true;
      await awaitInfrastructureSlot(services, order('token-second'));
      await releaseInfrastructureSlot(services, { ...first, taskToken: undefined });
      expect(await usage()).toMatchObject({ held: 0, waiting: 1 });
      stepFunctionsDown = false;
      expect(await dispatchInfrastructureSlots(services)).toBe(1);
      expect(sent).toEqual(['token-first', 'token-second']);
    } finally {
      await own.close();
    }
  });
});

/** The operations holding a slot now. */
async function heldOperations(services: KilnServices): Promise<string[]> {
  const held = await services.store.infrastructureSlots.holders();
  return held.map((holder) => holder.operationId);
}

describe('a grant whose token KMS cannot unseal', () => {
  it('is given back, and its waiter keeps its place until KMS answers again', async () => {
    const own = await startApiHarness();
    try {
      let kmsDown = true;
      const sent: string[] = [];
      const services: KilnServices = {
        ...withSlots(
          1,
          (taskToken) => {
            sent.push(taskToken);
            return Promise.resolve(true);
          },
          own.services,
        ),
        sealer: {
          seal: (plaintext, context) => sealer.seal(plaintext, context),
          unseal: (sealed, context) => (kmsDown ? Promise.reject(Object.assign(new Error('KMS is unavailable'), { name: 'KMSInternalException' })) : sealer.unseal(sealed, context)),
        },
      };
      await awaitInfrastructureSlot(services, { tenantId: newId('tenant'), clusterId: newId('cluster'), operationId: newId('operation'), requestId: 'req', taskToken: 'token-kms-down' });
      await expect(dispatchInfrastructureSlots(services)).rejects.toThrow('KMS is unavailable');
      expect(await services.store.infrastructureSlots.usage()).toMatchObject({ held: 0, waiting: 1 });
      kmsDown = false;
      expect(await dispatchInfrastructureSlots(services)).toBe(1);
      expect(sent).toEqual(['token-kms-down']);
    } finally {
      await own.close();
    }
  });
});
