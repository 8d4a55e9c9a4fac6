import { ClusterIssuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Secret, ServiceAccount } from 'kubernetes-models/v1';
import { z } from 'zod';
import { objectRef } from './addon.ts';
import type { Manifest } from './kube.ts';

/** An object Kiln rendered that its schema rejects: a bug in Kiln, never the user's order. */
export class InvalidAddonObjectError extends Error {
  constructor(
    readonly object: string,
    readonly detail: string,
  ) {
    super(`${object} is not a valid object: ${detail}`);
    this.name = 'InvalidAddonObjectError';
  }
}

interface Validatable {
  validate(): void;
}
type ModelConstructor = new (data: never) => Validatable;

const MODELS: Record<string, ModelConstructor> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'cert-manager.io/v1/ClusterIssuer': ClusterIssuer,
};

const metadata = z.looseObject({ name: z.string().min(1).max(253), namespace: z.string().min(1).optional() });

/** kubernetes-models has no types for these kinds, so their shape is checked here, as far as Kiln relies on it. */
export const HelmChartSchema = z.strictObject({
  apiVersion: z.literal('helm.cattle.io/v1'),
  kind: z.literal('HelmChart'),
  metadata: metadata.extend({ namespace: z.literal('kube-system') }),
  spec: z.strictObject({
    chart: z.string().min(1),
    repo: z.url({ protocol: /^https$/ }),
    // A pinned version: an exact semver, never a range or "latest".
    version: z.string().regex(/^v?\d+\.\d+\.\d+$/),
    targetNamespace: z.string().min(1),
    // Pinned by tag, like the charts.
    jobImage: z.string().regex(/^[\w./-]+:[\w.-]+$/).refine((image) => !image.endsWith(':latest'), 'must be a pinned tag'),
    createNamespace: z.boolean().optional(),
    bootstrap: z.boolean().optional(),
    valuesContent: z.string(),
  }),
});

export const ClusterPolicySchema = z.strictObject({
  apiVersion: z.literal('kyverno.io/v1'),
  kind: z.literal('ClusterPolicy'),
  metadata,
  spec: z.strictObject({
    validationFailureAction: z.enum(['Enforce', 'Audit']).optional(),
    background: z.boolean(),
    rules: z
      .array(
        z.strictObject({
          name: z.string().min(1),
          match: z.strictObject({ any: z.array(z.looseObject({ resources: z.looseObject({ kinds: z.array(z.string()).min(1) }) })).min(1) }),
          exclude: z.looseObject({}).optional(),
          validate: z.looseObject({
            failureAction: z.enum(['Enforce', 'Audit']).optional(),
            message: z.string().optional(),
            podSecurity: z.strictObject({ level: z.enum(['privileged', 'baseline', 'restricted']), version: z.string() }).optional(),
            pattern: z.looseObject({}).optional(),
            foreach: z.array(z.looseObject({})).optional(),
          }),
        }),
      )
      .min(1),
  }),
});

/** Tetragon's matchArgs/matchData entry: an argument (or data field) by index, an operator and at most 4 values (pkg/selectors/kernel.go). */
const tracingArgFilter = z.strictObject({ index: z.int().min(0), operator: z.enum(['Equal', 'NotEqual', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix', 'GT', 'LT', 'Mask']), values: z.array(z.string()).min(1).max(4) });

const tracingSelector = z.strictObject({
  matchArgs: z.array(tracingArgFilter).optional(),
  matchData: z.array(tracingArgFilter).optional(),
  matchNamespaces: z.array(z.strictObject({ namespace: z.enum(['Uts', 'Ipc', 'Mnt', 'Pid', 'PidForChildren', 'Net', 'Time', 'TimeForChildren', 'Cgroup', 'User']), operator: z.enum(['In', 'NotIn']), values: z.array(z.string()).min(1).max(4) })).optional(),
  matchActions: z.array(z.strictObject({ action: z.enum(['Sigkill', 'Post', 'Override', 'Signal']) })).min(1),
}).refine((selector) => (selector.matchArgs?.length ?? 0) + (selector.matchData?.length ?? 0) <= 5, 'Tetragon takes at most 5 matchArgs and matchData filters per selector');

export const TracingPolicySchema = z.strictObject({
  apiVersion: z.literal('cilium.io/v1alpha1'),
  kind: z.literal('TracingPolicy'),
  metadata,
  spec: z.strictObject({
    kprobes: z
      .array(
        z
          .strictObject({
            call: z.string().min(1),
            syscall: z.boolean(),
            args: z.array(z.strictObject({ index: z.int().min(0).max(4), type: z.string() })),
            // Fields of the current task, read at the hook (the only source Tetragon has for data).
            data: z.array(z.strictObject({ index: z.int().min(0), type: z.string(), source: z.literal('current_task'), resolve: z.string().min(1) })).optional(),
            // Tetragon loads at most 5 selectors per hook.
            selectors: z.array(tracingSelector).min(1).max(5),
          })
          .refine((kprobe) => kprobe.args.length + (kprobe.data?.length ?? 0) <= 5, 'Tetragon takes at most 5 args and data per hook'),
      )
      .min(1),
  }),
});

const SCHEMAS: Record<string, z.ZodType> = {
  'helm.cattle.io/v1/HelmChart': HelmChartSchema,
  'kyverno.io/v1/ClusterPolicy': ClusterPolicySchema,
  'cilium.io/v1alpha1/TracingPolicy': TracingPolicySchema,
};

/** Throws InvalidAddonObjectError unless the object matches the schema of its kind; a kind Kiln has no schema for is refused too. */
export function validateObject(object: Manifest): Manifest {
  const key = `${object.apiVersion}/${object.kind}`;
  const model = MODELS[key];
  if (model !== undefined) {
    try {
      new model(structuredClone(object) as never).validate();
    } catch (error) {
      throw new InvalidAddonObjectError(objectRef(object), error instanceof Error ? error.message : String(error));
    }
    return object;
  }
  const schema = SCHEMAS[key];
  if (schema === undefined) throw new InvalidAddonObjectError(objectRef(object), `Kiln has no schema for ${key}`);
  const parsed = schema.safeParse(object);
  if (!parsed.success) throw new InvalidAddonObjectError(objectRef(object), z.prettifyError(parsed.error));
  return object;
}
