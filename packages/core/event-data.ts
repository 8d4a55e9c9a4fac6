import { z } from 'zod';
import { TENANT_EVENT_TYPES, type EventType } from './resources.ts';

/**
 * What each event type's `data` holds, version 1. A field may be added to a type's data; anything else (a field
 * removed, renamed or retyped) would be a new event type, so integrators can validate against these.
 */
const PhaseChange = z
  .object({ from: z.string(), to: z.string(), reason: z.string().optional().describe('Why, for Failed.') })
  .meta({ id: 'PhaseChangeEventData' });
const OperationData = z
  .object({
    operationId: z.string(),
    operationType: z.string(),
    state: z.string(),
    error: z.object({ code: z.string().optional(), detail: z.string().optional() }).optional().describe('operation.failed only: the problem the operation recorded.'),
  })
  .meta({ id: 'OperationEventData' });
const Machine = z
  .object({
    instanceId: z.string(),
    nodeName: z.string().optional(),
    group: z.object({ role: z.enum(['control-plane', 'worker']), pool: z.string().optional() }).optional(),
    reason: z.string().optional(),
    operationId: z.string().optional(),
  })
  .loose()
  .meta({ id: 'NodeEventData' });
const Open = z.record(z.string(), z.unknown());

/** Node-seconds of one kind of machine in one cluster, over a period. */
export const UsageRow = z
  .object({
    clusterId: z.string(),
    role: z.enum(['control-plane', 'worker']),
    pool: z.string().optional().describe('The node pool (workers only).'),
    instanceType: z.string(),
    nodeSeconds: z.int().describe('Seconds of machine time, summed over the machines: exact, and what billing should add up.'),
    nodeHours: z.number().describe('nodeSeconds / 3600, rounded to 6 decimals (for display).'),
  })
  .meta({ id: 'UsageRow' });
export type UsageRow = z.infer<typeof UsageRow>;

/** A period's usage: what a usage.reported event says for its hour, and each period of GET /v1/usage. */
export const UsagePeriod = z
  .object({
    from: z.iso.datetime(),
    to: z.iso.datetime().describe('The period is [from, to).'),
    items: z.array(UsageRow).describe('Per cluster, role, pool and instance type; empty when nothing ran.'),
    nodeSeconds: z.int().describe('The sum of the items: GET /v1/usage and the usage.reported events give the same figures for the same hours.'),
  })
  .meta({ id: 'UsagePeriod' });
export type UsagePeriod = z.infer<typeof UsagePeriod>;

export const EVENT_DATA_V1 = {
  'cluster.created': z.object({ name: z.string(), region: z.string(), operationId: z.string() }).meta({ id: 'ClusterCreatedEventData' }),
  'cluster.updated': z.object({ operationId: z.string(), changed: z.array(z.string()).describe('The order fields the change touched.') }).meta({ id: 'ClusterUpdatedEventData' }),
  'cluster.ready': PhaseChange,
  'cluster.failed': PhaseChange,
  'cluster.deleted': PhaseChange,
  'cluster.phase_changed': PhaseChange,
  'operation.started': OperationData,
  'operation.succeeded': OperationData,
  'operation.failed': OperationData,
  'encryption_key.rotated': z
    .object({ operationId: z.string(), previousKeyId: z.string(), activeKeyId: z.string(), secretsRewritten: z.int() })
    .meta({ id: 'EncryptionKeyRotatedEventData', description: 'Key ids only; key material never leaves Kiln.' }),
  'cluster.kubeconfig_issued': z
    .object({ validUntil: z.string(), group: z.string(), user: z.string().optional().describe('The certificate\'s user: `kiln:key:<API key id>`.') })
    .meta({ id: 'KubeconfigIssuedEventData' }),
  'cluster.ssh_key_downloaded': Open,
  'cluster.kubernetes_version_end_of_life_soon': Open,
  'cluster.kubernetes_version_unsupported': Open,
  'cluster.kubernetes_upgrade_starting': z
    .object({ from: z.string(), to: z.string(), reason: z.literal('EndOfLife'), endOfLife: z.string(), window: Open })
    .meta({ id: 'KubernetesUpgradeStartingEventData' }),
  'node.unhealthy': Open,
  'node.rebooted': Machine,
  'node.recovered': Machine,
  'node.replaced': Machine,
  'node.removed': Machine,
  'remediation.paused': z.object({ reasons: z.array(z.string()) }).meta({ id: 'RemediationPausedEventData' }),
  'remediation.resumed': Open,
  'usage.reported': UsagePeriod,
  'webhook_endpoint.disabled': z
    .object({
      endpointId: z.string(),
      url: z.string(),
      reason: z.string().describe('Also the endpoint\'s disabledReason.'),
      failingSince: z.iso.datetime().optional().describe('When its attempts started failing, if that is why.'),
    })
    .meta({ id: 'WebhookEndpointDisabledEventData' }),
} as const satisfies Record<EventType, z.ZodType>;

const pascal = (type: string) => type.split(/[._]/).map((part) => `${part.charAt(0).toUpperCase()}${part.slice(1)}`).join('');

/** Each event type's schema with its data (version 1), as webhooks deliver it and the feed lists it. */
export const TYPED_EVENTS = Object.fromEntries(
  (Object.entries(EVENT_DATA_V1) as [EventType, z.ZodType][]).map(([type, data]) => [
    type,
    z
      .object({
        id: z.string().describe('Stable: the same event always has this id (webhook deliveries carry it as webhook-id).'),
        type: z.literal(type),
        tenantId: z.string(),
        ...((TENANT_EVENT_TYPES as readonly string[]).includes(type) ? {} : { clusterId: z.string() }),
        occurredAt: z.iso.datetime(),
        data,
      })
      .meta({ id: `${pascal(type)}Event` }),
  ]),
) as unknown as Record<EventType, z.ZodObject>;

/**
 * The tenant-wide feed's events as the document describes them: one schema per type, told apart by `type`. Stored
 * events are read with the generic shape, so an event written before a field was added still reads.
 */
export const TypedTenantEvent = z
  .discriminatedUnion('type', Object.values(TYPED_EVENTS) as unknown as [z.ZodObject, ...z.ZodObject[]])
  .meta({ id: 'TenantEventV1' });
