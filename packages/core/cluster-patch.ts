import { z } from 'zod';
import { sameJson } from './values.ts';
import { CertManagerSpec, ClusterSpec, ExtensionsSpec, MaintenanceSpec, NetworkSpec, NodeHealthSpec, NodePoolSpec, PodSecuritySpec, SshSpec } from './cluster-spec.ts';

/** The order fields a PATCH may change: everything the update workflow applies to a running cluster. */
export const MUTABLE_ORDER_FIELDS = ['kubernetesVersion', 'podSecurity', 'certManager', 'extensions', 'maintenance', 'nodeHealth', 'nodePools'] as const;
export type MutableOrderField = (typeof MUTABLE_ORDER_FIELDS)[number];

/**
 * Order parts of which some members can change, and those members. Each reaches the infrastructure (security group
 * rules), so an update that changes one runs Pulumi again before the add-ons.
 */
export const MUTABLE_ORDER_MEMBERS = { network: ['apiAllowedCidrs'], ssh: ['allowedCidrs'] } as const satisfies Partial<Record<keyof ClusterSpec, readonly string[]>>;
export type PartlyMutableField = keyof typeof MUTABLE_ORDER_MEMBERS;

const PARTS: Record<PartlyMutableField, z.ZodObject> = { network: NetworkSpec, ssh: SshSpec };

/** The order fields fixed at creation: a PATCH of one is a 422, and the document marks them `x-kiln-immutable`. */
export const IMMUTABLE_ORDER_FIELDS = Object.keys(ClusterSpec.shape).filter(
  (field) => !(MUTABLE_ORDER_FIELDS as readonly string[]).includes(field) && !(field in MUTABLE_ORDER_MEMBERS),
);

/** What a 422 for a change of something fixed at creation says. */
export const FIXED_AT_CREATION = `Only ${[...MUTABLE_ORDER_FIELDS, ...Object.entries(MUTABLE_ORDER_MEMBERS).flatMap(([part, members]) => members.map((member) => `${part}.${member}`))].join(', ')} can change after a cluster is created.`;

/** What a change of the node pools does to the machines, which decides the steps of its update. */
export interface NodePoolChanges {
  /** A pool shrinks or goes: its leaving machines are drained and removed before Pulumi runs. */
  removesMachines: boolean;
  /** A pool grows or is added: its new machines need a fresh join token, and the update waits for them. */
  joinsMachines: boolean;
  /** A pool's machines change what they are (its instance type): each is replaced, a new one Ready before the old goes. */
  rollsMachines: boolean;
  /** Anything of the pools changed: their Auto Scaling groups and launch templates are declared again. */
  changed: boolean;
}

/** Compares the pools by name: a name not there before is a new pool, a name gone is a removed one. */
export function nodePoolChanges(before: readonly NodePoolSpec[], after: readonly NodePoolSpec[]): NodePoolChanges {
  const earlier = new Map(before.map((pool) => [pool.name, pool]));
  const later = new Map(after.map((pool) => [pool.name, pool]));
  return {
    removesMachines: before.some((pool) => pool.size > (later.get(pool.name)?.size ?? 0)),
    joinsMachines: after.some((pool) => pool.size > (earlier.get(pool.name)?.size ?? 0)),
    rollsMachines: after.some((pool) => {
      const old = earlier.get(pool.name);
      return old !== undefined && old.size > 0 && pool.size > 0 && old.instanceType !== pool.instanceType;
    }),
    changed: !sameJson(before, after),
  };
}

/** The members of a partly mutable part that are fixed at creation (a PATCH of one is a 422 naming it). */
export function immutableMembersOf(part: PartlyMutableField): string[] {
  const mutable: readonly string[] = MUTABLE_ORDER_MEMBERS[part];
  return Object.keys(PARTS[part].shape).filter((member) => !mutable.includes(member));
}

export function isPartlyMutable(field: string): field is PartlyMutableField {
  return field in MUTABLE_ORDER_MEMBERS;
}

/** The schema without what only shapes a full order: defaults, prefaults and optionality. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let inner = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
  return inner;
}

/**
 * The JSON merge patch (RFC 7386) of an order part: every member optional, `null` removes it (back to its default),
 * objects patch member by member, lists and scalars replace. Unknown members are refused as in an order.
 */
function mergePatchOf(schema: z.ZodType, id?: string): z.ZodType {
  const inner = unwrapped(schema);
  let patch: z.ZodType;
  if (inner instanceof z.ZodObject) {
    const shape = Object.fromEntries(Object.entries(inner.shape as Record<string, z.ZodType>).map(([name, member]) => [name, mergePatchOf(member).nullable().optional()]));
    patch = z.strictObject(shape);
  } else if (inner instanceof z.ZodRecord) {
    patch = z.record(inner.keyType as z.ZodString, mergePatchOf(inner.valueType as z.ZodType).nullable());
  } else {
    patch = inner;
  }
  const description = schema.description ?? inner.description;
  return patch.meta({ ...(id === undefined ? {} : { id }), ...(description === undefined ? {} : { description }) });
}

/**
 * The body of PATCH /v1/clusters/{id}: a merge patch of the order's mutable parts, nothing else. The patched order is
 * validated again as a whole (cross-field rules included) before anything changes.
 */
export const ClusterPatch = z
  .strictObject({
    kubernetesVersion: unwrapped(ClusterSpec.shape.kubernetesVersion)
      .optional()
      .describe(
        'The Kubernetes minor to run: the next minor (one at a time; a skip or going back is refused with 422, as is a minor Kiln does not offer today), or the same minor to take the patch release Kiln installs today. ' +
          'The control plane machines are replaced first, one at a time (a new one joins before an old one leaves, so etcd keeps its quorum and the API stays reachable), then each pool\'s, a new machine Ready before an old one is drained and removed.',
      ),
    podSecurity: mergePatchOf(PodSecuritySpec, 'PodSecurityPatch').nullable().optional(),
    certManager: mergePatchOf(CertManagerSpec, 'CertManagerPatch').nullable().optional(),
    extensions: mergePatchOf(ExtensionsSpec, 'ExtensionsPatch').nullable().optional(),
    maintenance: mergePatchOf(MaintenanceSpec, 'MaintenancePatch').nullable().optional(),
    nodeHealth: mergePatchOf(NodeHealthSpec, 'NodeHealthPatch').nullable().optional(),
    // A list replaces the whole list in a merge patch: the pools as they should be, matched with today's by name.
    nodePools: z
      .array(NodePoolSpec)
      .min(1)
      .max(20)
      .optional()
      .describe(
        'Every node pool as it should be (a merge patch replaces the list), matched by name: a new name adds a pool, a missing one removes it (its nodes are drained first), size, min, max, labels and taints change in place, and a new instanceType replaces the pool\'s machines one at a time (a new one Ready before an old one is drained and removed).',
      ),
    network: mergePatchOf(NetworkSpec.pick({ apiAllowedCidrs: true }), 'NetworkPatch').optional(),
    ssh: mergePatchOf(SshSpec.pick({ allowedCidrs: true }), 'SshPatch').optional(),
  } satisfies Record<MutableOrderField | PartlyMutableField, z.ZodType>)
  .meta({
    id: 'ClusterPatch',
    description:
      'A JSON merge patch (RFC 7386) of the order: kubernetesVersion, podSecurity, certManager, extensions, maintenance, nodeHealth, nodePools, network.apiAllowedCidrs and ssh.allowedCidrs can change; `null` puts a member back to its default. ' +
      'A new kubernetesVersion upgrades the control plane machines first, then the pools, by rolling replacement. ' +
      'A change of an allow-list updates the security group rules in place (the update runs its infrastructure step first). ' +
      'A change of the node pools drains and removes the machines that leave, runs the infrastructure step, waits for the machines that join, and replaces the machines of a pool whose instance type changed. ' +
      'A change of the cluster-wide Pod Security levels runs the infrastructure step (the control plane launch template writes them) and restarts each API server in turn, which loads them only as it starts; namespace overrides are labels, set by the add-ons step. ' +
      'Every other order field is fixed at creation (marked x-kiln-immutable in the order): a patch naming one is refused with 422.',
    example: { extensions: { intrusionDetection: { enabled: true } } },
  });
export type ClusterPatch = z.infer<typeof ClusterPatch>;
