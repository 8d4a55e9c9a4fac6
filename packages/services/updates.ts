import {
  type Cluster,
  ClusterSpec,
  ConflictError,
  FIXED_AT_CREATION,
  MUTABLE_ORDER_FIELDS,
  MUTABLE_ORDER_MEMBERS,
  immutableMembersOf,
  isPartlyMutable,
  nodePoolChanges,
  UnprocessableError,
  applyMergePatch,
  assertOrderRules,
  phaseChange,
  sameJson,
  validationErrorOf,
} from '#core';
import type { ClusterRecord } from '#store';
import { type IdempotentRequest, type Outcome, assertIdle, earlierResponse, findClusterMatching, launch, newOperation, settle } from './clusters.ts';
import type { KilnServices } from './context.ts';
import { clusterView, operationView } from './views.ts';

/**
 * Applies a JSON merge patch to a cluster's order and starts the update
 * workflow. The patched order is validated like a new one; fields that cannot
 * change after creation are refused with their pointer; a stale If-Match is a
 * 412; another running operation a 409 that names it.
 */
export async function updateClusterSpec(
  services: KilnServices,
  tenantId: string,
  clusterId: string,
  patch: Record<string, unknown>,
  options: { ifMatchVersion?: number; request?: IdempotentRequest } = {},
): Promise<Outcome<Cluster>> {
  const earlier = await earlierResponse(services, tenantId, options.request);
  if (earlier !== undefined) return { kind: 'replay', response: earlier };

  const cluster = await findClusterMatching(services, tenantId, clusterId, options.ifMatchVersion);
  assertIdle(cluster, 'change it');
  if (cluster.status.phase !== 'Ready' && cluster.status.phase !== 'Failed') {
    throw new ConflictError(`A cluster can be changed when it is Ready or Failed; it is ${cluster.status.phase}.`);
  }

  const parsed = ClusterSpec.safeParse(applyMergePatch(cluster.spec, patch));
  // A shape error in the patched order is the patch's: the same 400, with the same pointers, as an order's.
  if (!parsed.success) throw validationErrorOf(parsed.error, 'json', 'The patched order');
  const spec = parsed.data;
  assertOrderRules(spec, { stored: true });
  const immutable = (Object.keys(spec) as (keyof ClusterSpec)[]).flatMap((field): string[] => {
    if (isPartlyMutable(field)) {
      return immutableMembersOf(field)
        .filter((member) => !sameJson((spec[field] as Record<string, unknown>)[member], (cluster.spec[field] as Record<string, unknown>)[member]))
        .map((member) => `/${field}/${member}`);
    }
    return (MUTABLE_ORDER_FIELDS as readonly string[]).includes(field) || sameJson(spec[field], cluster.spec[field]) ? [] : [`/${field}`];
  });
  const pools = nodePoolChanges(cluster.spec.nodePools, spec.nodePools);
  if (immutable.length > 0) {
    throw new UnprocessableError(
      FIXED_AT_CREATION,
      immutable.map((pointer) => ({ pointer, detail: 'cannot change after the cluster is created' })),
    );
  }
  if (sameJson(spec, cluster.spec)) return { kind: 'fresh', value: clusterView(cluster) };

  // The allow-lists live in security group rules, the pools in Auto Scaling groups and launch templates: their change
  // runs the infrastructure step first, with the machines that leave drained and removed before it and the ones that
  // join awaited after it, and the machines of a pool whose instance type changed replaced one at a time.
  const reachesInfrastructure = pools.changed || (Object.keys(MUTABLE_ORDER_MEMBERS) as (keyof typeof MUTABLE_ORDER_MEMBERS)[]).some((part) => !sameJson(spec[part], cluster.spec[part]));
  const branches = [
    ...(pools.removesMachines ? ['drain-nodes', 'remove-machines'] : []),
    ...(pools.joinsMachines || pools.rollsMachines ? ['join-token'] : []),
    ...(pools.joinsMachines ? ['await-nodes'] : []),
    ...(pools.rollsMachines ? ['roll-machines'] : []),
    ...(reachesInfrastructure ? ['infrastructure'] : []),
  ];
  const now = new Date().toISOString();
  const operation = newOperation(tenantId, clusterId, 'update', now, branches);
  const updating: ClusterRecord = {
    ...cluster,
    spec,
    status: { ...cluster.status, phase: 'Updating', activeOperationId: operation.id },
  };
  const view = clusterView({ ...updating, version: cluster.version + 1, updatedAt: now });
  const claim =
    options.request === undefined ? undefined : { ...options.request, response: options.request.respond(view, operationView(operation)) };
  const outcome = await services.store.beginOperation(updating, cluster.version, operation, claim, phaseChange(clusterId, cluster.status.phase, 'Updating'));
  return settle(outcome, options.request, async () => {
    await launch(services, 'update', operation);
    return view;
  });
}
