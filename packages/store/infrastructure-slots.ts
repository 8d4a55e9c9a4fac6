import { setTimeout } from 'node:timers/promises';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { sha256 } from '#core';
import { queryAll } from './query.ts';
import { keys } from './table.ts';

type TransactItems = NonNullable<TransactWriteCommandInput['TransactItems']>;

/** An operation waiting for an infrastructure run, with the task token its workflow waits on. */
export interface SlotWaiter {
  tenantId: string;
  operationId: string;
  /**
   * The workflow's task token (the grant sends it back with Step Functions' SendTaskSuccess), sealed by the caller:
   * anyone allowed SendTaskSuccess could move the workflow on with it, and AWS's own model marks it sensitive.
   */
  sealedTaskToken: string;
}

/**
 * Tries of a grant that lost a race before it gives up for this call: DynamoDB cancels both of two transactions on
 * the same item at once (TransactionConflict), so many dispatchers at once back off a random while and try again.
 * A call that gives up leaves the slot to the next release, or to recovery's pass (dispatchInfrastructureSlots).
 */
const GRANT_ATTEMPTS = 20;
const GRANT_BACKOFF_MS = 50;

/**
 * A fair queue in front of the infrastructure runs (Pulumi in Fargate), across every tenant and Lambda instance: at
 * most `limit` operations hold a slot at once; a free slot goes to a waiting operation of the tenant that holds the
 * fewest slots, the one granted longest ago among equals, and within a tenant to its oldest operation. A burst of one
 * tenant's orders therefore takes turns with another tenant's single order instead of running ahead of it.
 *
 * Items: one counter of slots held, one entry per tenant with waiters or slots (its share), one item per holder (so a
 * holder whose workflow vanished is reclaimed after `heldUntil`), and the waiters under each tenant's own partition.
 */
export class InfrastructureSlots {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * Queues an operation. Idempotent: queued again (a retried call, or a new run of the state), it keeps its place
   * with the newest token; an operation that already holds a slot is not queued (returns false).
   */
  async wait(waiter: SlotWaiter, now: Date): Promise<boolean> {
    const item = { ...keys.infrastructureWaiter(waiter.tenantId, waiter.operationId), entity: 'slotWaiter', ...waiter, queuedAt: now.toISOString() };
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(PK)' } },
            { ConditionCheck: { TableName: this.tableName, Key: keys.infrastructureSlotHolder(waiter.operationId), ConditionExpression: 'attribute_not_exists(PK)' } },
            {
              Update: {
                TableName: this.tableName,
                Key: keys.infrastructureSlotTenant(waiter.tenantId),
                UpdateExpression: 'SET entity = :entity, tenantId = :tenantId, held = if_not_exists(held, :zero) ADD waiting :one',
                ExpressionAttributeValues: { ':entity': 'slotTenant', ':tenantId': waiter.tenantId, ':zero': 0, ':one': 1 },
              },
            },
          ],
        }),
      );
      return true;
    } catch (error) {
      const [queued, holding] = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
      if (holding?.Code === 'ConditionalCheckFailed') return false;
      if (queued?.Code !== 'ConditionalCheckFailed') throw error;
    }
    // Already queued: the newest token is the one its workflow waits on.
    await this.documents.send(
      new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_exists(PK)' }),
    );
    return true;
  }

  /**
   * Grants a free slot to the next waiter in fair order and returns it, or undefined when every slot is held or
   * nobody waits, or when it lost every race until `deadline` (epoch milliseconds; no new try starts after it). The
   * waiter becomes a holder until `release` (or until `heldUntil`, when its workflow never releases).
   */
  async grantNext(limit: number, now: Date, holdMs: number, deadline = Number.POSITIVE_INFINITY): Promise<SlotWaiter | undefined> {
    for (let attempt = 1; attempt <= GRANT_ATTEMPTS && Date.now() < deadline; attempt++) {
      const held = await this.heldCount();
      if (held >= limit && (await this.reclaimExpired(now)) === 0) return undefined;
      const next = await this.nextWaiter();
      if (next === undefined) return undefined;
      try {
        await this.documents.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.tableName,
                  Key: keys.infrastructureSlots,
                  UpdateExpression: 'SET entity = :entity, held = if_not_exists(held, :zero) + :one',
                  ConditionExpression: 'attribute_not_exists(held) OR held < :limit',
                  ExpressionAttributeValues: { ':entity': 'slots', ':zero': 0, ':one': 1, ':limit': limit },
                },
              },
              {
                Update: {
                  TableName: this.tableName,
                  Key: keys.infrastructureSlotTenant(next.tenantId),
                  UpdateExpression: 'SET grantedAt = :now ADD held :one, waiting :minusOne',
                  ConditionExpression: 'waiting >= :one',
                  ExpressionAttributeValues: { ':now': now.toISOString(), ':one': 1, ':minusOne': -1 },
                },
              },
              {
                Delete: {
                  TableName: this.tableName,
                  Key: keys.infrastructureWaiter(next.tenantId, next.operationId),
                  ConditionExpression: 'sealedTaskToken = :token',
                  ExpressionAttributeValues: { ':token': next.sealedTaskToken },
                },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: {
                    ...keys.infrastructureSlotHolder(next.operationId),
                    entity: 'slotHolder',
                    tenantId: next.tenantId,
                    operationId: next.operationId,
                    // Which grant this is (a digest of the token it was sent with), so undoing a grant nobody took frees only that one.
                    grantDigest: sha256(next.sealedTaskToken),
                    grantedAt: now.toISOString(),
                    heldUntil: now.getTime() + holdMs,
                  },
                  ConditionExpression: 'attribute_not_exists(PK)',
                },
              },
            ],
          }),
        );
        return next;
      } catch (error) {
        // Another dispatcher took the slot or the waiter first, or the waiter's token changed: look again.
        if (!(error instanceof TransactionCanceledException)) throw error;
        await setTimeout(Math.random() * GRANT_BACKOFF_MS * Math.min(attempt, 5));
      }
    }
    return undefined;
  }

  /** Takes an operation out of the queue (its workflow stopped waiting); false when it was not queued. */
  async withdraw(tenantId: string, operationId: string): Promise<boolean> {
    const withdrawn = await this.transacted([
      { Delete: { TableName: this.tableName, Key: keys.infrastructureWaiter(tenantId, operationId), ConditionExpression: 'attribute_exists(PK)' } },
      { Update: { TableName: this.tableName, Key: keys.infrastructureSlotTenant(tenantId), UpdateExpression: 'ADD waiting :minusOne', ExpressionAttributeValues: { ':minusOne': -1 } } },
    ]);
    if (withdrawn) await this.forgetIdleTenant(tenantId);
    return withdrawn;
  }

  /**
   * Frees the slot an operation holds (when `grantOf`, the sealed token it was granted with, is given: only if it is
   * that grant). False when it held none.
   */
  async release(operationId: string, grantOf?: string): Promise<boolean> {
    const holder = (await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.infrastructureSlotHolder(operationId), ConsistentRead: true }))).Item;
    if (holder === undefined || (grantOf !== undefined && holder.grantDigest !== sha256(grantOf))) return false;
    const tenantId = String(holder.tenantId);
    const grantDigest = String(holder.grantDigest);
    // False when another call released it meanwhile.
    const released = await this.transacted([
      { Delete: { TableName: this.tableName, Key: keys.infrastructureSlotHolder(operationId), ConditionExpression: 'grantDigest = :grant', ExpressionAttributeValues: { ':grant': grantDigest } } },
      { Update: { TableName: this.tableName, Key: keys.infrastructureSlots, UpdateExpression: 'ADD held :minusOne', ExpressionAttributeValues: { ':minusOne': -1 } } },
      { Update: { TableName: this.tableName, Key: keys.infrastructureSlotTenant(tenantId), UpdateExpression: 'ADD held :minusOne', ExpressionAttributeValues: { ':minusOne': -1 } } },
    ]);
    if (released) await this.forgetIdleTenant(tenantId);
    return released;
  }

  /** Writes a transaction whose conditions may fail: false when it was cancelled. */
  private async transacted(items: TransactItems): Promise<boolean> {
    try {
      await this.documents.send(new TransactWriteCommand({ TransactItems: items }));
      return true;
    } catch (error) {
      if (error instanceof TransactionCanceledException) return false;
      throw error;
    }
  }

  /** A tenant with nothing held and nobody waiting leaves the fair order (a wait that comes meanwhile keeps it). */
  private async forgetIdleTenant(tenantId: string): Promise<void> {
    await this.documents
      .send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: keys.infrastructureSlotTenant(tenantId),
          ConditionExpression: 'held <= :zero AND waiting <= :zero',
          ExpressionAttributeValues: { ':zero': 0 },
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
  }

  /** Slots held now, and the operations waiting, for reports. */
  async usage(): Promise<{ held: number; waiting: number; tenants: { tenantId: string; held: number; waiting: number }[] }> {
    const tenants = await this.tenantEntries();
    return { held: await this.heldCount(), waiting: tenants.reduce((sum, tenant) => sum + tenant.waiting, 0), tenants };
  }

  /** The operations holding a slot, with when they got it and until when they may keep it unreleased. */
  async holders(): Promise<{ tenantId: string; operationId: string; grantedAt: string; heldUntil: number }[]> {
    const items = await this.slotItems('HOLDER#');
    return items.map((item) => ({ tenantId: String(item.tenantId), operationId: String(item.operationId), grantedAt: String(item.grantedAt), heldUntil: Number(item.heldUntil) }));
  }

  /** The queue partition's items of one kind (`TENANT#`, `HOLDER#`). */
  private slotItems(prefix: string): Promise<Record<string, unknown>[]> {
    return queryAll(this.documents, this.tableName, {
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.infrastructureSlots.PK, ':prefix': prefix },
      ConsistentRead: true,
    });
  }

  private async heldCount(): Promise<number> {
    const item = (await this.documents.send(new GetCommand({ TableName: this.tableName, Key: keys.infrastructureSlots, ConsistentRead: true }))).Item;
    return Number(item?.held ?? 0);
  }

  private async tenantEntries(): Promise<{ tenantId: string; held: number; waiting: number; grantedAt: string }[]> {
    const items = await this.slotItems('TENANT#');
    return items.map((item) => ({ tenantId: String(item.tenantId), held: Number(item.held ?? 0), waiting: Number(item.waiting ?? 0), grantedAt: typeof item.grantedAt === 'string' ? item.grantedAt : '' }));
  }

  /** The fair order's head: the oldest waiter of the waiting tenant with the fewest slots, granted longest ago. */
  private async nextWaiter(): Promise<SlotWaiter | undefined> {
    const waiting = (await this.tenantEntries())
      .filter((tenant) => tenant.waiting > 0)
      .sort((a, b) => a.held - b.held || a.grantedAt.localeCompare(b.grantedAt) || a.tenantId.localeCompare(b.tenantId));
    for (const tenant of waiting) {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'PK = :pk',
          ExpressionAttributeValues: { ':pk': keys.infrastructureWaiters(tenant.tenantId) },
          ConsistentRead: true,
          Limit: 1,
        }),
      );
      const item = page.Items?.[0];
      if (item !== undefined) return { tenantId: tenant.tenantId, operationId: String(item.operationId), sealedTaskToken: String(item.sealedTaskToken) };
    }
    return undefined;
  }

  /** Frees the slots of holders past `heldUntil` (their workflow ended without releasing); how many. */
  private async reclaimExpired(now: Date): Promise<number> {
    let reclaimed = 0;
    for (const holder of await this.holders()) {
      if (holder.heldUntil < now.getTime() && (await this.release(holder.operationId))) reclaimed += 1;
    }
    return reclaimed;
  }
}
