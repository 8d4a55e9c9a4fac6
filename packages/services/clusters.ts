import {
  type Cluster,
  type ClusterSpec,
  ConflictError,
  KilnError,
  NotFoundError,
  type Operation,
  type OperationType,
  type PlannedMachine,
  WORKFLOW_STEPS,
  type WorkflowInput,
  assertOrderRules,
  clusterEvent,
  newId,
  phaseChange,
  workflowOf,
  workflowStepOrder,
  countedNodes,
} from '#core';
import { withinQuota } from './limits.ts';
import { tenantExternalId } from './tenants.ts';
import { type ClusterRecord, type OperationRecord, type Page, type StoredResponse, VersionConflictError, type WriteOutcome } from '#store';
import type { KilnServices } from './context.ts';
import type { WorkflowName } from './workflows.ts';
import { clusterView, operationView } from './views.ts';

/**
 * Where a cluster's at-rest data key is kept, sealed under the cluster's own
 * KMS key, and the KMS encryption-context purpose it is sealed under.
 */
export const AT_REST_KEY = 'atRestKey';

/**
 * A user-provided at-rest key arrives before the cluster has a KMS key, so it
 * waits here, sealed under Kiln's key, until the bootstrap step re-seals it
 * under the cluster's key as AT_REST_KEY and drops this copy.
 */
export const PENDING_USER_AT_REST_KEY = 'pendingUserAtRestKey';

/** An Idempotency-Key, hashed, with the hash of the request it first came with. */
export interface IdempotentRequest {
  keyHash: string;
  requestHash: string;
  /** Builds the HTTP response to store with the write (with the cluster's new version), so replays answer byte for byte the same. */
  respond: (cluster: Cluster, operation: Operation, version: number) => StoredResponse;
}

/** What a change came to: the cluster and its version (for the ETag), or the stored answer to replay. */
export type Outcome<T> = { kind: 'fresh'; value: T; version: number } | { kind: 'replay'; response: StoredResponse };

/**
 * One change at a time: an operation, or a node remediation, running on the
 * cluster makes any other change a 409 that names it.
 */
export function assertIdle(cluster: ClusterRecord, what: string): void {
  const running = cluster.status.activeOperationId ?? cluster.status.remediations?.[0];
  if (running !== undefined) throw new ConflictError(`Operation ${running} is still running on this cluster; ${what} once that operation finishes.`);
}

/**
 * A new operation with the steps it will take: every run's, and any of the optional ones (`also`) it takes this time,
 * each with the machines it plans to replace or remove (`planned`, by step).
 */
export function newOperation(
  tenantId: string,
  clusterId: string,
  type: OperationType,
  now: string,
  also: readonly string[] = [],
  planned: Readonly<Record<string, PlannedMachine[]>> = {},
  /** The API request starting it (KilnServices.requestId), if one does. */
  requestId?: string,
): OperationRecord {
  const taken = new Set([...WORKFLOW_STEPS[type], ...also]);
  const steps = Object.fromEntries(
    workflowStepOrder(type)
      .filter((name) => taken.has(name))
      .map((name) => {
        const machines = planned[name];
        return [name, { state: 'pending' as const, attempts: 0, ...(machines === undefined ? {} : { planned: machines }) }];
      }),
  );
  return { tenantId, id: newId('operation'), type, clusterId, state: 'pending', steps, ...(requestId === undefined ? {} : { requestId }), createdAt: now, updatedAt: now, version: 1 };
}

/** Looks up an earlier request with the same key: replay it, or refuse a different request under the same key. */
export async function earlierResponse(services: KilnServices, tenantId: string, request: IdempotentRequest | undefined): Promise<StoredResponse | undefined> {
  if (request === undefined) return undefined;
  const record = await services.store.getIdempotencyRecord(tenantId, request.keyHash);
  if (record === undefined) return undefined;
  if (record.requestHash !== request.requestHash) {
    throw new KilnError('idempotency_key_reused', 'This Idempotency-Key was already used with a different request.');
  }
  return record.response;
}

export function settle(outcome: WriteOutcome, request: IdempotentRequest | undefined, version: number, fresh: () => Promise<Cluster>): Promise<Outcome<Cluster>> {
  if (outcome.kind === 'replay') {
    if (request !== undefined && outcome.record.requestHash !== request.requestHash) {
      throw new KilnError('idempotency_key_reused', 'This Idempotency-Key was already used with a different request.');
    }
    return Promise.resolve({ kind: 'replay', response: outcome.record.response });
  }
  return fresh().then((value) => ({ kind: 'fresh', value, version }));
}

/** What a workflow starts with: the operation, and for an update which of its branches it takes (the steps it lists). */
export function workflowInputOf(operation: OperationRecord): WorkflowInput {
  // Every step's Parameters name the request id, so a scheduled operation (no request) passes its own id.
  const input = { tenantId: operation.tenantId, clusterId: operation.clusterId, operationId: operation.id, requestId: operation.requestId ?? operation.id };
  if (workflowOf(operation.type) !== 'update') return input;
  const lists = (step: string) => operation.steps[step] !== undefined;
  return {
    ...input,
    ...(lists('infrastructure') ? { infrastructure: true } : {}),
    ...(lists('drain-nodes') ? { removesMachines: true } : {}),
    ...(lists('join-token') ? { joinsMachines: true } : {}),
    ...(lists('await-nodes') ? { awaitsNodes: true } : {}),
    ...(lists('roll-machines') ? { rollsMachines: true } : {}),
    ...(lists('roll-control-plane') ? { rollsControlPlane: true } : {}),
    ...(lists('pod-security-defaults') ? { changesPodSecurityDefaults: true } : {}),
  };
}

export async function launch(services: KilnServices, workflow: WorkflowName, operation: OperationRecord): Promise<void> {
  try {
    await services.workflows.start(workflow, workflowInputOf(operation));
  } catch (error) {
    // The order is recorded; recovery starts the execution under the same name later.
    services.log.warn('workflow start deferred to recovery', {
      tenantId: operation.tenantId,
      operationId: operation.id,
      error: error instanceof Error ? error.name : 'unknown',
    });
  }
}

export async function orderCluster(
  services: KilnServices,
  tenantId: string,
  spec: ClusterSpec,
  request?: IdempotentRequest,
): Promise<Outcome<Cluster>> {
  // A retry is found by the write itself (its Idempotency-Key record is part of the transaction), so a first order
  // makes no read before it (but for the tenant's external ID, when it names an account).
  assertOrderRules(spec, { kilnAccountId: services.kilnAccountId, ...(services.kmsPluginImage === undefined ? {} : { kmsPluginImage: services.kmsPluginImage }) });
  // Every AssumeRole into the tenant's account sends the tenant's external ID, which only Kiln issues; the cluster records it.
  const account = spec.account === undefined ? undefined : { roleArn: spec.account.roleArn, externalId: await tenantExternalId(services, tenantId) };
  const now = new Date().toISOString();
  const clusterId = newId('cluster');
  const operation = newOperation(tenantId, clusterId, 'provision', now, [], {}, services.requestId);

  const { key, ...atRest } = spec.encryption.atRest;
  // Sealed as its base64 text under the name (and encryption-context purpose) the bootstrap step reads.
  const sealed =
    key === undefined
      ? undefined
      : { [PENDING_USER_AT_REST_KEY]: await services.sealer.seal(Buffer.from(key), { tenantId, clusterId, purpose: PENDING_USER_AT_REST_KEY }) };

  const cluster: ClusterRecord = {
    tenantId,
    id: clusterId,
    name: spec.name,
    spec: { ...spec, encryption: { ...spec.encryption, atRest }, ...(account === undefined ? {} : { account }) },
    status: {
      phase: 'Pending',
      conditions: [
        { type: 'Ready', status: 'False', reason: 'Provisioning', message: 'The cluster is being provisioned.', lastTransitionTime: now },
      ],
      activeOperationId: operation.id,
    },
    createdAt: now,
    updatedAt: now,
    version: 1,
    ...(sealed === undefined ? {} : { sealed }),
  };
  const view = clusterView(cluster);
  const claim = request === undefined ? undefined : { ...request, response: request.respond(view, operationView(operation), 1) };

  const outcome = await withinQuota(services, tenantId, { clusters: 1, nodes: countedNodes(cluster.spec) }, () =>
    services.store.createCluster(cluster, operation, claim, [
      clusterEvent('cluster.created', clusterId, { name: cluster.name, region: spec.region, operationId: operation.id }),
    ]),
  );
  return settle(outcome, request, 1, async () => {
    await launch(services, 'provision', operation);
    return view;
  });
}

/** A live cluster: one whose deletion finished answers 404, as one that never existed (a provider drops it from state). */
export async function findCluster(services: KilnServices, tenantId: string, clusterId: string): Promise<ClusterRecord> {
  const record = await findClusterRecord(services, tenantId, clusterId);
  if (record.status.phase === 'Deleted') throw new NotFoundError('cluster', clusterId);
  return record;
}

/** A cluster, deleted or not: its events and operations stay readable after its deletion (for 7 days). */
export async function findClusterRecord(services: KilnServices, tenantId: string, clusterId: string): Promise<ClusterRecord> {
  const record = await services.store.getCluster(tenantId, clusterId);
  if (record === undefined) throw new NotFoundError('cluster', clusterId);
  return record;
}

const STALE_IF_MATCH = 'The cluster changed since the ETag in If-Match was issued.';

/**
 * Runs a change that read the cluster: a race lost to another change is a 409 (retry) for a client that named no
 * version, and a 412 for one whose If-Match named the version it had read.
 */
export async function ifMatching<T>(ifMatchVersion: number | undefined, change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (error) {
    if (ifMatchVersion !== undefined && error instanceof VersionConflictError) throw new KilnError('precondition_failed', STALE_IF_MATCH);
    throw error;
  }
}

/** The cluster a change is about, if it still has the version an If-Match named (else 412). */
export async function findClusterMatching(services: KilnServices, tenantId: string, clusterId: string, ifMatchVersion: number | undefined): Promise<ClusterRecord> {
  const cluster = await findCluster(services, tenantId, clusterId);
  if (ifMatchVersion !== undefined && ifMatchVersion !== cluster.version) {
    throw new KilnError('precondition_failed', STALE_IF_MATCH);
  }
  return cluster;
}

export async function listClusters(services: KilnServices, tenantId: string, page: { limit: number; cursor?: string; name?: string }): Promise<Page<Cluster>> {
  if (page.name !== undefined) {
    // Names are unique in a tenant: the one cluster that has it, or none (a data source by name reads one item).
    const clusterId = await services.store.findClusterIdByName(tenantId, page.name);
    const record = clusterId === undefined ? undefined : await services.store.getCluster(tenantId, clusterId);
    return { items: record === undefined || record.status.phase === 'Deleted' ? [] : [clusterView(record)] };
  }
  const result = await services.store.listClusters(tenantId, page);
  return { items: result.items.map(clusterView), ...(result.nextCursor === undefined ? {} : { nextCursor: result.nextCursor }) };
}

/**
 * Starts deprovisioning. Deleting a cluster that is already going away answers
 * with its current state; one mutating operation runs per cluster at a time.
 */
export async function deleteCluster(
  services: KilnServices,
  tenantId: string,
  clusterId: string,
  options: { ifMatchVersion?: number; request?: IdempotentRequest } = {},
): Promise<Outcome<Cluster>> {
  const earlier = await earlierResponse(services, tenantId, options.request);
  if (earlier !== undefined) return { kind: 'replay', response: earlier };

  return ifMatching(options.ifMatchVersion, async () => {
    const cluster = await findClusterMatching(services, tenantId, clusterId, options.ifMatchVersion);
    if (cluster.status.phase === 'Deleting') {
      return { kind: 'fresh', value: clusterView(cluster), version: cluster.version };
    }
    assertIdle(cluster, 'delete it');

    const now = new Date().toISOString();
    const operation = newOperation(tenantId, clusterId, 'deprovision', now, [], {}, services.requestId);
    const deleting: ClusterRecord = {
      ...cluster,
      status: {
        ...cluster.status,
        phase: 'Deleting',
        activeOperationId: operation.id,
        conditions: [
          { type: 'Ready', status: 'False', reason: 'Deleting', message: 'The cluster is being deprovisioned.', lastTransitionTime: now },
        ],
      },
    };
    const view = clusterView({ ...deleting, version: cluster.version + 1, updatedAt: now });
    const claim =
      options.request === undefined ? undefined : { ...options.request, response: options.request.respond(view, operationView(operation), cluster.version + 1) };
    const outcome = await services.store.beginOperation(deleting, cluster.version, operation, claim, phaseChange(clusterId, cluster.status.phase, 'Deleting'));
    return settle(outcome, options.request, cluster.version + 1, async () => {
      await launch(services, 'deprovision', operation);
      return view;
    });
  });
}
