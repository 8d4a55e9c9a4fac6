import { z } from 'zod';
import { CertManagerSpec, ClusterSpec, ExtensionsSpec, MaintenanceSpec, NodeHealthSpec, PodSecuritySpec } from './cluster-spec.ts';

/** The order fields a PATCH may change: everything the update workflow applies to a running cluster. */
export const MUTABLE_ORDER_FIELDS = ['podSecurity', 'certManager', 'extensions', 'maintenance', 'nodeHealth'] as const;
export type MutableOrderField = (typeof MUTABLE_ORDER_FIELDS)[number];

/** The order fields fixed at creation: a PATCH of one is a 422, and the document marks them `x-kiln-immutable`. */
export const IMMUTABLE_ORDER_FIELDS = Object.keys(ClusterSpec.shape).filter((field) => !(MUTABLE_ORDER_FIELDS as readonly string[]).includes(field));

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
    podSecurity: mergePatchOf(PodSecuritySpec, 'PodSecurityPatch').nullable().optional(),
    certManager: mergePatchOf(CertManagerSpec, 'CertManagerPatch').nullable().optional(),
    extensions: mergePatchOf(ExtensionsSpec, 'ExtensionsPatch').nullable().optional(),
    maintenance: mergePatchOf(MaintenanceSpec, 'MaintenancePatch').nullable().optional(),
    nodeHealth: mergePatchOf(NodeHealthSpec, 'NodeHealthPatch').nullable().optional(),
  } satisfies Record<MutableOrderField, z.ZodType>)
  .meta({
    id: 'ClusterPatch',
    description:
      'A JSON merge patch (RFC 7386) of the order: podSecurity, certManager, extensions, maintenance and nodeHealth can change; `null` puts a member back to its default. ' +
      'Every other order field is fixed at creation (marked x-kiln-immutable in ClusterSpec): a patch naming one is refused with 422.',
    example: { extensions: { intrusionDetection: { enabled: true } } },
  });
export type ClusterPatch = z.infer<typeof ClusterPatch>;
