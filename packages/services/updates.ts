import {
  type Cluster,
  ClusterSpec,
  ConflictError,
  FIXED_AT_CREATION,
  MUTABLE_ORDER_FIELDS,
  MUTABLE_ORDER_MEMBERS,
  immutableMembersOf,
  isPartlyMutable,
  kubernetesReleaseOf,
  kubernetesUpgradeProblem,
  nodePoolChanges,
  podSecurityLevels,
  UnprocessableError,
  applyMergePatch,
  assertOrderRules,
  clusterEvent,
  phaseChange,
  sameJson,
  validationErrorOf,
  countedNodes,
} from '#core';
import { withinQuota } from './limits.ts';
import type { ClusterRecord } from '#store';
import { type IdempotentRequest, type Outcome, assertIdle, earlierResponse, findClusterMatching, ifMatching, launch, newOperation, settle } from './clusters.ts';
import type { KilnServices } from './context.ts';
import { plannedMachines } from './plan.ts';
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

  return ifMatching(options.ifMatchVersion, async () => {
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
    if (immutable.length > 0) {
      throw new UnprocessableError(
        FIXED_AT_CREATION,
        immutable.map((pointer) => ({ pointer, detail: 'cannot change after the cluster is created' })),
      );
    }
    const upgradeProblem = kubernetesUpgradeProblem(cluster.spec.kubernetesVersion, spec.kubernetesVersion, new Date());
    if (upgradeProblem !== undefined) throw new UnprocessableError(upgradeProblem, [{ pointer: '/kubernetesVersion', detail: upgradeProblem }]);
    // The same minor named again takes the patch release Kiln installs today, when the machines run another.
    const branches = updateBranches(cluster, spec, 'kubernetesVersion' in patch);
    if (branches === undefined) return { kind: 'fresh', value: clusterView(cluster), version: cluster.version };
    return beginUpdate(services, cluster, spec, branches, options.request);
  });
}

/**
 * The optional steps an update of the cluster to this order takes, or undefined when it changes nothing. The
 * allow-lists live in security group rules, the pools in Auto Scaling groups and launch templates: their change runs
 * the infrastructure step first, with the machines that leave drained and removed before it and the ones that join
 * awaited after it, and the machines of a pool whose instance type changed replaced one at a time. An upgrade gives
 * every launch template the new release and replaces the machines that run another: the control plane's first (a
 * kubelet may not be newer than the API servers), then the pools'. Naming the same minor again (`namesVersion`)
 * takes the patch release Kiln installs today, when the machines run another. New cluster-wide Pod Security levels
 * live in the API servers' admission configuration, which the control plane's launch template writes and each API
 * server reads only as it starts: the infrastructure step renders them for machines to come, then each running API
 * server takes them in turn. Per-namespace levels are labels, which the add-ons step sets.
 */
export function updateBranches(cluster: ClusterRecord, spec: ClusterSpec, namesVersion: boolean): string[] | undefined {
  const pools = nodePoolChanges(cluster.spec.nodePools, spec.nodePools);
  const release = kubernetesReleaseOf(spec.kubernetesVersion)?.patch;
  const upgrades =
    spec.kubernetesVersion !== cluster.spec.kubernetesVersion || (namesVersion && cluster.status.kubernetesRelease !== undefined && cluster.status.kubernetesRelease !== release);
  if (sameJson(spec, cluster.spec) && !upgrades) return undefined;
  const podSecurityDefaults = !sameJson(podSecurityLevels(spec.podSecurity), podSecurityLevels(cluster.spec.podSecurity));
  const reachesInfrastructure =
    upgrades ||
    pools.changed ||
    podSecurityDefaults ||
    (Object.keys(MUTABLE_ORDER_MEMBERS) as (keyof typeof MUTABLE_ORDER_MEMBERS)[]).some((part) => !sameJson(spec[part], cluster.spec[part]));
  return [
    ...(pools.removesMachines ? ['drain-nodes', 'remove-machines'] : []),
    ...(pools.joinsMachines || pools.rollsMachines || upgrades ? ['join-token'] : []),
    ...(pools.joinsMachines ? ['await-nodes'] : []),
    ...(pools.rollsMachines || upgrades ? ['roll-machines'] : []),
    ...(upgrades ? ['roll-control-plane'] : []),
    ...(podSecurityDefaults ? ['pod-security-defaults'] : []),
    ...(reachesInfrastructure ? ['infrastructure'] : []),
  ];
}

/** Records the cluster Updating to the new order with its update operation, and starts the update workflow. */
export async function beginUpdate(services: KilnServices, cluster: ClusterRecord, spec: ClusterSpec, branches: readonly string[], request?: IdempotentRequest): Promise<Outcome<Cluster>> {
  const { tenantId, id: clusterId } = cluster;
  const now = new Date().toISOString();
  const operation = newOperation(tenantId, clusterId, 'update', now, branches, await plannedMachines(services, cluster, spec, 'update', branches), services.requestId);
  const updating: ClusterRecord = {
    ...cluster,
    spec,
    status: { ...cluster.status, phase: 'Updating', activeOperationId: operation.id },
  };
  const view = clusterView({ ...updating, version: cluster.version + 1, updatedAt: now });
  const claim = request === undefined ? undefined : { ...request, response: request.respond(view, operationView(operation), cluster.version + 1) };
  // What changed, by order field (the new order is in the cluster itself).
  const changed = (Object.keys(spec) as (keyof ClusterSpec)[]).filter((field) => !sameJson(spec[field], cluster.spec[field]));
  const events = [...phaseChange(clusterId, cluster.status.phase, 'Updating'), clusterEvent('cluster.updated', clusterId, { operationId: operation.id, changed })];
  const grows = { clusters: 0, nodes: countedNodes(spec) - countedNodes(cluster.spec) };
  const outcome = await withinQuota(services, tenantId, grows, () => services.store.beginOperation(updating, cluster.version, operation, claim, events));
  return settle(outcome, request, cluster.version + 1, async () => {
    await launch(services, 'update', operation);
    return view;
  });
}
