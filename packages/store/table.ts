import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The single table. sst.config.ts declares the same keys and indexes for
 * production; local mode creates it from this definition.
 */
export const TABLE_KEYS = {
  partitionKey: 'PK',
  sortKey: 'SK',
  byCluster: { name: 'GSI1', partitionKey: 'GSI1PK', sortKey: 'GSI1SK' },
  activeOperations: { name: 'GSI2', partitionKey: 'GSI2PK', sortKey: 'GSI2SK' },
  ttl: 'expiresAt',
} as const;

export function tableDefinition(tableName: string): CreateTableCommandInput {
  const { byCluster, activeOperations } = TABLE_KEYS;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: TABLE_KEYS.partitionKey, AttributeType: 'S' },
      { AttributeName: TABLE_KEYS.sortKey, AttributeType: 'S' },
      { AttributeName: byCluster.partitionKey, AttributeType: 'S' },
      { AttributeName: byCluster.sortKey, AttributeType: 'S' },
      { AttributeName: activeOperations.partitionKey, AttributeType: 'S' },
      { AttributeName: activeOperations.sortKey, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: byCluster.name,
        KeySchema: [
          { AttributeName: byCluster.partitionKey, KeyType: 'HASH' },
          { AttributeName: byCluster.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: activeOperations.name,
        KeySchema: [
          { AttributeName: activeOperations.partitionKey, KeyType: 'HASH' },
          { AttributeName: activeOperations.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}

/** Key builders: every tenant-owned item lives under the tenant's partition. */
export const keys = {
  tenant: (tenantId: string) => ({ PK: `TENANT#${tenantId}`, SK: 'TENANT' }),
  apiKey: (apiKeyHash: string) => ({ PK: `APIKEY#${apiKeyHash}`, SK: 'APIKEY' }),
  /** A tenant's key as its owner lists it (the lookup item above is what authentication reads). */
  apiKeyOfTenant: (tenantId: string, keyId: string) => ({ PK: `TENANT#${tenantId}`, SK: `APIKEYID#${keyId}` }),
  cluster: (tenantId: string, clusterId: string) => ({ PK: `TENANT#${tenantId}`, SK: `CLUSTER#${clusterId}` }),
  clusterName: (tenantId: string, name: string) => ({ PK: `TENANT#${tenantId}`, SK: `CLUSTERNAME#${name}` }),
  operation: (tenantId: string, operationId: string) => ({ PK: `TENANT#${tenantId}`, SK: `OP#${operationId}` }),
  operationsOfCluster: (tenantId: string, clusterId: string) => `TENANT#${tenantId}#CLUSTER#${clusterId}`,
  idempotency: (tenantId: string, keyHash: string) => ({ PK: `TENANT#${tenantId}`, SK: `IDEM#${keyHash}` }),
  nodeHealth: (tenantId: string, clusterId: string) => ({ PK: `TENANT#${tenantId}`, SK: `NODEHEALTH#${clusterId}` }),
  clusterEvent: (tenantId: string, clusterId: string, eventId: string) => ({ PK: `TENANT#${tenantId}`, SK: `EVENT#${clusterId}#${eventId}` }),
  /** An event about the tenant as a whole (no cluster). */
  tenantWideEvent: (tenantId: string, eventId: string) => ({ PK: `TENANT#${tenantId}`, SK: `TENANTEVENT#${eventId}` }),
  /**
   * A tenant's webhook endpoints and deliveries: a partition of their own, so the webhook sender's IAM policy
   * (`dynamodb:LeadingKeys`, functions/permissions.ts) lets it read them and nothing else of the tenant's.
   */
  webhooksOfTenant: (tenantId: string) => `TENANT#${tenantId}#WEBHOOKS`,
  webhookEndpoint: (tenantId: string, id: string) => ({ PK: `TENANT#${tenantId}#WEBHOOKS`, SK: `WEBHOOK#${id}` }),
  webhookDelivery: (tenantId: string, endpointId: string, eventId: string) => ({ PK: `TENANT#${tenantId}#WEBHOOKS`, SK: `DELIVERY#${endpointId}#${eventId}` }),
  meter: (tenantId: string, clusterId: string) => ({ PK: `TENANT#${tenantId}`, SK: `METERSTATE#${clusterId}` }),
  /** One machine's usage from when it started: a machine seen again after a gap has a second one. */
  machineUsage: (tenantId: string, clusterId: string, machine: string) => ({ PK: `TENANT#${tenantId}`, SK: `METER#${clusterId}#${machine}` }),
  usageHour: (tenantId: string, from: string) => ({ PK: `TENANT#${tenantId}`, SK: `USAGEHOUR#${from}` }),
  usageLedger: (tenantId: string) => ({ PK: `TENANT#${tenantId}`, SK: 'USAGELEDGER' }),
  /** What the tenant may hold (its limits) and what is left of it, changed with every cluster that takes or frees some. */
  quota: (tenantId: string) => ({ PK: `TENANT#${tenantId}`, SK: 'QUOTA' }),
  /** The tenant's request bucket: a partition of its own, written on every request, away from the tenant's items. */
  requestBucket: (tenantId: string) => ({ PK: `RATE#${tenantId}`, SK: 'RATE' }),
  /** Tenants whose machines Kiln has metered, for the hourly usage report (GSI2, one item per tenant). */
  meteredTenantsPartition: 'METERED_TENANTS',
  /** Enabled webhook endpoints of every tenant, for the delivery worker (GSI2, sparse). */
  webhookEndpointsPartition: 'WEBHOOK_ENDPOINTS',
  /** Every event of a tenant in id (time) order, for the tenant-wide feed (GSI1). */
  tenantEvents: (tenantId: string) => `TENANT#${tenantId}#EVENTS`,
  /** Live clusters by the Kubernetes minor they run, for the end-of-life check (GSI1). */
  clustersOnKubernetesMinor: (minor: string) => `KUBERNETES#${minor}`,
  activeOperationsPartition: 'ACTIVE_OPERATIONS',
  /** Where recovery's passes have got to in the active operations (each pass checks one page of them). */
  recoveryCursor: { PK: 'RECOVERY', SK: 'CURSOR' },
  /** The infrastructure runs in progress (how many, which operations, each tenant's share): one partition for all tenants. */
  infrastructureSlots: { PK: 'INFRASTRUCTURE_SLOTS', SK: 'SLOTS' },
  infrastructureSlotTenant: (tenantId: string) => ({ PK: 'INFRASTRUCTURE_SLOTS', SK: `TENANT#${tenantId}` }),
  infrastructureSlotHolder: (operationId: string) => ({ PK: 'INFRASTRUCTURE_SLOTS', SK: `HOLDER#${operationId}` }),
  /** A tenant's operations waiting for an infrastructure run, oldest first (operation ids sort by time). */
  infrastructureWaiters: (tenantId: string) => `INFRASTRUCTURE_WAITERS#${tenantId}`,
  infrastructureWaiter: (tenantId: string, operationId: string) => ({ PK: `INFRASTRUCTURE_WAITERS#${tenantId}`, SK: `WAITER#${operationId}` }),
  rotationSchedulePartition: 'ROTATIONS_DUE',
} as const;
