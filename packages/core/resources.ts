import { z } from 'zod';
import { Quotas } from './limits.ts';
import { ClusterSpec } from './cluster-spec.ts';
import { ERROR_CODES, type ErrorCode } from './errors.ts';
import { newId } from './ids.ts';
import { API_KEY_SCOPES, ApiKeyScope, MAX_API_KEY_LIFETIME_MS } from './scopes.ts';
import { CLUSTER_PHASES, OPERATION_STATES, OPERATION_TYPES, STEP_STATES } from './phases.ts';

/** RFC 9457 problem details, as every error leaves the API and as failed operations record them. */
export const Problem = z
  .object({
    type: z.string().describe('A URI that identifies the problem type.'),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    instance: z.string().optional(),
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]).describe('Stable machine-readable code from a closed list.'),
    requestId: z.string().optional(),
    errors: z
      .array(
        z.object({
          pointer: z.string().optional().describe('JSON pointer (RFC 6901) into the request body.'),
          parameter: z.string().optional().describe('The query or path parameter at fault.'),
          header: z.string().optional().describe('The request header at fault.'),
          detail: z.string(),
        }),
      )
      .optional(),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof Problem>;

export const Condition = z
  .object({
    type: z.string(),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string(),
    message: z.string(),
    lastTransitionTime: z.iso.datetime(),
  })
  .meta({ id: 'Condition' });
export type Condition = z.infer<typeof Condition>;

export const ClusterStatus = z
  .object({
    phase: z.enum(CLUSTER_PHASES),
    conditions: z.array(Condition),
    endpoint: z.string().optional().describe('The Kubernetes API URL, once known.'),
    reason: z.string().optional().describe('Why the cluster is Failed.'),
    activeOperationId: z.string().optional(),
    remediations: z.array(z.string()).optional().describe('The remediate-node operations in flight; no other change starts while one runs.'),
    kubernetesRelease: z
      .string()
      .optional()
      .describe('The Kubernetes patch release every node runs (e.g. v1.35.9), as the last verify step found it; a PATCH naming the same kubernetesVersion rolls the machines to the release Kiln installs today when it differs.'),
    certificates: z
      .object({
        authorityExpiresAt: z.iso.datetime().describe('The cluster CA: ten years from creation. Kiln does not rotate it.'),
        apiServerExpiresAt: z.iso.datetime().describe("The API server's serving certificate, as the API server presents it (kubeadm issues the machines' certificates for a year)."),
        earliestExpiresAt: z.iso.datetime().describe('The earliest of them.'),
        checkedAt: z.iso.datetime(),
      })
      .optional()
      .describe('When the certificates Kiln can see expire, as the last verify step found them.'),
    encryption: z
      .object({
        provider: z.string(),
        kmsKeyArn: z.string().optional().describe("The cluster's own KMS key, in its account and region; Kiln keeps the data keys only wrapped by it."),
        activeKeyId: z.string().describe('The key new Secrets are encrypted with.'),
        keys: z.array(z.string()).describe("The keys in the API servers' EncryptionConfiguration, in order."),
        rotation: z.object({
          phase: z.enum(['Preparing', 'Prepared', 'Completing', 'Completed']).optional(),
          lastInitiatedAt: z.iso.datetime().optional(),
          lastCompletedAt: z.iso.datetime().optional(),
        }),
      })
      .optional()
      .describe('Encryption of Secrets at rest.'),
    ssh: z
      .object({
        publicKey: z.string().describe('The key every machine authorizes.'),
        fingerprint: z.string(),
        privateKeyDownloadable: z.boolean().describe('True until the managed private key has been downloaded once.'),
      })
      .optional(),
  })
  .meta({ id: 'ClusterStatus' });
export type ClusterStatus = z.infer<typeof ClusterStatus>;

/**
 * A cluster as every answer gives it: one shape with the order (POST) and its changes (PATCH), the order's fields
 * at the top level (write-only secrets left out), beside the fields Kiln sets (readOnly in the document). A
 * generator that merges the create body and the read answer by property name (terraform-plugin-codegen-openapi
 * does) gets one attribute per field, and the server-set ones computed.
 */
export const Cluster = ClusterSpec.extend({
  id: z.string().meta({ example: 'cls_01jd8x7t5k3m4n5p6q7r8s9t0v' }),
  status: ClusterStatus,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
}).meta({ id: 'Cluster' });
export type Cluster = z.infer<typeof Cluster>;

/** A machine an operation's step will replace or remove, as planned when the operation started. */
export const PlannedMachine = z
  .object({
    instanceId: z.string().optional(),
    nodeName: z.string().optional(),
    role: z.enum(['control-plane', 'worker']),
    pool: z.string().optional(),
    action: z.enum(['replace', 'remove']),
    reason: z.enum(['KubernetesUpgrade', 'CertificateRenewal', 'InstanceTypeChanged', 'PoolRemoved']),
  })
  .meta({ id: 'PlannedMachine' });
export type PlannedMachine = z.infer<typeof PlannedMachine>;

export const OperationStep = z
  .object({
    name: z.string(),
    state: z.enum(STEP_STATES),
    startedAt: z.iso.datetime().optional(),
    finishedAt: z.iso.datetime().optional(),
    attempts: z.int().describe('How many times the step has started.'),
    planned: z
      .array(PlannedMachine)
      .optional()
      .describe(
        "The machines the step will replace or remove, planned when the operation started from the health poller's last look at the cluster (machines that leave a shrinking pool are chosen when the drain starts). The step looks again when it runs; its outputs show its progress on each machine.",
      ),
    outputs: z.record(z.string(), z.unknown()).optional().describe('What the step produced (no secrets).'),
    error: z
      .string()
      .optional()
      .describe("What the step's last failed attempt said, in Kiln's words (the raw error is in Kiln's logs under the operation's reference)."),
  })
  .meta({ id: 'OperationStep' });
export type OperationStep = z.infer<typeof OperationStep>;

/** The machine a remediate-node operation is about. */
export const RemediationTarget = z
  .object({
    instanceId: z.string(),
    nodeName: z.string().optional(),
    group: z.discriminatedUnion('role', [z.object({ role: z.literal('control-plane') }), z.object({ role: z.literal('worker'), pool: z.string() })]),
    reason: z.enum(['NotReady', 'ReadyUnknown', 'NoNode', 'MachineGone']),
  })
  .meta({ id: 'RemediationTarget' });
export type RemediationTarget = z.infer<typeof RemediationTarget>;

export const Operation = z
  .object({
    id: z.string(),
    type: z.enum(OPERATION_TYPES),
    clusterId: z.string(),
    target: RemediationTarget.optional().describe('For remediate-node: the machine.'),
    state: z.enum(OPERATION_STATES),
    steps: z.array(OperationStep),
    error: Problem.optional(),
    requestId: z.string().optional().describe('The x-request-id of the API request that started it (absent when a schedule did): every log line of its workflow carries it.'),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'Operation' });
export type Operation = z.infer<typeof Operation>;

/** What a tenant's AWS role trusts Kiln with: Kiln's account, on the condition of the tenant's external ID. */
const externalId = z
  .string()
  .describe("Kiln's external ID for this tenant: random, issued by Kiln, fixed for the tenant. Kiln sends it whenever it assumes a role in the tenant's account (account.roleArn), whose trust policy requires it as sts:ExternalId.");

export const Tenant = z
  .object({
    id: z.string(),
    name: z.string(),
    externalId,
    createdAt: z.iso.datetime(),
    suspendedAt: z.iso.datetime().optional().describe("Since when the operator has suspended the tenant: every request with its keys gets 401 until it is resumed."),
  })
  .meta({ id: 'Tenant' });
export type Tenant = z.infer<typeof Tenant>;

export const TenantCreated = Tenant.extend({
  apiKey: z.string().describe('Shown once; Kiln keeps only its hash.'),
  quotas: Quotas.describe("The tenant's quotas: what the order gave, or the deployment's defaults."),
}).meta({ id: 'TenantCreated' });
export type TenantCreated = z.infer<typeof TenantCreated>;

export const AccountTrust = z
  .object({
    kilnAccountId: z.string().describe("Kiln's AWS account: the principal your role's trust policy names."),
    externalId,
    trustPolicy: z.string().describe('A trust policy for your role with both, as JSON: `aws iam create-role --assume-role-policy-document` takes it as it is.'),
  })
  .meta({ id: 'AccountTrust' });
export type AccountTrust = z.infer<typeof AccountTrust>;

export const ApiKey = z
  .object({
    id: z.string().readonly(),
    prefix: z.string().describe('The first characters of the key, to tell keys apart; the rest is never shown again.').readonly(),
    description: z.string().optional(),
    scopes: z.array(ApiKeyScope).describe('What the key may do: every key may read (read-only); clusters, webhooks and keys add the changes to those resources (and clusters the credentials that grant access to a cluster).').readonly(),
    expiresAt: z.iso.datetime().optional().describe('After this time the key gets 401; absent when it does not expire.').readonly(),
    createdAt: z.iso.datetime().readonly(),
    lastUsedAt: z.iso.datetime().optional().describe('When a request last authenticated with it (to within 15 minutes).').readonly(),
  })
  .meta({ id: 'ApiKey' });
export type ApiKey = z.infer<typeof ApiKey>;

export const ApiKeyCreated = ApiKey.extend({
  apiKey: z.string().describe('Shown once; Kiln keeps only its hash.').meta({ format: 'password' }),
}).meta({ id: 'ApiKeyCreated' });
export type ApiKeyCreated = z.infer<typeof ApiKeyCreated>;

export const ApiKeyList = z.object({ items: z.array(ApiKey) }).meta({ id: 'ApiKeyList' });

export const ApiKeyOrder = z
  .strictObject({
    description: z.string().min(1).max(200).optional().describe('What the key is for, e.g. "billing portal".'),
    scopes: z
      .array(ApiKeyScope)
      .min(1)
      .max(API_KEY_SCOPES.length)
      .optional()
      .describe('What the new key may do, at most what the calling key may (403 naming a scope it lacks); read-only is always included. The calling key\'s scopes when absent.'),
    expiresAt: z.iso
      .datetime({ offset: true })
      .optional()
      .describe(`When the new key stops working (RFC 3339): in the future, at most ${String(MAX_API_KEY_LIFETIME_MS / 86_400_000)} days ahead, and no later than the calling key's own expiry. The calling key's expiry (none if it has none) when absent.`),
  })
  .meta({ id: 'ApiKeyOrder' });

export const TenantOrder = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lower-case letters, digits and "-"'),
    quotas: Quotas.optional().describe("What the tenant may hold at once; the deployment's defaults (KILN_QUOTA_CLUSTERS, KILN_QUOTA_NODES) when absent."),
  })
  .meta({ id: 'TenantOrder' });

export const CLUSTER_EVENT_TYPES = [
  'cluster.created',
  'cluster.updated',
  'cluster.ready',
  'cluster.failed',
  'cluster.deleted',
  'cluster.phase_changed',
  'operation.started',
  'operation.succeeded',
  'operation.failed',
  'encryption_key.rotated',
  'cluster.kubeconfig_issued',
  'cluster.ssh_key_downloaded',
  'cluster.kubernetes_version_end_of_life_soon',
  'cluster.kubernetes_version_unsupported',
  'cluster.kubernetes_upgrade_starting',
  'node.unhealthy',
  'node.rebooted',
  'node.recovered',
  'node.replaced',
  'node.removed',
  'remediation.paused',
  'remediation.resumed',
] as const;

/** A domain event: what happened to a cluster, when, and the facts (never secrets). */
export const ClusterEvent = z
  .object({
    id: z.string(),
    type: z.enum(CLUSTER_EVENT_TYPES),
    clusterId: z.string(),
    occurredAt: z.iso.datetime(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'ClusterEvent' });
export type ClusterEvent = z.infer<typeof ClusterEvent>;

/** Events about the tenant as a whole rather than one cluster. */
export const TENANT_EVENT_TYPES = ['usage.reported', 'webhook_endpoint.disabled'] as const;
/** Every event type of the tenant-wide feed and of webhooks. */
export const EVENT_TYPES = [...CLUSTER_EVENT_TYPES, ...TENANT_EVENT_TYPES] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** An event about the tenant as a whole (usage, its webhook endpoints): in the feed, under no cluster. */
export const TenantWideEvent = z.object({
  id: z.string(),
  type: z.enum(TENANT_EVENT_TYPES),
  occurredAt: z.iso.datetime(),
  data: z.record(z.string(), z.unknown()),
});
export type TenantWideEvent = z.infer<typeof TenantWideEvent>;

/** An event in the tenant-wide feed: a cluster's event or a tenant-wide one, with its tenant. */
export const TenantEvent = z
  .object({
    id: z.string(),
    type: z.enum(EVENT_TYPES),
    tenantId: z.string(),
    clusterId: z.string().optional().describe('The cluster it happened to; absent for tenant-wide events (usage.reported, webhook_endpoint.disabled).'),
    occurredAt: z.iso.datetime(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'TenantEvent' });
export type TenantEvent = z.infer<typeof TenantEvent>;

export const EventFeedPage = z
  .object({
    items: z.array(TenantEvent),
    nextCursor: z.string().nullable().describe('Pass as `after` to read on (the last event of this page, or the cursor given when the page is empty); null before the first event.'),
    more: z.boolean().describe('Whether another page is ready now.'),
  })
  .meta({ id: 'EventFeedPage' });
export type EventFeedPage = z.infer<typeof EventFeedPage>;

export function clusterEvent(type: ClusterEvent['type'], clusterId: string, data: Record<string, unknown>, occurredAt = new Date()): ClusterEvent {
  return { id: newId('event'), type, clusterId, occurredAt: occurredAt.toISOString(), data };
}

export function tenantWideEvent(type: TenantWideEvent['type'], data: Record<string, unknown>, occurredAt = new Date()): TenantWideEvent {
  return { id: newId('event'), type, occurredAt: occurredAt.toISOString(), data };
}

/** What each phase a cluster reaches means to an integrator, beside the phase change itself. */
const PHASE_EVENTS: Partial<Record<string, ClusterEvent['type']>> = { Ready: 'cluster.ready', Failed: 'cluster.failed', Deleted: 'cluster.deleted' };

/** The events a phase change emits, if the phase changed: the change, and cluster.ready, .failed or .deleted. */
export function phaseChange(clusterId: string, from: string, to: string, reason?: string): ClusterEvent[] {
  if (from === to) return [];
  const data = { from, to, ...(reason === undefined ? {} : { reason }) };
  const lifecycle = PHASE_EVENTS[to];
  return [clusterEvent('cluster.phase_changed', clusterId, data), ...(lifecycle === undefined ? [] : [clusterEvent(lifecycle, clusterId, data)])];
}

/** The event of an operation that starts, succeeds or fails. */
export function operationEvent(
  operation: { id: string; type: string; clusterId: string; state: string; error?: { code?: string; detail?: string } },
  type: 'operation.started' | 'operation.succeeded' | 'operation.failed',
): ClusterEvent {
  const error = type === 'operation.failed' && operation.error !== undefined ? { error: { code: operation.error.code, detail: operation.error.detail } } : {};
  return clusterEvent(type, operation.clusterId, { operationId: operation.id, operationType: operation.type, state: operation.state, ...error });
}

export const KubernetesVersion = z
  .object({
    version: z.string().describe('The minor, as an order names it in kubernetesVersion.').meta({ example: '1.35' }),
    patchRelease: z.string().describe('The patch release new machines install.').meta({ example: 'v1.35.9' }),
    releaseDate: z.iso.date().describe('When upstream released the minor.'),
    maintenanceModeDate: z.iso.date().describe('From this day upstream ships only critical fixes for the minor.'),
    endOfLifeDate: z.iso
      .date()
      .describe('The last day upstream maintains the minor: after it Kiln builds no new cluster on it, and running clusters get the KubernetesVersionUnsupported condition.'),
    default: z.boolean().describe('Whether an order that names no kubernetesVersion gets this minor.'),
  })
  .meta({ id: 'KubernetesVersion' });
export type KubernetesVersion = z.infer<typeof KubernetesVersion>;

export const KubernetesVersionList = z
  .object({ items: z.array(KubernetesVersion).describe('Oldest first.') })
  .meta({ id: 'KubernetesVersionList' });
export type KubernetesVersionList = z.infer<typeof KubernetesVersionList>;

/** A machine as the health poller saw it. */
export const NodeObservation = z.object({
    name: z.string().optional().describe('The Node object; absent for a machine that has not registered one.'),
    instanceId: z.string().optional().describe('The EC2 instance, from the node\'s provider ID.'),
    role: z.enum(['control-plane', 'worker']),
    pool: z.string().optional(),
    zone: z.string().optional(),
    kubeletVersion: z.string().optional(),
    health: z.enum(['Healthy', 'Watching', 'Unhealthy']).describe('Watching: not Ready (or not registered), but not for long enough to act on.'),
    reason: z.enum(['NotReady', 'ReadyUnknown', 'NoNode', 'MachineGone']).optional(),
    since: z.iso.datetime().optional().describe('Since when the node has been in this state.'),
});
export type NodeObservation = z.infer<typeof NodeObservation>;

export const NodeRemediation = z
  .object({
    operationId: z.string().describe('The remediate-node operation: GET /v1/operations/{operationId} shows its steps.'),
    state: z.enum(OPERATION_STATES),
    lastStep: z.string().optional().describe('The step it took last, for example reboot or retire.'),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'NodeRemediation' });
export type NodeRemediation = z.infer<typeof NodeRemediation>;

export const ClusterNode = NodeObservation.extend({
  lastRemediation: NodeRemediation.optional().describe('The newest remediation of this machine, if Kiln has remediated it.'),
}).meta({ id: 'ClusterNode' });
export type ClusterNode = z.infer<typeof ClusterNode>;

export const ClusterNodeList = z
  .object({
    items: z.array(ClusterNode),
    remediationPaused: z.array(z.string()).describe('Why unhealthy machines are left alone, if they are (empty while remediation may act).'),
    observedAt: z.iso.datetime().optional().describe('When the health poller last saw a change; absent before its first look.'),
  })
  .meta({ id: 'ClusterNodeList' });
export type ClusterNodeList = z.infer<typeof ClusterNodeList>;

/** What a workflow execution receives and passes between steps. */
export const WorkflowInput = z.object({
  tenantId: z.string(),
  clusterId: z.string(),
  operationId: z.string(),
  /**
   * The API request that started the operation (its x-request-id; the operation's id when a schedule started it):
   * every step's Parameters pass it on, and every step's log lines carry it.
   */
  requestId: z.string().optional(),
  /** An update whose change reaches the infrastructure (allow-lists, node pools, launch templates): the workflow runs Pulumi before the add-ons. */
  infrastructure: z.boolean().optional(),
  /** An update that removes machines (a pool shrinks or goes): they are drained and removed before Pulumi runs. */
  removesMachines: z.boolean().optional(),
  /** An update that adds or replaces machines: they get a fresh join token first. */
  joinsMachines: z.boolean().optional(),
  /** An update that adds machines (a pool grows or is added): they are awaited Ready after the infrastructure step. */
  awaitsNodes: z.boolean().optional(),
  /** An update that replaces a pool's machines (its instance type changed), one at a time with a surge machine. */
  rollsMachines: z.boolean().optional(),
  /** An update or certificate renewal that replaces the control plane machines, one at a time with a surge machine. */
  rollsControlPlane: z.boolean().optional(),
  /** An update of the cluster-wide Pod Security levels: each API server takes the new admission configuration, one at a time. */
  changesPodSecurityDefaults: z.boolean().optional(),
});
export type WorkflowInput = z.infer<typeof WorkflowInput>;
