import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { API_KEY_SCOPES, type ApiKeyScope, ClusterEvent, ConflictError, KilnError, type OperationState, DEFAULT_QUOTAS, QuotaExceededError, type QuotaUsage, type Quotas, type RateDecision, type RatePolicy, TenantEvent, type TenantWideEvent, ValidationError, countedNodes, operationEvent, sha256 } from '#core';
import {
  ApiKeyRecord,
  WebhookDeliveryRecord,
  WebhookEndpointRecord,
  ClusterRecord,
  IdempotencyRecord,
  MachineUsageRecord,
  UsageHourRecord,
  UsageLedgerRecord,
  NodeHealthRecord,
  OperationRecord,
  type Page,
  type StepRecord,
  type StoredResponse,
  TenantRecord,
} from './records.ts';
import { InfrastructureSlots } from './infrastructure-slots.ts';
import { ParsedByVersion } from './parsed-by-version.ts';
import { queryAll } from './query.ts';
import { TABLE_KEYS, keys } from './table.ts';

const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
const DELETED_CLUSTER_TTL_SECONDS = 7 * 24 * 60 * 60;
const EVENT_TTL_SECONDS = 90 * 24 * 60 * 60;
/** Closed machine usage is kept past any report it counts in; reported hours for a little more than a year. */
const MACHINE_USAGE_TTL_SECONDS = 35 * 24 * 60 * 60;
const USAGE_HOUR_TTL_SECONDS = 400 * 24 * 60 * 60;
/** Webhook deliveries (with their attempts) are kept a month. */
const WEBHOOK_DELIVERY_TTL_SECONDS = 30 * 24 * 60 * 60;
const TRANSACTION_ATTEMPTS = 4;

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * An optimistic-concurrency miss: someone else changed the item first. A client that named no version (no If-Match)
 * gets a 409 and retries; the services turn it into 412 for one that did.
 */
export class VersionConflictError extends KilnError {
  constructor(kind: string, id: string) {
    super('conflict', `The ${kind} '${id}' changed while this request was being processed: read it again and retry.`);
    this.name = 'VersionConflictError';
  }
}

export interface IdempotencyClaim {
  keyHash: string;
  requestHash: string;
  response: StoredResponse;
}

/** An operation still pending or running, as the sparse index of active operations names it. */
export interface ActiveOperation {
  tenantId: string;
  operationId: string;
  createdAt: string;
}

export type WriteOutcome = { kind: 'written' } | { kind: 'replay'; record: IdempotencyRecord };

/** What authentication learns from a key's hash: whose it is, what it may do, and whether its tenant may use it now. */
export interface KeyHolder {
  /** The tenant's id and name. */
  id: string;
  name: string;
  keyId?: string;
  scopes: ApiKeyScope[];
  validUntil?: string;
  lastUsedAt?: string;
  /** Since when the operator has suspended the tenant. */
  suspendedAt?: string;
}

function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

interface CursorPosition {
  PK: string;
  SK: string;
  GSI1PK?: string;
  GSI1SK?: string;
}

/**
 * Cursors carry the sort key to resume after and a digest of the tenant they
 * were issued to: the partition always comes from the caller's tenant, and a
 * cursor handed to another tenant is refused rather than silently reused.
 */
function tenantMark(tenantId: string): string {
  return sha256(`cursor:${tenantId}`).slice(0, 16);
}

function encodeCursor(tenantId: string, sortKey: string): string {
  return Buffer.from(JSON.stringify({ t: tenantMark(tenantId), k: sortKey }), 'utf8').toString('base64url');
}

function decodeCursor(tenantId: string, cursor: string, prefix: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'k' in parsed &&
      typeof parsed.k === 'string' &&
      parsed.k.startsWith(prefix) &&
      't' in parsed &&
      parsed.t === tenantMark(tenantId)
    ) {
      return parsed.k;
    }
  } catch {
    // fall through to the validation error below
  }
  throw new ValidationError('The cursor is not one this API issued for this list.', [{ parameter: 'cursor', detail: 'is malformed or belongs to another list' }]);
}

/**
 * DynamoDB single-table access. The only module that speaks DynamoDB; every
 * method is tenant-scoped and none of them scans.
 */
export class KilnStore {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly tableName: string,
    /** The quotas of a tenant the admin gave none. */
    readonly defaultQuotas: Quotas = DEFAULT_QUOTAS,
  ) {
    this.documents = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
    this.infrastructureSlots = new InfrastructureSlots(this.documents, tableName);
  }

  /** The fair queue in front of the infrastructure runs. */
  readonly infrastructureSlots: InfrastructureSlots;

  /** Cluster items parsed before, by version: a cluster read again unchanged (a client polling it) is not parsed again. */
  private readonly parsedClusters = new ParsedByVersion(ClusterRecord, 1_000);

  // Tenants ---------------------------------------------------------------

  /** The lookup authentication reads (by the key's hash) and the item its owner lists, written together. */
  private apiKeyPuts(tenant: TenantRecord, key: ApiKeyRecord): NonNullable<TransactWriteCommandInput['TransactItems']> {
    return [
      {
        Put: {
          TableName: this.tableName,
          Item: {
            ...keys.apiKey(key.apiKeyHash),
            entity: 'apiKey',
            tenantId: tenant.id,
            name: tenant.name,
            keyId: key.id,
            ...(key.scopes === undefined ? {} : { scopes: key.scopes }),
            ...(key.validUntil === undefined ? {} : { validUntil: key.validUntil }),
            createdAt: key.createdAt,
          },
          ConditionExpression: 'attribute_not_exists(PK)',
        },
      },
      { Put: { TableName: this.tableName, Item: { ...keys.apiKeyOfTenant(tenant.id, key.id), entity: 'apiKeyOfTenant', ...key }, ConditionExpression: 'attribute_not_exists(PK)' } },
    ];
  }

  /**
   * A tenant with its first API key and its quotas (the deployment's defaults unless given); the tenant item counts
   * its keys, so the last one cannot be revoked.
   */
  async createTenant(tenant: TenantRecord, key: ApiKeyRecord, quotas: Quotas = this.defaultQuotas): Promise<void> {
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: this.tableName,
              Item: { ...keys.tenant(tenant.id), entity: 'tenant', ...tenant, apiKeyCount: 1 },
              ConditionExpression: 'attribute_not_exists(PK)',
            },
          },
          ...this.apiKeyPuts(tenant, key),
          {
            Put: {
              TableName: this.tableName,
              Item: { ...keys.quota(tenant.id), entity: 'quota', clusterLimit: quotas.clusters, nodeLimit: quotas.nodes, clustersFree: quotas.clusters, nodesFree: quotas.nodes },
            },
          },
        ],
      }),
    );
  }

  // Limits ----------------------------------------------------------------

  /**
   * A tenant's quotas and what its clusters hold of them (the deployment's defaults for a tenant created before
   * quotas were kept, until its next cluster writes them).
   */
  async getQuotaUsage(tenantId: string): Promise<QuotaUsage> {
    const defaults = this.defaultQuotas;
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.quota(tenantId), ConsistentRead: true }));
    const item = result.Item;
    if (item === undefined) return { clusters: { limit: defaults.clusters, used: 0 }, nodes: { limit: defaults.nodes, used: 0 } };
    const [clusterLimit, nodeLimit] = [Number(item.clusterLimit), Number(item.nodeLimit)];
    return {
      clusters: { limit: clusterLimit, used: clusterLimit - Number(item.clustersFree) },
      nodes: { limit: nodeLimit, used: nodeLimit - Number(item.nodesFree) },
    };
  }

  /**
   * The quota item's change for a cluster that takes `clusters` more clusters and `nodes` more nodes (either may be
   * negative, to free them). Taking needs enough left; a missing item starts from `defaults` (a tenant's first
   * cluster). Freeing never fails.
   */
  private quotaUpdate(tenantId: string, change: { clusters: number; nodes: number }, defaults?: Quotas): TransactItem {
    const taking = change.clusters > 0 || change.nodes > 0;
    const start = defaults ?? { clusters: 0, nodes: 0 };
    const needs: string[] = [];
    if (change.clusters > 0) needs.push('clustersFree >= :clusters');
    if (change.nodes > 0) needs.push('nodesFree >= :nodes');
    // A missing item starts from the defaults, which must hold the change themselves.
    const startFits = defaults !== undefined && change.clusters <= defaults.clusters && change.nodes <= defaults.nodes;
    return {
      Update: {
        TableName: this.tableName,
        Key: keys.quota(tenantId),
        UpdateExpression:
          'SET entity = :entity, clusterLimit = if_not_exists(clusterLimit, :clusterLimit), nodeLimit = if_not_exists(nodeLimit, :nodeLimit), ' +
          'clustersFree = if_not_exists(clustersFree, :clusterLimit) - :clusters, nodesFree = if_not_exists(nodesFree, :nodeLimit) - :nodes',
        ...(taking ? { ConditionExpression: startFits ? `attribute_not_exists(PK) OR (${needs.join(' AND ')})` : needs.join(' AND ') } : {}),
        ExpressionAttributeValues: { ':entity': 'quota', ':clusterLimit': start.clusters, ':nodeLimit': start.nodes, ':clusters': change.clusters, ':nodes': change.nodes },
      },
    };
  }

  /**
   * Takes requests from the tenant's bucket: `wanted` of them, or as many as it holds when that is fewer (at least
   * one, or the request is refused). The bucket is a token bucket kept as one number (GCRA): `tat`, the time (ms) at
   * which the bucket would be full again. Taking k requests is granted when that is at most burst - k intervals ahead
   * of now, and moves it k intervals on. Every Lambda instance writes the same item with a condition, so the limit
   * holds across all of them.
   *
   * A write that is in use and one that is full (quiet since, or new) take different writes; `expectFull` says which
   * to try first (the caller's guess from the last take it saw). A wrong guess costs a second write, which the first
   * one's refusal (it returns the bucket's `tat`) makes exact: one write when the guess was right, two when not.
   */
  async takeRequestToken(tenantId: string, nowMs: number, policy: RatePolicy, wanted = 1, expectFull = false): Promise<RateDecision> {
    const interval = 1000 / policy.perSecond;
    const latestFor = (count: number) => nowMs + interval * (policy.burst - count);
    const expires = (tat: number) => Math.ceil(tat / 1000) + 60;
    /** Requests the bucket holds when it would be full again at `tat`. */
    const roomAt = (tat: number) => Math.floor((latestFor(0) - tat) / interval);
    const granted = (tat: number, count: number): RateDecision => ({
      granted: true,
      taken: count,
      remaining: Math.max(0, roomAt(tat)),
      retryAfterSeconds: 0,
      fullAt: tat,
    });
    let count = Math.max(1, Math.min(Math.floor(wanted), policy.burst));
    let full = expectFull;
    for (let attempt = 1; attempt <= 3; attempt++) {
      let tat: number;
      try {
        if (full) {
          // The bucket is full: it starts again from now.
          const next = nowMs + interval * count;
          await this.documents.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: keys.requestBucket(tenantId),
              UpdateExpression: 'SET tat = :next, #ttl = :expires',
              ConditionExpression: 'attribute_not_exists(tat) OR tat < :now',
              ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttl },
              ExpressionAttributeValues: { ':next': next, ':now': nowMs, ':expires': expires(next) },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            }),
          );
          return granted(next, count);
        }
        // The bucket is in use and has room: the next request's time moves on by the requests taken.
        const result = await this.documents.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.requestBucket(tenantId),
            UpdateExpression: 'SET tat = tat + :taken, #ttl = :expires',
            ConditionExpression: 'tat BETWEEN :now AND :latest',
            ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttl },
            ExpressionAttributeValues: { ':taken': interval * count, ':now': nowMs, ':latest': latestFor(count), ':expires': expires(latestFor(0)) },
            ReturnValues: 'UPDATED_NEW',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return granted(Number(result.Attributes?.tat), count);
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        tat = Number(error.Item?.tat?.N);
      }
      // Refused: the bucket as it is now says which write fits (another request may still move it before that one).
      full = Number.isNaN(tat) || tat < nowMs;
      if (full) continue;
      const room = roomAt(tat);
      if (room < 1) {
        return { granted: false, taken: 0, remaining: 0, retryAfterSeconds: Math.max(1, Math.ceil((tat - latestFor(1)) / 1000)), fullAt: tat };
      }
      count = Math.min(count, room);
    }
    throw new KilnError('unavailable', 'The request rate limiter is contended; retry in a moment.');
  }

  /** Another API key for a tenant. */
  async createApiKey(tenant: TenantRecord, key: ApiKeyRecord): Promise<void> {
    await this.documents.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: this.tableName,
              Key: keys.tenant(tenant.id),
              UpdateExpression: 'ADD apiKeyCount :one',
              ConditionExpression: 'attribute_exists(PK)',
              ExpressionAttributeValues: { ':one': 1 },
            },
          },
          ...this.apiKeyPuts(tenant, key),
        ],
      }),
    );
  }

  async getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.tenant(tenantId), ConsistentRead: true }));
    return result.Item === undefined ? undefined : TenantRecord.parse(result.Item);
  }

  /**
   * The tenant's external ID: the one it has, or else `candidate`, written only if it still has none, so the first one
   * written stays (a tenant from before Kiln issued them gets one on first use). Undefined for no such tenant.
   */
  async ensureTenantExternalId(tenantId: string, candidate: string): Promise<string | undefined> {
    try {
      const result = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.tenant(tenantId),
          UpdateExpression: 'SET externalId = if_not_exists(externalId, :candidate)',
          ConditionExpression: 'attribute_exists(PK)',
          ExpressionAttributeValues: { ':candidate': candidate },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      const externalId: unknown = result.Attributes?.externalId;
      return typeof externalId === 'string' ? externalId : undefined;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  /** A tenant's keys, oldest first, with when each was last used. */
  async listApiKeys(tenantId: string): Promise<(ApiKeyRecord & { lastUsedAt?: string })[]> {
    const listed = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.tenant(tenantId).PK, ':prefix': 'APIKEYID#' },
        ConsistentRead: true,
      }),
    );
    const records = (listed.Items ?? []).map((item) => ApiKeyRecord.parse(item));
    const lookups = await Promise.all(
      records.map((record) => this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.apiKey(record.apiKeyHash), ProjectionExpression: 'lastUsedAt' }))),
    );
    return records
      .map((record, index) => {
        const lastUsedAt: unknown = lookups[index]?.Item?.lastUsedAt;
        return typeof lastUsedAt === 'string' ? { ...record, lastUsedAt } : record;
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Deletes the key's lookup and its listing together, so the next request with it is refused; refused for the
   * tenant's last key (its owner would be locked out). 'missing' when the tenant has no such key.
   */
  async revokeApiKey(tenantId: string, keyId: string): Promise<'revoked' | 'missing' | 'last'> {
    const listed = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.apiKeyOfTenant(tenantId, keyId), ConsistentRead: true }));
    if (listed.Item === undefined) return 'missing';
    const record = ApiKeyRecord.parse(listed.Item);
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: keys.tenant(tenantId),
                UpdateExpression: 'ADD apiKeyCount :less',
                ConditionExpression: 'apiKeyCount > :one',
                ExpressionAttributeValues: { ':less': -1, ':one': 1 },
              },
            },
            { Delete: { TableName: this.tableName, Key: keys.apiKeyOfTenant(tenantId, keyId), ConditionExpression: 'attribute_exists(PK)' } },
            { Delete: { TableName: this.tableName, Key: keys.apiKey(record.apiKeyHash) } },
          ],
        }),
      );
      return 'revoked';
    } catch (error) {
      const reasons = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
      if (reasons[0]?.Code === 'ConditionalCheckFailed') return 'last';
      if (reasons[1]?.Code === 'ConditionalCheckFailed') return 'missing';
      throw error;
    }
  }

  /**
   * The tenant and key a hash belongs to, read strongly (a revoked key is refused at once), with what the key may do
   * and whether the operator has suspended its tenant (the tenant item, a second strong read: suspending a tenant
   * then writes one item, however many keys it has).
   */
  async findTenantByApiKeyHash(apiKeyHash: string): Promise<KeyHolder | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.apiKey(apiKeyHash), ConsistentRead: true }));
    const item = result.Item;
    if (item === undefined) return undefined;
    const tenantId = String(item.tenantId);
    const tenant = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.tenant(tenantId), ConsistentRead: true, ProjectionExpression: 'suspendedAt' }));
    const suspendedAt: unknown = tenant.Item?.suspendedAt;
    const scopes = ApiKeyRecord.shape.scopes.parse(item.scopes);
    return {
      id: tenantId,
      name: String(item.name),
      ...(typeof item.keyId === 'string' ? { keyId: item.keyId } : {}),
      scopes: scopes ?? [...API_KEY_SCOPES],
      ...(typeof item.validUntil === 'string' ? { validUntil: item.validUntil } : {}),
      ...(typeof item.lastUsedAt === 'string' ? { lastUsedAt: item.lastUsedAt } : {}),
      ...(typeof suspendedAt === 'string' ? { suspendedAt } : {}),
    };
  }

  /** One of a tenant's keys as its owner lists it. */
  async getApiKey(tenantId: string, keyId: string): Promise<ApiKeyRecord | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.apiKeyOfTenant(tenantId, keyId), ConsistentRead: true }));
    return result.Item === undefined ? undefined : ApiKeyRecord.parse(result.Item);
  }

  /**
   * Suspends a tenant (its keys are refused from the next time they are read) from `at`, or from when it was first
   * suspended if it already is; undefined when there is no such tenant.
   */
  async suspendTenant(tenantId: string, at: string): Promise<TenantRecord | undefined> {
    return this.updateTenant(tenantId, 'SET suspendedAt = if_not_exists(suspendedAt, :at)', { ':at': at });
  }

  /** Resumes a suspended tenant (a tenant that is not suspended stays as it is); undefined when there is no such tenant. */
  async resumeTenant(tenantId: string): Promise<TenantRecord | undefined> {
    return this.updateTenant(tenantId, 'REMOVE suspendedAt');
  }

  private async updateTenant(tenantId: string, update: string, values?: Record<string, string>): Promise<TenantRecord | undefined> {
    try {
      const result = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.tenant(tenantId),
          UpdateExpression: update,
          ConditionExpression: 'attribute_exists(PK)',
          ...(values === undefined ? {} : { ExpressionAttributeValues: values }),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return TenantRecord.parse(result.Attributes);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  /** Records that a key was used; a key revoked meanwhile stays gone. */
  async touchApiKey(apiKeyHash: string, usedAt: string): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.apiKey(apiKeyHash),
          UpdateExpression: 'SET lastUsedAt = :usedAt',
          ConditionExpression: 'attribute_exists(PK)',
          ExpressionAttributeValues: { ':usedAt': usedAt },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  // Webhooks --------------------------------------------------------------

  /** An endpoint; an enabled one sits in the sparse index the delivery worker reads (GSI2). */
  private webhookEndpointItem(record: WebhookEndpointRecord): Record<string, unknown> {
    return {
      ...keys.webhookEndpoint(record.tenantId, record.id),
      entity: 'webhookEndpoint',
      ...record,
      ...(record.enabled ? { GSI2PK: keys.webhookEndpointsPartition, GSI2SK: `${record.tenantId}#${record.id}` } : {}),
    };
  }

  async createWebhookEndpoint(record: WebhookEndpointRecord): Promise<void> {
    await this.documents.send(new PutCommand({ TableName: this.tableName, Item: this.webhookEndpointItem(record), ConditionExpression: 'attribute_not_exists(PK)' }));
  }

  async getWebhookEndpoint(tenantId: string, id: string): Promise<WebhookEndpointRecord | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.webhookEndpoint(tenantId, id), ConsistentRead: true }));
    return result.Item === undefined ? undefined : WebhookEndpointRecord.parse(result.Item);
  }

  async listWebhookEndpoints(tenantId: string): Promise<WebhookEndpointRecord[]> {
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.webhooksOfTenant(tenantId), ':prefix': 'WEBHOOK#' },
      }),
    );
    return (result.Items ?? []).map((item) => WebhookEndpointRecord.parse(item));
  }

  /** Saves the endpoint with the version guard (the worker moves its cursor, disables it; the owner deletes it). */
  async saveWebhookEndpoint(
    record: WebhookEndpointRecord,
    expectedVersion: number,
    also: { deliveries?: readonly WebhookDeliveryRecord[]; events?: readonly TenantWideEvent[] } = {},
  ): Promise<WebhookEndpointRecord> {
    const next: WebhookEndpointRecord = { ...record, version: expectedVersion + 1, updatedAt: new Date().toISOString() };
    await this.transactOrConflict(
      [
        {
          Put: {
            TableName: this.tableName,
            Item: this.webhookEndpointItem(next),
            ConditionExpression: 'version = :expected',
            ExpressionAttributeValues: { ':expected': expectedVersion },
          },
        },
        ...(also.deliveries ?? []).map((delivery) => ({ Put: { TableName: this.tableName, Item: this.webhookDeliveryItem(delivery) } })),
        ...(also.events ?? []).map((event) => this.eventPut(record.tenantId, event)),
      ],
      () => new VersionConflictError('webhook endpoint', record.id),
    );
    return next;
  }

  async deleteWebhookEndpoint(tenantId: string, id: string): Promise<boolean> {
    try {
      await this.documents.send(new DeleteCommand({ TableName: this.tableName, Key: keys.webhookEndpoint(tenantId, id), ConditionExpression: 'attribute_exists(PK)' }));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Every item a query matches, page after page. */
  private queryAll(query: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<Record<string, unknown>[]> {
    return queryAll(this.documents, this.tableName, query);
  }

  /**
   * One version-checked transaction: its first item is the guard. When the transaction is cancelled because of the
   * guard (its condition failed, by default, or another of `codes`), `conflict()` is thrown instead.
   */
  private async transactOrConflict(items: TransactItem[], conflict: () => Error, codes: readonly string[] = ['ConditionalCheckFailed']): Promise<void> {
    try {
      await this.documents.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (error) {
      if (error instanceof TransactionCanceledException && codes.includes(error.CancellationReasons?.[0]?.Code ?? '')) throw conflict();
      throw error;
    }
  }

  /** Every enabled endpoint of every tenant, for the delivery worker. */
  async listEnabledWebhookEndpoints(): Promise<{ tenantId: string; id: string }[]> {
    const items = await this.queryAll({
      IndexName: TABLE_KEYS.activeOperations.name,
      KeyConditionExpression: 'GSI2PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.webhookEndpointsPartition },
    });
    return items.map((item) => {
      const [tenantId = '', id = ''] = String(item.GSI2SK).split('#');
      return { tenantId, id };
    });
  }

  // Usage -----------------------------------------------------------------

  /**
   * The tenant's machine usage (of one cluster when named): the closed usage items, and the open usage each
   * cluster's metering item holds.
   */
  async listMachineUsage(tenantId: string, clusterId?: string): Promise<MachineUsageRecord[]> {
    const query = (prefix: string) =>
      this.queryAll({
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.tenant(tenantId).PK, ':prefix': prefix },
        ConsistentRead: true,
      });
    const [closed, open] = await Promise.all([
      query(clusterId === undefined ? 'METER#' : `METER#${clusterId}#`),
      clusterId === undefined
        ? query('METERSTATE#').then((meters) => meters.flatMap((meter) => MachineUsageRecord.array().parse(meter.open ?? [])))
        : this.getMeter(tenantId, clusterId).then((meter) => meter.open),
    ]);
    return [...closed.map((item) => MachineUsageRecord.parse(item)), ...open];
  }

  /**
   * A cluster's metering: the usage of the machines running at its last look, and its version (0 before the first),
   * against which the next change is written. One strongly consistent read: what every health poll pays.
   */
  async getMeter(tenantId: string, clusterId: string): Promise<{ version: number; open: MachineUsageRecord[] }> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.meter(tenantId, clusterId), ConsistentRead: true }));
    if (result.Item === undefined) return { version: 0, open: [] };
    return { version: Number(result.Item.version), open: MachineUsageRecord.array().parse(result.Item.open ?? []) };
  }

  /**
   * The cluster's open usage as it is now, and the usage that ended, in one transaction guarded by the metering's
   * version (a poll racing another loses and changes nothing); makes the tenant one the hourly report visits, from
   * the hour of its first usage on. Ended usage is kept 35 days, well past the report of its last hour.
   */
  async saveMachineUsage(tenantId: string, clusterId: string, expectedVersion: number, change: { open: readonly MachineUsageRecord[]; closed: readonly MachineUsageRecord[] }): Promise<void> {
    const firstHour = [...change.open, ...change.closed].map((record) => record.startedAt).sort()[0];
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: { ...keys.meter(tenantId, clusterId), entity: 'meter', tenantId, clusterId, open: change.open, version: expectedVersion + 1 },
          ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(PK)' : 'version = :expected',
          ...(expectedVersion === 0 ? {} : { ExpressionAttributeValues: { ':expected': expectedVersion } }),
        },
      },
      ...(firstHour === undefined
        ? []
        : [
            {
              Update: {
                TableName: this.tableName,
                Key: keys.usageLedger(tenantId),
                UpdateExpression: 'SET tenantId = :tenant, reportedThrough = if_not_exists(reportedThrough, :hour), version = if_not_exists(version, :zero), GSI2PK = :metered, GSI2SK = :tenant, entity = :entity',
                ExpressionAttributeValues: { ':tenant': tenantId, ':hour': `${firstHour.slice(0, 13)}:00:00.000Z`, ':zero': 0, ':metered': keys.meteredTenantsPartition, ':entity': 'usageLedger' },
              },
            },
          ]),
      ...change.closed.map((record): TransactItem => ({
        Put: {
          TableName: this.tableName,
          Item: {
            ...keys.machineUsage(tenantId, clusterId, `${record.instanceId}#${record.startedAt}`),
            entity: 'machineUsage',
            ...record,
            [TABLE_KEYS.ttl]: epochSeconds(new Date(record.endedAt ?? record.startedAt)) + MACHINE_USAGE_TTL_SECONDS,
          },
        },
      })),
    ];
    // More than one transaction takes (many machines gone at once): the guard goes with the first part only.
    for (let start = 0; start < items.length; start += 100) {
      await this.transactOrConflict(items.slice(start, start + 100), () => new VersionConflictError('metering of cluster', clusterId));
    }
  }

  /** Every tenant Kiln has metered machines of, for the hourly usage report. */
  async listMeteredTenants(): Promise<string[]> {
    const items = await this.queryAll({
      IndexName: TABLE_KEYS.activeOperations.name,
      KeyConditionExpression: 'GSI2PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.meteredTenantsPartition },
    });
    return items.map((item) => String(item.GSI2SK));
  }

  async getUsageLedger(tenantId: string): Promise<UsageLedgerRecord | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.usageLedger(tenantId), ConsistentRead: true }));
    return result.Item === undefined ? undefined : UsageLedgerRecord.parse(result.Item);
  }

  /**
   * One reported hour (or a run of idle ones), its usage.reported event and the ledger moved past it, all or
   * nothing: a second reporter racing for the same hour loses the version check and writes nothing.
   */
  async saveUsageHour(ledger: UsageLedgerRecord, hour: UsageHourRecord, events: readonly TenantWideEvent[]): Promise<void> {
    await this.transactOrConflict(
      [
        {
          Update: {
            TableName: this.tableName,
            Key: keys.usageLedger(ledger.tenantId),
            UpdateExpression: 'SET reportedThrough = :to, version = :next',
            ConditionExpression: 'version = :expected AND reportedThrough = :from',
            ExpressionAttributeValues: { ':to': hour.to, ':next': ledger.version + 1, ':expected': ledger.version, ':from': hour.from },
          },
        },
        // Hours in which nothing ran have no record: the ledger alone says they are reported.
        ...(hour.items.length === 0
          ? []
          : [
              {
                Put: {
                  TableName: this.tableName,
                  Item: { ...keys.usageHour(ledger.tenantId, hour.from), entity: 'usageHour', ...hour, [TABLE_KEYS.ttl]: epochSeconds(new Date(hour.to)) + USAGE_HOUR_TTL_SECONDS },
                  ConditionExpression: 'attribute_not_exists(PK)',
                },
              },
            ]),
        ...events.map((event) => this.eventPut(ledger.tenantId, event)),
      ],
      () => new VersionConflictError('usage ledger of tenant', ledger.tenantId),
      // A failed condition, or another reporter's transaction on the ledger under way: either way that one reports the hour.
      ['ConditionalCheckFailed', 'TransactionConflict'],
    );
  }

  /** The tenant's reported hours that start in [from, to), in order. */
  async listUsageHours(tenantId: string, from: string, to: string): Promise<UsageHourRecord[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'PK = :pk AND SK BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': keys.tenant(tenantId).PK, ':from': `USAGEHOUR#${from}`, ':to': `USAGEHOUR#${to}` },
      ConsistentRead: true,
    });
    return items.map((item) => UsageHourRecord.parse(item)).filter((hour) => hour.from < to);
  }

  private webhookDeliveryItem(record: WebhookDeliveryRecord): Record<string, unknown> {
    return {
      ...keys.webhookDelivery(record.tenantId, record.endpointId, record.eventId),
      entity: 'webhookDelivery',
      ...record,
      [TABLE_KEYS.ttl]: Math.floor(Date.parse(record.createdAt) / 1000) + WEBHOOK_DELIVERY_TTL_SECONDS,
    };
  }

  async getWebhookDelivery(tenantId: string, endpointId: string, eventId: string): Promise<WebhookDeliveryRecord | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.webhookDelivery(tenantId, endpointId, eventId), ConsistentRead: true }));
    return result.Item === undefined ? undefined : WebhookDeliveryRecord.parse(result.Item);
  }

  /** Moves a pending delivery's next attempt to `until` if it is still as read; false when someone changed it first. */
  async leaseWebhookDelivery(record: WebhookDeliveryRecord, until: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.webhookDelivery(record.tenantId, record.endpointId, record.eventId),
          UpdateExpression: 'SET nextAttemptAt = :until',
          ConditionExpression: '#state = :pending AND nextAttemptAt = :due',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':until': until, ':pending': 'pending', ':due': record.nextAttemptAt ?? '' },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async saveWebhookDelivery(record: WebhookDeliveryRecord): Promise<void> {
    await this.documents.send(new PutCommand({ TableName: this.tableName, Item: this.webhookDeliveryItem(record) }));
  }

  /** The endpoint's deliveries, newest event first (up to `limit`). */
  async listWebhookDeliveries(tenantId: string, endpointId: string, limit = 100): Promise<WebhookDeliveryRecord[]> {
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.webhooksOfTenant(tenantId), ':prefix': `DELIVERY#${endpointId}#` },
        ScanIndexForward: false,
        Limit: limit,
        ConsistentRead: true,
      }),
    );
    return (result.Items ?? []).map((item) => WebhookDeliveryRecord.parse(item));
  }

  /** The endpoint's deliveries of the events with ids from `fromEventId` up to `toEventId`, oldest first. */
  async listWebhookDeliveriesBetween(tenantId: string, endpointId: string, fromEventId: string, toEventId: string): Promise<WebhookDeliveryRecord[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'PK = :pk AND SK BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': keys.webhooksOfTenant(tenantId), ':from': `DELIVERY#${endpointId}#${fromEventId}`, ':to': `DELIVERY#${endpointId}#${toEventId}` },
      ConsistentRead: true,
    });
    return items.map((item) => WebhookDeliveryRecord.parse(item));
  }

  /** The endpoint's deliveries still to attempt whose time has come, oldest event first. */
  async listDueWebhookDeliveries(tenantId: string, endpointId: string, now: Date): Promise<WebhookDeliveryRecord[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      FilterExpression: '#state = :pending AND nextAttemptAt <= :now',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':pk': keys.webhooksOfTenant(tenantId), ':prefix': `DELIVERY#${endpointId}#`, ':pending': 'pending', ':now': now.toISOString() },
      ConsistentRead: true,
    });
    return items.map((item) => WebhookDeliveryRecord.parse(item));
  }

  // Idempotency -----------------------------------------------------------

  async getIdempotencyRecord(tenantId: string, keyHash: string): Promise<IdempotencyRecord | undefined> {
    const result = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: keys.idempotency(tenantId, keyHash), ConsistentRead: true }),
    );
    return result.Item === undefined ? undefined : IdempotencyRecord.parse(result.Item);
  }

  private idempotencyPut(tenantId: string, claim: IdempotencyClaim, now: Date): TransactItem {
    const record: IdempotencyRecord = {
      tenantId,
      keyHash: claim.keyHash,
      requestHash: claim.requestHash,
      response: claim.response,
      createdAt: now.toISOString(),
    };
    return {
      Put: {
        TableName: this.tableName,
        Item: {
          ...keys.idempotency(tenantId, claim.keyHash),
          entity: 'idempotency',
          ...record,
          [TABLE_KEYS.ttl]: epochSeconds(now) + IDEMPOTENCY_TTL_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      },
    };
  }

  /**
   * Runs one transaction whose first item may be an idempotency claim. A lost
   * race on the claim becomes a replay of the winner's response; transient
   * transaction conflicts are retried.
   */
  private async transact(
    tenantId: string,
    items: TransactItem[],
    claim: IdempotencyClaim | undefined,
    explainFailure: (index: number) => KilnError | undefined,
  ): Promise<WriteOutcome> {
    const now = new Date();
    const all = claim === undefined ? items : [...items, this.idempotencyPut(tenantId, claim, now)];
    for (let attempt = 1; ; attempt++) {
      try {
        await this.documents.send(new TransactWriteCommand({ TransactItems: all }));
        return { kind: 'written' };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = error.CancellationReasons ?? [];
        if (claim !== undefined && reasons[all.length - 1]?.Code === 'ConditionalCheckFailed') {
          const record = await this.getIdempotencyRecord(tenantId, claim.keyHash);
          if (record !== undefined) return { kind: 'replay', record };
        }
        const failed = reasons.findIndex((reason) => reason.Code === 'ConditionalCheckFailed');
        if (failed >= 0 && failed < items.length) {
          const explained = explainFailure(failed);
          if (explained !== undefined) throw explained;
        }
        const conflicted = reasons.some((reason) => reason.Code === 'TransactionConflict');
        if (!conflicted || attempt >= TRANSACTION_ATTEMPTS) {
          if (conflicted && claim !== undefined) {
            throw new KilnError('idempotency_request_in_flight', 'A request with this Idempotency-Key is still being processed; retry shortly.');
          }
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt * Math.random()));
      }
    }
  }

  // Clusters --------------------------------------------------------------

  /**
   * Cluster, its name claim, its first operation, its share of the tenant's quota (from the deployment's default
   * quotas when the tenant has no quota item yet) and the idempotency record, all or nothing.
   */
  async createCluster(cluster: ClusterRecord, operation: OperationRecord, claim?: IdempotencyClaim, events: readonly ClusterEvent[] = []): Promise<WriteOutcome> {
    const nodes = countedNodes(cluster.spec);
    const counted: ClusterRecord = { ...cluster, quotaNodes: nodes };
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: { ...keys.clusterName(cluster.tenantId, cluster.name), entity: 'clusterName', clusterId: cluster.id },
          ConditionExpression: 'attribute_not_exists(PK)',
        },
      },
      {
        Put: {
          TableName: this.tableName,
          Item: this.clusterItem(counted, new Date()),
          ConditionExpression: 'attribute_not_exists(PK)',
        },
      },
      this.quotaUpdate(cluster.tenantId, { clusters: 1, nodes }, this.defaultQuotas),
      this.operationPut(operation),
      ...[...events, operationEvent(operation, 'operation.started')].map((event) => this.eventPut(cluster.tenantId, event)),
    ];
    return this.transact(cluster.tenantId, items, claim, (index) => {
      if (index === 0) return new ConflictError(`A cluster named '${cluster.name}' already exists.`);
      if (index === 2) return new QuotaExceededError(`The tenant's quota has no room for another cluster of ${String(nodes)} nodes.`);
      return undefined;
    });
  }

  /**
   * A cluster as stored: Deleted clusters expire after a week, live clusters
   * are indexed by their Kubernetes minor (so the end-of-life check reads only
   * the minors near their end), and clusters with a rotation due sit in the
   * sparse work index under its due time, so the scheduler reads only those.
   */
  private clusterItem(record: ClusterRecord, now: Date): Record<string, unknown> {
    const dueAt = record.encryption?.nextRotationAt;
    const live = record.status.phase !== 'Deleting' && record.status.phase !== 'Deleted';
    const scheduled = dueAt !== undefined && live;
    return {
      ...keys.cluster(record.tenantId, record.id),
      entity: 'cluster',
      ...record,
      ...(record.status.phase === 'Deleted' ? { [TABLE_KEYS.ttl]: epochSeconds(now) + DELETED_CLUSTER_TTL_SECONDS } : {}),
      ...(live ? { GSI1PK: keys.clustersOnKubernetesMinor(record.spec.kubernetesVersion), GSI1SK: `${record.tenantId}#${record.id}` } : {}),
      ...(scheduled ? { GSI2PK: keys.rotationSchedulePartition, GSI2SK: `${dueAt}#${record.tenantId}#${record.id}` } : {}),
    };
  }

  /**
   * Live clusters on one Kubernetes minor, across tenants, a page at a time
   * (for the scheduled end-of-life check, never for a request). `after` is the
   * `next` of the previous page.
   */
  async listClustersOnKubernetesMinor(minor: string, page: { limit: number; after?: string }): Promise<{ items: ClusterRecord[]; next?: string }> {
    const partition = keys.clustersOnKubernetesMinor(minor);
    const [tenantId, clusterId] = page.after?.split('#') ?? [];
    const start =
      tenantId === undefined || clusterId === undefined
        ? undefined
        : { ...keys.cluster(tenantId, clusterId), GSI1PK: partition, GSI1SK: `${tenantId}#${clusterId}` };
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TABLE_KEYS.byCluster.name,
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': partition },
        Limit: page.limit,
        ExclusiveStartKey: start,
      }),
    );
    const items = (result.Items ?? []).map((item) => this.parsedClusters.parse(item));
    const last = result.LastEvaluatedKey;
    return { items, ...(last === undefined ? {} : { next: String(last.GSI1SK) }) };
  }

  /** Clusters whose key rotation is due at `now`, earliest first. */
  async listDueRotations(now: Date, limit = 100): Promise<{ tenantId: string; clusterId: string; dueAt: string }[]> {
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TABLE_KEYS.activeOperations.name,
        KeyConditionExpression: 'GSI2PK = :pk AND GSI2SK <= :now',
        ExpressionAttributeValues: { ':pk': keys.rotationSchedulePartition, ':now': `${now.toISOString()}#~` },
        Limit: limit,
      }),
    );
    return (result.Items ?? []).map((item) => {
      const [dueAt = '', tenantId = '', clusterId = ''] = String(item.GSI2SK).split('#');
      return { tenantId, clusterId, dueAt };
    });
  }

  async getCluster(tenantId: string, clusterId: string): Promise<ClusterRecord | undefined> {
    const result = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: keys.cluster(tenantId, clusterId), ConsistentRead: true }),
    );
    return result.Item === undefined ? undefined : this.parsedClusters.parse(result.Item);
  }

  /** The cluster that holds a name in the tenant (names are unique per tenant while their cluster lives). */
  async findClusterIdByName(tenantId: string, name: string): Promise<string | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.clusterName(tenantId, name), ConsistentRead: true }));
    return typeof result.Item?.clusterId === 'string' ? result.Item.clusterId : undefined;
  }

  async listClusters(tenantId: string, page: { limit: number; cursor?: string }): Promise<Page<ClusterRecord>> {
    const partition = keys.tenant(tenantId).PK;
    const start = page.cursor === undefined ? undefined : decodeCursor(tenantId, page.cursor, 'CLUSTER#');
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
        // A cluster whose deletion finished is not listed (its item stays 7 days, for its events and operations).
        FilterExpression: '#status.#phase <> :deleted',
        ExpressionAttributeNames: { '#status': 'status', '#phase': 'phase' },
        ExpressionAttributeValues: { ':pk': partition, ':prefix': 'CLUSTER#', ':deleted': 'Deleted' },
        Limit: page.limit,
        ExclusiveStartKey: start === undefined ? undefined : ({ PK: partition, SK: start } satisfies CursorPosition),
      }),
    );
    const items = (result.Items ?? []).map((item) => this.parsedClusters.parse(item));
    const last = result.LastEvaluatedKey;
    return { items, nextCursor: last === undefined ? undefined : encodeCursor(tenantId, String(last.SK)) };
  }

  /**
   * What saving `record` moves in its tenant's quota: the nodes it holds follow its spec, and are all freed with the
   * cluster itself once it is Deleted. (A cluster stored before quotas were kept holds nothing and is not counted.)
   */
  private quotaFollowing(record: ClusterRecord): { held: { quotaNodes?: number }; items: TransactItem[]; exceeded: () => QuotaExceededError } {
    const exceeded = (nodes: number) => () => new QuotaExceededError(`The tenant's quota has no room for ${String(nodes)} more nodes.`);
    if (record.quotaNodes === undefined) return { held: {}, items: [], exceeded: exceeded(0) };
    const deleted = record.status.phase === 'Deleted';
    const holds = deleted ? 0 : countedNodes(record.spec);
    const nodes = holds - record.quotaNodes;
    const change = { clusters: deleted ? -1 : 0, nodes };
    return { held: { quotaNodes: holds }, items: nodes === 0 && !deleted ? [] : [this.quotaUpdate(record.tenantId, change)], exceeded: exceeded(nodes) };
  }

  /**
   * Conditional update on the version attribute. `update` receives the
   * current record and returns the next one; the version is bumped here.
   */
  async saveCluster(record: ClusterRecord, expectedVersion: number, now = new Date(), events: readonly ClusterEvent[] = []): Promise<ClusterRecord> {
    const quota = this.quotaFollowing(record);
    const next: ClusterRecord = { ...record, ...quota.held, version: expectedVersion + 1, updatedAt: now.toISOString() };
    const put = {
      TableName: this.tableName,
      Item: this.clusterItem(next, now),
      ConditionExpression: 'version = :expected',
      ExpressionAttributeValues: { ':expected': expectedVersion },
    };
    try {
      if (events.length === 0 && quota.items.length === 0) {
        await this.documents.send(new PutCommand(put));
      } else {
        // The state change, its events and its quota change commit together: an event is never lost, nor emitted for
        // a change that did not happen.
        await this.documents.send(
          new TransactWriteCommand({ TransactItems: [{ Put: put }, ...quota.items, ...events.map((event) => this.eventPut(record.tenantId, event))] }),
        );
      }
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new VersionConflictError('cluster', record.id);
      if (error instanceof TransactionCanceledException) {
        const reasons = error.CancellationReasons ?? [];
        if (reasons[0]?.Code === 'ConditionalCheckFailed') throw new VersionConflictError('cluster', record.id);
        if (quota.items.length > 0 && reasons[1]?.Code === 'ConditionalCheckFailed') throw quota.exceeded();
      }
      throw error;
    }
    return next;
  }

  // Node health -----------------------------------------------------------

  async getNodeHealth(tenantId: string, clusterId: string): Promise<NodeHealthRecord | undefined> {
    const result = await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.nodeHealth(tenantId, clusterId), ConsistentRead: true }));
    return result.Item === undefined ? undefined : NodeHealthRecord.parse(result.Item);
  }

  /**
   * Writes what the poller saw, with its events, all or nothing; the version
   * guards against two pollers (or a poll and a remediation) crossing.
   * `expectedVersion` 0 creates the record.
   */
  async saveNodeHealth(record: Omit<NodeHealthRecord, 'version'>, expectedVersion: number, events: readonly ClusterEvent[] = []): Promise<NodeHealthRecord> {
    const next: NodeHealthRecord = { ...record, version: expectedVersion + 1 };
    const put: TransactItem = {
      Put: {
        TableName: this.tableName,
        Item: { ...keys.nodeHealth(record.tenantId, record.clusterId), entity: 'nodeHealth', ...next },
        ...(expectedVersion === 0
          ? { ConditionExpression: 'attribute_not_exists(PK)' }
          : { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } }),
      },
    };
    await this.transactOrConflict([put, ...events.map((event) => this.eventPut(record.tenantId, event))], () => new VersionConflictError('node health', record.clusterId));
    return next;
  }

  // Events ----------------------------------------------------------------

  private eventPut(tenantId: string, event: ClusterEvent | TenantWideEvent): TransactItem {
    return {
      Put: {
        TableName: this.tableName,
        Item: {
          ...('clusterId' in event ? keys.clusterEvent(tenantId, event.clusterId, event.id) : keys.tenantWideEvent(tenantId, event.id)),
          entity: 'event',
          tenantId,
          GSI1PK: keys.tenantEvents(tenantId),
          GSI1SK: event.id,
          ...event,
          [TABLE_KEYS.ttl]: Math.floor(Date.parse(event.occurredAt) / 1000) + EVENT_TTL_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      },
    };
  }

  /** Events that change no state of their own (an audit trail: a kubeconfig issued, a key handed out). */
  async appendEvents(tenantId: string, events: readonly (ClusterEvent | TenantWideEvent)[]): Promise<void> {
    if (events.length === 0) return;
    await this.documents.send(new TransactWriteCommand({ TransactItems: events.map((event) => this.eventPut(tenantId, event)) }));
  }

  /**
   * The tenant's events in id order (the time they were made), after `after` and before `before` (both ids), only of
   * `types` when some are named: up to `limit`, and whether more are there.
   */
  async listTenantEvents(tenantId: string, query: { after?: string; before: string; types: readonly string[]; limit: number }): Promise<{ items: TenantEvent[]; more: boolean }> {
    // A cursor at or past the bound (an endpoint created, or a reader caught up, within the settle time) has nothing
    // to read yet; DynamoDB refuses a BETWEEN whose bounds are the wrong way round.
    if (query.after !== undefined && query.after >= query.before) return { items: [], more: false };
    const items: TenantEvent[] = [];
    const filter = query.types.length === 0 ? undefined : `#type IN (${query.types.map((_, index) => `:type${index}`).join(', ')})`;
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: TABLE_KEYS.byCluster.name,
          // Every event id starts with evt_; `after` itself is left out below.
          KeyConditionExpression: 'GSI1PK = :pk AND GSI1SK BETWEEN :after AND :before',
          ExpressionAttributeValues: {
            ':pk': keys.tenantEvents(tenantId),
            ':after': query.after ?? 'evt_',
            ':before': query.before,
            ...Object.fromEntries(query.types.map((type, index) => [`:type${index}`, type])),
          },
          ...(filter === undefined ? {} : { FilterExpression: filter, ExpressionAttributeNames: { '#type': 'type' } }),
          Limit: query.limit + 1,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of result.Items ?? []) if (item.GSI1SK !== query.after && item.GSI1SK !== query.before) items.push(TenantEvent.parse(item));
      start = result.LastEvaluatedKey;
    } while (items.length <= query.limit && start !== undefined);
    return { items: items.slice(0, query.limit), more: items.length > query.limit };
  }

  async listClusterEvents(tenantId: string, clusterId: string, page: { limit: number; cursor?: string }): Promise<Page<ClusterEvent>> {
    const partition = keys.tenant(tenantId).PK;
    const prefix = `EVENT#${clusterId}#`;
    const start = page.cursor === undefined ? undefined : decodeCursor(tenantId, page.cursor, prefix);
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
        ExpressionAttributeValues: { ':pk': partition, ':prefix': prefix },
        ScanIndexForward: false,
        Limit: page.limit,
        ExclusiveStartKey: start === undefined ? undefined : ({ PK: partition, SK: start } satisfies CursorPosition),
      }),
    );
    const items = (result.Items ?? []).map((item) => ClusterEvent.parse(item));
    const last = result.LastEvaluatedKey;
    return { items, nextCursor: last === undefined ? undefined : encodeCursor(tenantId, String(last.SK)) };
  }

  /**
   * Starts a new operation on a cluster: the cluster update (guarded by its
   * version and by having no active operation), the operation and the
   * idempotency record in one transaction.
   */
  async beginOperation(
    cluster: ClusterRecord,
    expectedVersion: number,
    operation: OperationRecord,
    claim?: IdempotencyClaim,
    events: readonly ClusterEvent[] = [],
  ): Promise<WriteOutcome> {
    const now = new Date().toISOString();
    const quota = this.quotaFollowing(cluster);
    const next: ClusterRecord = { ...cluster, ...quota.held, version: expectedVersion + 1, updatedAt: now };
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: this.clusterItem(next, new Date()),
          ConditionExpression: 'version = :expected',
          ExpressionAttributeValues: { ':expected': expectedVersion },
        },
      },
      this.operationPut(operation),
      ...[...events, operationEvent(operation, 'operation.started')].map((event) => this.eventPut(cluster.tenantId, event)),
      // Last, so the indexes above stay put: a change that grows the cluster takes its nodes of the quota with it.
      ...quota.items,
    ];
    return this.transact(cluster.tenantId, items, claim, (index) => {
      if (index === 0) return new VersionConflictError('cluster', cluster.id);
      if (quota.items.length > 0 && index === items.length - 1) return quota.exceeded();
      return undefined;
    });
  }

  /** Frees the cluster's name once it is Deleted, so it can be ordered again. */
  async releaseClusterName(tenantId: string, name: string, clusterId: string): Promise<void> {
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.tableName,
                Key: keys.clusterName(tenantId, name),
                ConditionExpression: 'clusterId = :cluster',
                ExpressionAttributeValues: { ':cluster': clusterId },
              },
            },
          ],
        }),
      );
    } catch (error) {
      // Already released (or claimed by a newer cluster): nothing to do.
      if (!(error instanceof TransactionCanceledException)) throw error;
    }
  }

  // Operations ------------------------------------------------------------

  private operationPut(operation: OperationRecord): TransactItem {
    return {
      Put: {
        TableName: this.tableName,
        Item: this.operationItem(operation),
        ConditionExpression: 'attribute_not_exists(PK)',
      },
    };
  }

  private operationItem(operation: OperationRecord): Record<string, unknown> {
    const active = operation.state === 'pending' || operation.state === 'running';
    return {
      ...keys.operation(operation.tenantId, operation.id),
      entity: 'operation',
      ...operation,
      GSI1PK: keys.operationsOfCluster(operation.tenantId, operation.clusterId),
      GSI1SK: `OP#${operation.id}`,
      // A sparse index: only active operations are in it, so recovery reads only them.
      ...(active ? { GSI2PK: keys.activeOperationsPartition, GSI2SK: `${operation.createdAt}#${operation.tenantId}#${operation.id}` } : {}),
    };
  }

  async getOperation(tenantId: string, operationId: string): Promise<OperationRecord | undefined> {
    const result = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: keys.operation(tenantId, operationId), ConsistentRead: true }),
    );
    return result.Item === undefined ? undefined : OperationRecord.parse(result.Item);
  }

  async listClusterOperations(tenantId: string, clusterId: string, page: { limit: number; cursor?: string }): Promise<Page<OperationRecord>> {
    const partition = keys.operationsOfCluster(tenantId, clusterId);
    const start = page.cursor === undefined ? undefined : decodeCursor(tenantId, page.cursor, 'OP#');
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TABLE_KEYS.byCluster.name,
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': partition },
        ScanIndexForward: false,
        Limit: page.limit,
        ExclusiveStartKey:
          start === undefined
            ? undefined
            : ({ ...keys.operation(tenantId, start.slice('OP#'.length)), GSI1PK: partition, GSI1SK: start } satisfies CursorPosition),
      }),
    );
    const items = (result.Items ?? []).map((item) => OperationRecord.parse(item));
    const last = result.LastEvaluatedKey;
    return { items, nextCursor: last === undefined ? undefined : encodeCursor(tenantId, String(last.GSI1SK)) };
  }

  /** Saves the operation with the version guard, and the events its change emits in the same transaction. */
  async saveOperation(operation: OperationRecord, expectedVersion: number, now = new Date(), events: readonly ClusterEvent[] = []): Promise<OperationRecord> {
    const next: OperationRecord = { ...operation, version: expectedVersion + 1, updatedAt: now.toISOString() };
    await this.transactOrConflict(
      [
        {
          Put: {
            TableName: this.tableName,
            Item: this.operationItem(next),
            ConditionExpression: 'version = :expected',
            ExpressionAttributeValues: { ':expected': expectedVersion },
          },
        },
        ...events.map((event) => this.eventPut(operation.tenantId, event)),
      ],
      () => new VersionConflictError('operation', operation.id),
    );
    return next;
  }

  /** Sets one step's record without touching the rest of the operation. */
  async saveStep(tenantId: string, operationId: string, stepName: string, step: StepRecord, state?: OperationState): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.operation(tenantId, operationId),
        UpdateExpression: `SET steps.#step = :step, updatedAt = :now, version = version + :one${state === undefined ? '' : ', #state = :state'}`,
        ConditionExpression: 'attribute_exists(PK)',
        ExpressionAttributeNames: { '#step': stepName, ...(state === undefined ? {} : { '#state': 'state' }) },
        ExpressionAttributeValues: {
          ':step': step,
          ':now': new Date().toISOString(),
          ':one': 1,
          ...(state === undefined ? {} : { ':state': state }),
        },
      }),
    );
  }

  /**
   * Operations still pending or running, oldest first, from the sparse index: at most `limit` after the position
   * `after` (a page's `next`). `next` is where the page ended, when more may follow.
   */
  async listActiveOperations(options: { limit?: number; after?: string } = {}): Promise<{ items: ActiveOperation[]; next?: string }> {
    const limit = options.limit ?? 100;
    const result = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TABLE_KEYS.activeOperations.name,
        KeyConditionExpression: options.after === undefined ? 'GSI2PK = :pk' : 'GSI2PK = :pk AND GSI2SK > :after',
        ExpressionAttributeValues: { ':pk': keys.activeOperationsPartition, ...(options.after === undefined ? {} : { ':after': options.after }) },
        Limit: limit,
      }),
    );
    const positions = (result.Items ?? []).map((item) => String(item.GSI2SK));
    const items = positions.map((position) => {
      const [createdAt = '', tenantId = '', operationId = ''] = position.split('#');
      return { tenantId, operationId, createdAt };
    });
    const last = positions.at(-1);
    return result.LastEvaluatedKey === undefined || last === undefined ? { items } : { items, next: last };
  }

  /** Where recovery's last pass stopped in the active operations (a page's `next`), or undefined to start at the oldest. */
  async recoveryCursor(): Promise<string | undefined> {
    const item = (await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.recoveryCursor }))).Item;
    return typeof item?.after === 'string' ? item.after : undefined;
  }

  async setRecoveryCursor(after: string | undefined): Promise<void> {
    if (after === undefined) await this.documents.send(new DeleteCommand({ TableName: this.tableName, Key: keys.recoveryCursor }));
    else await this.documents.send(new PutCommand({ TableName: this.tableName, Item: { ...keys.recoveryCursor, entity: 'recoveryCursor', after } }));
  }
}

/** Builds the store with its own client; `endpoint` points it at DynamoDB Local. */
export function createStore(options: {
  tableName: string;
  region: string;
  endpoint?: string;
  /** How the client connects (its timeouts). */
  requestHandler?: DynamoDBClientConfig['requestHandler'];
  defaultQuotas?: Quotas;
  /** Wraps the DynamoDB client, for tracing (X-Ray) in production. */
  traced?: (client: DynamoDBClient) => DynamoDBClient;
}): KilnStore {
  const made = new DynamoDBClient({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.requestHandler === undefined ? {} : { requestHandler: options.requestHandler }),
  });
  const client = options.traced === undefined ? made : options.traced(made);
  return new KilnStore(client, options.tableName, options.defaultQuotas);
}
