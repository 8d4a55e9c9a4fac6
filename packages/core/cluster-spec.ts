import { z } from 'zod';
import { DEFAULT_KUBERNETES_VERSION } from './kubernetes-versions.ts';

/**
 * The cluster order: one zod source for the API body, the OpenAPI document,
 * the stored spec and the workflow inputs. Shape errors are 400s; the
 * cross-field rules in `order-rules.ts` are 422s.
 */

const dnsLabel = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[a-z]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label: lower-case letters, digits and "-", starting with a letter');

const instanceType = z
  .string()
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an EC2 instance type such as m7i.large')
  .max(32);

const cidr = z.cidrv4({ message: 'must be an IPv4 CIDR block such as 10.0.0.0/16' });

/** A list used as a set: a repeated item is refused, and the document says `uniqueItems`. */
export function setOf<T extends z.ZodType>(item: T) {
  return z
    .array(item)
    .refine((items) => new Set(items.map((value) => JSON.stringify(value))).size === items.length, 'must not repeat an item')
    .meta({ uniqueItems: true });
}


const labelKey = z
  .string()
  .max(253)
  .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, 'must be a Kubernetes label key');
const labelValue = z
  .string()
  .max(63)
  .regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, 'must be a Kubernetes label value');

export const Taint = z
  .strictObject({
    key: labelKey,
    value: labelValue.optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
  })
  .meta({ id: 'Taint' });

export const NodePoolSpec = z
  .strictObject({
    name: dnsLabel(24),
    instanceType: instanceType.default('m7i.large'),
    size: z.int().min(0).max(500).describe('Desired number of nodes.'),
    min: z.int().min(0).max(500).optional().describe('Lower bound for autoscaling; defaults to size.'),
    max: z.int().min(0).max(500).optional().describe('Upper bound for autoscaling; defaults to size.'),
    labels: z.record(labelKey, labelValue).default({}),
    taints: z.array(Taint).max(20).default([]),
  })
  .meta({ id: 'NodePoolSpec' });

export const ControlPlaneSpec = z
  .strictObject({
    replicas: z
      .int()
      .min(1)
      .max(7)
      .default(3)
      .describe('Control plane machines: 1, 3 or 5 (an odd number keeps etcd quorum).'),
    instanceType: instanceType.default('m7i.large'),
  })
  .meta({ id: 'ControlPlaneSpec' });

export const NetworkSpec = z
  .strictObject({
    routingMode: z
      .enum(['tunnel', 'native'])
      .default('tunnel')
      .describe('Cilium routing: VXLAN tunnel. `native` (VPC routing) is refused with a 422 that says why: the VPC would need ENI IPAM or a route per node, which Kiln does not set up.'),
    vpcCidr: cidr.default('10.0.0.0/16'),
    podCidr: cidr.default('10.244.0.0/16'),
    serviceCidr: cidr.default('10.96.0.0/12'),
    apiAllowedCidrs: setOf(cidr)
      .min(1)
      .max(50)
      .default(['0.0.0.0/0'])
      .describe('Source ranges allowed to reach the Kubernetes API load balancer (the only internet entrypoint).'),
  })
  .meta({ id: 'NetworkSpec' });

export const TransparentEncryptionSpec = z
  .strictObject({
    enabled: z.boolean().default(true),
    type: z.literal('wireguard').default('wireguard'),
    strictMode: z.boolean().default(true).describe('Drop unencrypted pod-to-pod traffic.'),
    nodeEncryption: z.boolean().default(true).describe('Encrypt node-to-node traffic too.'),
  })
  .meta({ id: 'TransparentEncryptionSpec' });

export const AT_REST_PROVIDERS = ['kms', 'aesgcm', 'aescbc', 'secretbox'] as const;

export const AtRestEncryptionSpec = z
  .strictObject({
    provider: z.enum(AT_REST_PROVIDERS).default('secretbox'),
    keySource: z.enum(['generated', 'user', 'kms']).default('generated'),
    key: z
      .base64()
      .optional()
      .meta({ writeOnly: true, format: 'password', description: 'Base64 key material when keySource is user. Never returned.' }),
    kmsKeyArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/, 'must be a KMS key ARN')
      .optional(),
    rotationPeriodDays: z.int().min(1).max(365).optional().describe('Rotate the data key automatically this often.'),
  })
  .meta({ id: 'AtRestEncryptionSpec' });

export const EncryptionSpec = z
  .strictObject({
    transparent: TransparentEncryptionSpec.prefault({}),
    atRest: AtRestEncryptionSpec.prefault({}),
  })
  .meta({ id: 'EncryptionSpec' });

const sshPublicKey = z
  .string()
  .max(16 * 1024)
  .regex(
    /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/,
    'must be one OpenSSH public key line',
  );

export const SshSpec = z
  .strictObject({
    mode: z.enum(['managed', 'self-managed']).default('managed'),
    publicKey: sshPublicKey.optional().describe('Required when mode is self-managed.'),
    allowedCidrs: setOf(cidr).max(20).default([]).describe('Source ranges allowed to reach port 22; none by default.'),
  })
  .meta({ id: 'SshSpec' });

export const PSA_LEVELS = ['privileged', 'baseline', 'restricted'] as const;
export const PSA_MODES = ['enforce', 'audit', 'warn'] as const;

/**
 * The three Pod Security Admission modes, each with a level of its own: enforce refuses a pod below it, audit records
 * it in the audit log, warn tells whoever creates it. Kubernetes takes any combination; a warn or audit level stricter
 * than enforce shows what a stricter level would refuse before it is enforced (one looser than enforce adds nothing,
 * and is accepted as Kubernetes accepts it).
 */
const psaModeLevels = {
  enforce: z.enum(PSA_LEVELS).optional().describe('The level a pod must meet to be admitted.'),
  audit: z.enum(PSA_LEVELS).optional().describe('The level below which a pod is recorded in the API server audit log (and still admitted).'),
  warn: z.enum(PSA_LEVELS).optional().describe('The level below which whoever creates a pod (or a workload) is warned (and it is still admitted).'),
};

export const PodSecurityNamespaceSpec = z
  .strictObject({
    level: z.enum(PSA_LEVELS).optional().describe('Shorthand for the modes below that are not set: with mode enforce (the default) every mode at this level, with audit or warn only audit and warn.'),
    mode: z.enum(PSA_MODES).optional().describe('How level applies; enforce when not set.'),
    ...psaModeLevels,
  })
  .meta({
    id: 'PodSecurityNamespaceSpec',
    description: "A namespace's own Pod Security levels, set as its labels; a mode it does not set follows the cluster-wide default.",
  });

export const PodSecuritySpec = z
  .strictObject({
    defaultLevel: z
      .enum(PSA_LEVELS)
      .default('restricted')
      .describe('Shorthand for the cluster-wide level of each mode that enforce, audit or warn does not set: enforce (with defaultMode enforce), audit and warn.'),
    defaultMode: z
      .enum(PSA_MODES)
      .default('enforce')
      .describe('How defaultLevel applies: enforce refuses pods below it, and audits and warns; audit or warn only audits and warns (enforce privileged).'),
    ...psaModeLevels,
    namespaces: z.record(dnsLabel(63), PodSecurityNamespaceSpec).default({}).describe('Per-namespace overrides of the cluster-wide levels.'),
  })
  .meta({
    id: 'PodSecuritySpec',
    description:
      'Pod Security Admission: the cluster-wide level of each mode, which every namespace without a label of its own gets (the API servers\' admission configuration), and per-namespace overrides (namespace labels). enforce, audit and warn set one mode each; the others follow defaultLevel and defaultMode.',
  });

export const AcmeIssuerSpec = z
  .strictObject({
    name: dnsLabel(63),
    server: z.url({ protocol: /^https$/, message: 'must be an https URL' }).max(2048),
    email: z.email(),
    ingressClass: z.string().max(63).default('nginx'),
  })
  .meta({ id: 'AcmeIssuerSpec' });

export const CertManagerSpec = z
  .strictObject({
    enabled: z.boolean().default(true),
    caIssuer: z.boolean().default(true).describe('A ClusterIssuer backed by a per-cluster CA.'),
    acmeIssuers: z.array(AcmeIssuerSpec).max(10).default([]),
  })
  .meta({ id: 'CertManagerSpec' });

export const ExtensionsSpec = z
  .strictObject({
    policyEngine: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}).describe('Kyverno.'),
    intrusionDetection: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}).describe('Tetragon.'),
  })
  .meta({ id: 'ExtensionsSpec' });

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

export const MaintenanceSpec = z
  .strictObject({
    window: z
      .strictObject({
        days: setOf(z.enum(WEEKDAYS)).min(1).max(7).default([...WEEKDAYS]),
        start: z
          .string()
          .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (UTC)')
          .default('03:00'),
        durationMinutes: z.int().min(30).max(720).default(240),
      })
      .prefault({}),
    autoUpdate: z
      .boolean()
      .default(true)
      .describe(
        'Unattended security upgrades inside the window; kured reboots the nodes that need it there, one at a time, drained first. When the cluster\'s Kubernetes minor is past its end of life, Kiln upgrades it to the next minor inside the window (a cluster.kubernetes_upgrade_starting event first).',
      ),
  })
  .meta({ id: 'MaintenanceSpec' });

/**
 * How Kiln heals the cluster's machines: when a node counts as unhealthy,
 * how many may be at once before Kiln stops acting, how many it remediates
 * together, and whether it reboots before it replaces.
 */
export const NodeHealthSpec = z
  .strictObject({
    enabled: z.boolean().default(true),
    unhealthyTimeoutMinutes: z.int().min(1).max(120).default(5),
    nodeStartupTimeoutMinutes: z.int().min(5).max(120).default(20),
    maxUnhealthyPercent: z.int().min(0).max(100).default(40),
    maxInFlight: z.int().min(1).max(10).default(1),
    rebootBeforeReplace: z.boolean().default(true),
  })
  .meta({
    id: 'NodeHealthSpec',
    description:
      'Node health checks and machine remediation. A node not Ready for unhealthyTimeoutMinutes, a machine with no node after nodeStartupTimeoutMinutes, or a Node whose machine is gone is unhealthy. Kiln reboots it first (rebootBeforeReplace), then drains and replaces it through its Auto Scaling group; at most maxInFlight at once per cluster, nothing in a pool with more than maxUnhealthyPercent unhealthy, three remediations per pool a day. enabled: false turns remediation off; the verdicts are still shown.',
  });

export const AccountSpec = z
  .strictObject({
    roleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'must be an IAM role ARN')
      .describe("A role in the tenant account (never Kiln's own) whose trust policy lets Kiln's account assume it with the tenant's external ID (GET /v1/account-trust); Kiln assumes it to build the cluster there."),
    externalId: z
      .string()
      .min(2)
      .max(1224)
      .regex(/^[\w+=,.@:/-]+$/, 'must be letters, digits or +=,.@:/-')
      .optional()
      .readonly()
      .describe(
        "The external ID Kiln sends when it assumes the role: Kiln issues one per tenant (GET /v1/account-trust shows it) and records it here; an order never gives one, so no tenant can present another's (confused-deputy protection).",
      ),
  })
  .meta({ id: 'AccountSpec' });

export const ClusterSpec = z
  .strictObject({
    name: dnsLabel(40).describe('Unique per tenant.'),
    region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS region such as eu-central-1'),
    kubernetesVersion: z
      .string()
      .regex(/^1\.\d{1,3}$/, 'must be a Kubernetes minor version such as 1.35')
      .default(DEFAULT_KUBERNETES_VERSION)
      .describe(
        'The Kubernetes minor; Kiln installs its latest patch release. GET /v1/kubernetes-versions lists the minors Kiln offers today; a minor past its end of life is refused with 422.',
      ),
    controlPlane: ControlPlaneSpec.prefault({}),
    nodePools: z.array(NodePoolSpec).min(1).max(20),
    network: NetworkSpec.prefault({}),
    encryption: EncryptionSpec.prefault({}).describe('Keys rotate through POST /v1/clusters/{id}/encryption-key-rotations.'),
    ssh: SshSpec.prefault({}),
    podSecurity: PodSecuritySpec.prefault({}),
    certManager: CertManagerSpec.prefault({}),
    extensions: ExtensionsSpec.prefault({}),
    maintenance: MaintenanceSpec.prefault({}),
    nodeHealth: NodeHealthSpec.prefault({}),
    account: AccountSpec.optional().describe("Build in the tenant's own AWS account instead of Kiln's."),
  })
  .meta({
    id: 'ClusterSpec',
    example: { name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }] },
  });

/** What a client sends (defaults not yet applied). */
export type ClusterOrder = z.input<typeof ClusterSpec>;
/** A complete order with every default applied; what is stored and what workflows read. */
export type ClusterSpec = z.output<typeof ClusterSpec>;
export type NodePoolSpec = z.output<typeof NodePoolSpec>;
