import type { ClusterEvent } from '#core';
import type { Page } from '#store';
import { findCluster } from './clusters.ts';
import type { KilnServices } from './context.ts';

export async function listClusterEvents(
  services: KilnServices,
  tenantId: string,
  clusterId: string,
  page: { limit: number; cursor?: string },
): Promise<Page<ClusterEvent>> {
  await findCluster(services, tenantId, clusterId);
  const result = await services.store.listClusterEvents(tenantId, clusterId, page);
  return { items: result.items, ...(result.nextCursor === undefined ? {} : { nextCursor: result.nextCursor }) };
}
