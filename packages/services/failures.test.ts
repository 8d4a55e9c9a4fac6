import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, createLogger } from '#core';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { orderCluster } from './clusters.ts';
import type { KilnServices } from './context.ts';
import { recordFailureStep } from './failures.ts';

const KILN_ACCOUNT = '000000000000';
const RAW_AWS = `User: arn:aws:sts::${KILN_ACCOUNT}:assumed-role/kiln-steps/fn is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-central-1:${KILN_ACCOUNT}:key/1234abcd`;

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** Services whose log lines are kept, and a fresh tenant's cluster whose provision is running. */
async function provisioning(): Promise<{ services: KilnServices; lines: Record<string, unknown>[]; tenantId: string; clusterId: string; operationId: string }> {
  const lines: Record<string, unknown>[] = [];
  const services: KilnServices = {
    ...api.services,
    log: createLogger('debug', {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)),
    workflows: { start: () => Promise.resolve(), status: () => Promise.resolve('RUNNING'), completeTask: () => Promise.resolve(false) },
  };
  const tenant = await api.newTenant();
  const outcome = await orderCluster(services, tenant.id, ClusterSpec.parse({ name: 'failing', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] }));
  if (outcome.kind !== 'fresh') throw new Error('expected a fresh order');
  return { services, lines, tenantId: tenant.id, clusterId: outcome.value.id, operationId: outcome.value.status.activeOperationId ?? '' };
}

describe('recording a failed workflow', () => {
  it("gives the tenant what failed, what to do and a reference, and keeps AWS's message for Kiln's log under that reference", async () => {
    const { services, lines, tenantId, clusterId, operationId } = await provisioning();
    const error = { Error: 'AccessDeniedException', Cause: JSON.stringify({ errorType: 'AccessDeniedException', errorMessage: RAW_AWS }) };
    await recordFailureStep(services, { tenantId, clusterId, operationId, requestId: 'req-failing', error });

    const operation = await services.store.getOperation(tenantId, operationId);
    const cluster = await services.store.getCluster(tenantId, clusterId);
    const events = await services.store.listClusterEvents(tenantId, clusterId, { limit: 50 });
    expect(operation?.error).toMatchObject({ code: 'provisioning_failed', requestId: 'req-failing' });
    expect(operation?.error?.detail).toMatch(/^Step plan failed: a service it depends on .* Reference: req-failing\.$/);
    expect(cluster?.status.reason).toContain('Reference: req-failing.');
    for (const text of [JSON.stringify(operation?.error), cluster?.status.reason ?? '', JSON.stringify(cluster?.status.conditions), JSON.stringify(events.items)]) {
      expect(text).not.toContain('arn:');
      expect(text).not.toContain(KILN_ACCOUNT);
      expect(text).not.toContain('not authorized');
    }
    const logged = lines.find((line) => line.message === 'operation failed');
    expect(logged).toMatchObject({ level: 'error', requestId: 'req-failing', operationId, step: 'plan', error: { name: 'AccessDeniedException', message: RAW_AWS } });
  });

  it("keeps Kiln's own message for the tenant, less the identifiers it picked up", async () => {
    const { services, tenantId, clusterId, operationId } = await provisioning();
    const message = `The infrastructure step recorded no API host for role arn:aws:iam::${KILN_ACCOUNT}:role/kiln-runner.`;
    const error = { Error: 'Kiln.Permanent', Cause: JSON.stringify({ errorType: 'Kiln.Permanent', errorMessage: message }) };
    await recordFailureStep(services, { tenantId, clusterId, operationId, error });

    const operation = await services.store.getOperation(tenantId, operationId);
    expect(operation?.error?.detail).toBe(
      `Step plan failed: The infrastructure step recorded no API host for role [internal]. The cluster is Failed and can be deleted; order it again once the cause is fixed. Reference: ${operationId}.`,
    );
  });

  it('takes what a step in a container said from its record, since its task stops with an exit code only', async () => {
    const { services, tenantId, clusterId, operationId } = await provisioning();
    const recorded = await services.store.getOperation(tenantId, operationId);
    const step = recorded?.steps.plan;
    if (step === undefined) throw new Error('expected the plan step');
    await services.store.saveStep(tenantId, operationId, 'plan', { ...step, state: 'running', error: 'Kiln could not assume the order\'s account role (AWS answered AccessDenied): check the trust policy.' });
    // What Step Functions hands the Catch for an ECS task that stopped with exit code 1.
    const stopped = { Containers: [{ ExitCode: 1, LastStatus: 'STOPPED', Name: 'runner' }], StopCode: 'EssentialContainerExited', StoppedReason: 'Essential container in task exited' };
    await recordFailureStep(services, { tenantId, clusterId, operationId, error: { Error: 'States.TaskFailed', Cause: JSON.stringify(stopped) } });

    const operation = await services.store.getOperation(tenantId, operationId);
    expect(operation?.error?.detail).toMatch(/^Step plan failed: Kiln could not assume the order's account role \(AWS answered AccessDenied\): check the trust policy\. The cluster is Failed/);
  });
});
