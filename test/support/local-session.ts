import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, expect, inject } from 'vitest';
import { type LocalStack, type LocalStackOptions, type SandboxCluster, startLocalStack } from '#sandbox';
import type { components } from '../../openapi/kiln.ts';
import { type ApiCall, apiClient, eventually } from './api.ts';
import { expectNothingOfKilns } from './tenant-facing.ts';

/** A cluster and an operation as the API answers them: the types openapi-typescript generates from the document. */
export type ClusterBody = components['schemas']['Cluster'];
export type OperationBody = components['schemas']['Operation'];

/** The smallest order: everything else takes Kiln's defaults. */
/** A machine of a cluster as the sandbox's chaos controls list it. */
export interface SandboxMachine {
  instanceId: string;
  nodeName?: string;
  state: string;
  autoScalingGroup: string;
  instanceType: string;
  zone: string;
}

export const order = (name: string) => ({ name, region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }] });

/** Every event of a tenant, page by page, held to what a tenant may read. */
async function expectEventsOfTenant(stack: LocalStack, tenantId: string): Promise<void> {
  const read = (after?: string) => stack.services.store.listTenantEvents(tenantId, { ...(after === undefined ? {} : { after }), before: 'evt_~', types: [], limit: 500 });
  for (let page = await read(); ; ) {
    expectNothingOfKilns(page.items, stack.accountId, `the events of ${tenantId}`);
    const after = page.items.at(-1)?.id;
    if (!page.more || after === undefined) return;
    page = await read(after);
  }
}

/**
 * One local stack for a test file, started before its tests and stopped
 * after them, with what the tests do through it: tenants through the admin
 * API, waiting for a phase, and each cluster's sandbox Kubernetes API.
 */
export function localSession(options: LocalStackOptions) {
  let running: { stack: LocalStack; api: ApiCall } | undefined;
  let tenantSeq = 0;
  const tenantIds: string[] = [];
  const current = () => {
    if (running === undefined) throw new Error('the local stack is not running');
    return running;
  };

  beforeAll(async () => {
    const stack = await startLocalStack({ dynamoDbEndpoint: inject('dynamoDbEndpoint'), ...options });
    // Every operation, cluster and event any test of the file reads is held to what a tenant may read.
    running = {
      stack,
      api: apiClient(stack.url, (response, request) => {
        expectNothingOfKilns(response.body, stack.accountId, request);
      }),
    };
  });
  // Faults belong to the test that injected them, even when it fails before using them all.
  afterEach(() => {
    const { stack } = current();
    stack.faults.clear();
    stack.machines.clearCommandFaults();
    stack.machines.clearLearnerFaults();
    stack.kms.clearFaults();
  });
  afterAll(async () => {
    // And every event of every tenant the file made, whether a test read it or not (the store, so none is still settling).
    const stack = running?.stack;
    if (stack !== undefined) for (const tenantId of tenantIds) await expectEventsOfTenant(stack, tenantId);
    await running?.stack.stop();
  });

  const session = {
    get stack(): LocalStack {
      return current().stack;
    },
    get api(): ApiCall {
      return current().api;
    },
    /** Each test gets a fresh tenant through the admin API, as a new customer would. */
    newTenant: async (): Promise<string> => {
      tenantSeq += 1;
      const created = await session.api<{ id: string; apiKey: string }>('POST', '/v1/tenants', { token: session.stack.adminToken, body: { name: `tenant-${tenantSeq}` } });
      expect(created.status).toBe(201);
      tenantIds.push(created.body.id);
      return created.body.apiKey;
    },
    /** Until GET answers 404: a cluster whose deletion finished is gone from the API (its events and operations stay). */
    waitForDeletion: (key: string, id: string): Promise<true> =>
      eventually(`cluster ${id} to be deleted`, async () => {
        const response = await session.api<ClusterBody>('GET', `/v1/clusters/${id}`, { token: key });
        if (response.status === 404) return true;
        if (response.body.status.phase === 'Failed') throw new Error(`cluster failed: ${response.body.status.reason ?? ''}`);
        return undefined;
      }),
    waitForPhase: async (key: string, id: string, phase: string): Promise<ClusterBody> =>
      eventually(`cluster ${id} to be ${phase}`, async () => {
        const response = await session.api<ClusterBody>('GET', `/v1/clusters/${id}`, { token: key });
        if (response.body.status.phase === 'Failed' && phase !== 'Failed') throw new Error(`cluster failed: ${response.body.status.reason ?? ''}`);
        return response.body.status.phase === phase ? response.body : undefined;
        // A minute: two e2e files provision side by side on a 2-core machine (a failure ends the wait at once).
      }, 60_000),
    /** Every machine of a cluster, terminated ones included, through the sandbox's admin API. */
    machinesOf: async (clusterId: string): Promise<SandboxMachine[]> =>
      (await session.api<{ items: SandboxMachine[] }>('GET', `/v1/sandbox/clusters/${clusterId}/machines`, { token: session.stack.adminToken })).body.items,
    /** The sandbox Kubernetes API of a cluster, and a CoreV1 client on it with the sandbox's admin kubeconfig. */
    sandboxOf: (clusterId: string): { sandbox: SandboxCluster; core: CoreV1Api } => {
      const sandbox = session.stack.clusters.get(clusterId);
      if (sandbox === undefined) throw new Error(`no sandbox cluster for ${clusterId}`);
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromString(sandbox.kubeconfig());
      return { sandbox, core: kubeConfig.makeApiClient(CoreV1Api) };
    },
  };
  return session;
}
