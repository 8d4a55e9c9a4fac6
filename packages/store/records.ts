import { z } from 'zod';
import { NodeObservation, ClusterSpec, ClusterStatus, OPERATION_STATES, OPERATION_TYPES, OperationStep, Problem, RemediationTarget, Tenant } from '#core';

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
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().optional(),
  version: z.int(),
});
export type OperationRecord = z.infer<typeof OperationRecord>;

export const TenantRecord = Tenant;

/** A tenant's API key as stored: only its hash, never the key. */
export const ApiKeyRecord = z.object({
  tenantId: z.string(),
  id: z.string(),
  prefix: z.string(),
  description: z.string().optional(),
  apiKeyHash: z.string(),
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
