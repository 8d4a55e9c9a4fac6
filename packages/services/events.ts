import { type ClusterEvent, type EventFeedPage, firstIdAt } from '#core';
import type { Page } from '#store';
import { findClusterRecord } from './clusters.ts';
import type { KilnServices } from './context.ts';

export async function listClusterEvents(
  services: KilnServices,
  tenantId: string,
  clusterId: string,
  page: { limit: number; cursor?: string },
): Promise<Page<ClusterEvent>> {
  await findClusterRecord(services, tenantId, clusterId);
  const result = await services.store.listClusterEvents(tenantId, clusterId, page);
  return { items: result.items, ...(result.nextCursor === undefined ? {} : { nextCursor: result.nextCursor }) };
}

/**
 * How long after it happened an event joins the tenant-wide feed. Ids are made before the transaction that writes
 * them commits, and the feed's index is eventually consistent; an event is listed only once every write that could
 * sort before it has landed, so a reader's cursor never passes an event that shows up later.
 */
export const EVENT_FEED_SETTLE_SECONDS = 15;

/**
 * A page of the tenant's events, oldest first, after the cursor (an event id): no gaps and no repeats across pages,
 * at the price of the settle delay. Another tenant's events are in another index partition.
 */
export async function listTenantEvents(
  services: KilnServices,
  tenantId: string,
  query: { after?: string; types: readonly string[]; limit: number },
  now = new Date(),
): Promise<EventFeedPage> {
  const before = firstIdAt('event', new Date(now.getTime() - EVENT_FEED_SETTLE_SECONDS * 1000));
  const page = await services.store.listTenantEvents(tenantId, { ...query, before });
  return { items: page.items, nextCursor: page.items.at(-1)?.id ?? query.after ?? null, more: page.more };
}
