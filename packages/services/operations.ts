import { NotFoundError, type Operation } from '#core';
import type { Page } from '#store';
import { findClusterRecord } from './clusters.ts';
import type { KilnServices } from './context.ts';
import { operationView } from './views.ts';

export async function findOperation(services: KilnServices, tenantId: string, operationId: string): Promise<Operation> {
  const record = await services.store.getOperation(tenantId, operationId);
  if (record === undefined) throw new NotFoundError('operation', operationId);
  return operationView(record);
}

export async function listClusterOperations(
  services: KilnServices,
  tenantId: string,
  clusterId: string,
  page: { limit: number; cursor?: string },
): Promise<Page<Operation>> {
  await findClusterRecord(services, tenantId, clusterId);
  const result = await services.store.listClusterOperations(tenantId, clusterId, page);
  return { items: result.items.map(operationView), ...(result.nextCursor === undefined ? {} : { nextCursor: result.nextCursor }) };
}
