import { z } from 'zod';
import { ApiKeyScope, NodeObservation, ClusterSpec, ClusterStatus, OPERATION_STATES, OPERATION_TYPES, OperationStep, Problem, RemediationTarget, Tenant, UsageRow } from '#core';

/**
 * What the store keeps, as zod codecs built from the core schemas: every item
 * read back is parsed, so a malformed item fails loudly instead of leaking.
 */
export const ClusterRecord = z.object({
  tenantId: z.string(),
  id: z.string(),
  name: z.string(),
  spec: ClusterSpec,
  status: ClusterStatus,
  createdAt: z.string(),
  updatedAt: z.string(),
  version: z.int(),
  /** Which at-rest keys the control planes hold, and a rotation in progress (its state machine, key ids only). */
  encryption: z
    .object({
      activeKeyId: z.string(),
      keys: z.array(z.string()),
      rotation: z.record(z.string(), z.unknown()).optional(),
      lastInitiatedAt: z.string().optional(),
      lastCompletedAt: z.string().optional(),
      /** When rotationPeriodDays asks for the next rotation; indexed for the scheduler. */
      nextRotationAt: z.string().optional(),
    })
    .optional(),
  /** The cluster's own KMS key (in its account and region), from the infrastructure step; it wraps the at-rest data keys. */
  clusterKeyArn: z.string().optional(),
  /** The API load balancer's DNS name, from the infrastructure step: Cilium reaches the API server through it in every operation. */
  apiHost: z.string().optional(),
  /** The Auto Scaling groups of the control plane and each pool, from the infrastructure step: the health poller reads the machines there. */
  machineGroups: z.object({ controlPlane: z.string(), pools: z.record(z.string(), z.string()) }).optional(),
  /** Secret material wrapped by KMS; never returned by the API. */
  sealed: z.record(z.string(), z.string()).optional(),
  /**
   * The nodes this cluster holds of its tenant's quota (countedNodes of its spec; 0 once Deleted). The store moves
   * the tenant's quota item by the difference whenever a save changes it, in the same transaction.
   */
  quotaNodes: z.int().optional(),
});
export type ClusterRecord = z.infer<typeof ClusterRecord>;

/** What the health poller last saw of a cluster's machines; written only when it changes. */
export const NodeHealthRecord = z.object({
  tenantId: z.string(),
  clusterId: z.string(),
  nodes: z.array(NodeObservation),
  /** Why remediation holds, one sentence each. */
  holds: z.array(z.string()),
  observedAt: z.string(),
  version: z.int(),
});
export type NodeHealthRecord = z.infer<typeof NodeHealthRecord>;

export const StepRecord = OperationStep.omit({ name: true });
export type StepRecord = z.infer<typeof StepRecord>;

export const OperationRecord = z.object({
  tenantId: z.string(),
  id: z.string(),
  type: z.enum(OPERATION_TYPES),
  clusterId: z.string(),
  target: RemediationTarget.optional(),
  state: z.enum(OPERATION_STATES),
  steps: z.record(z.string(), StepRecord),
  error: Problem.optional(),
  /** The API request that started it (its x-request-id); absent when a schedule did. */
  requestId: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().optional(),
  version: z.int(),
});
export type OperationRecord = z.infer<typeof OperationRecord>;

/** A tenant as stored; one created before Kiln issued external IDs has none until it first needs one. */
export const TenantRecord = Tenant.extend({ externalId: Tenant.shape.externalId.optional() });

/** A tenant's API key as stored: only its hash, never the key. */
export const ApiKeyRecord = z.object({
  tenantId: z.string(),
  id: z.string(),
  prefix: z.string(),
  description: z.string().optional(),
  apiKeyHash: z.string(),
  /** Absent on keys created before keys had scopes: those were full tenant admins, and keep every scope. */
  scopes: z.array(ApiKeyScope).optional(),
  /** When the key stops working. Not `expiresAt`: that is the table's TTL attribute, and an expired key stays listed until revoked. */
  validUntil: z.string().optional(),
  createdAt: z.string(),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecord>;
export type TenantRecord = z.infer<typeof TenantRecord>;

export const StoredResponse = z.object({
  status: z.int(),
  headers: z.record(z.string(), z.string()),
  body: z.string(),
});
export type StoredResponse = z.infer<typeof StoredResponse>;

export const IdempotencyRecord = z.object({
  tenantId: z.string(),
  keyHash: z.string(),
  requestHash: z.string(),
  response: StoredResponse,
  createdAt: z.string(),
});
export type IdempotencyRecord = z.infer<typeof IdempotencyRecord>;

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

/** A tenant's webhook endpoint as stored: its signing secrets only sealed under Kiln's key. */
export const WebhookEndpointRecord = z.object({
  tenantId: z.string(),
  id: z.string(),
  url: z.string(),
  eventTypes: z.array(z.string()),
  description: z.string().optional(),
  enabled: z.boolean(),
  disabledReason: z.string().optional(),
  /** When the attempts started failing without one success since (a day of that disables the endpoint). */
  failingSince: z.string().optional(),
  /** Sealed `whsec_` secrets, newest first; an older one keeps signing until its `expiresAt`. */
  secrets: z.array(z.object({ sealed: z.string(), expiresAt: z.string().optional() })),
  /** The last event of the feed that has a delivery for this endpoint. */
  cursor: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  version: z.int(),
});
export type WebhookEndpointRecord = z.infer<typeof WebhookEndpointRecord>;

export const WebhookAttempt = z.object({
  at: z.string(),
  status: z.int().optional(),
  latencyMs: z.number(),
  response: z.string(),
  ok: z.boolean(),
});

/** One event for one endpoint, with every attempt to deliver it. */
export const WebhookDeliveryRecord = z.object({
  tenantId: z.string(),
  endpointId: z.string(),
  eventId: z.string(),
  eventType: z.string(),
  /** The body every attempt sends: the event as the feed shows it. */
  payload: z.string(),
  state: z.enum(['pending', 'succeeded', 'failed']),
  attempts: z.array(WebhookAttempt),
  nextAttemptAt: z.string().optional(),
  createdAt: z.string(),
});
export type WebhookDeliveryRecord = z.infer<typeof WebhookDeliveryRecord>;

/**
 * One machine's time in a cluster, for billing: from the health poll that first saw it running to the one that no
 * longer did (or the cluster's deletion). Open while `endedAt` is absent.
 */
export const MachineUsageRecord = z.object({
  tenantId: z.string(),
  clusterId: z.string(),
  instanceId: z.string(),
  role: z.enum(['control-plane', 'worker']),
  pool: z.string().optional(),
  instanceType: z.string(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
});
export type MachineUsageRecord = z.infer<typeof MachineUsageRecord>;

/** One reported hour of a tenant's usage: what its usage.reported event said, and what GET /v1/usage adds up. */
export const UsageHourRecord = z.object({
  tenantId: z.string(),
  from: z.string(),
  to: z.string(),
  items: z.array(UsageRow),
  nodeSeconds: z.int(),
  /** The usage.reported event written with it (absent for an hour in which nothing ran: no event). */
  eventId: z.string().optional(),
});
export type UsageHourRecord = z.infer<typeof UsageHourRecord>;

/** Where a tenant's usage reports have got to: every hour before `reportedThrough` is reported. */
export const UsageLedgerRecord = z.object({
  tenantId: z.string(),
  reportedThrough: z.string(),
  version: z.int(),
});
export type UsageLedgerRecord = z.infer<typeof UsageLedgerRecord>;
