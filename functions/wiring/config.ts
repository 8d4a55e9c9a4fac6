import { z } from 'zod';
import { DEFAULT_INFRASTRUCTURE_CONCURRENCY, DEFAULT_QUOTAS, DEFAULT_RATE_POLICY, KMS_PLUGIN_IMAGE_REFERENCE } from '#core';

/**
 * Everything Kiln reads from its environment, in one place. Production and
 * local mode differ only in these values (local mode points the endpoints at
 * the sandbox), never in code paths.
 */
export const KilnConfig = z.object({
  KILN_TABLE_NAME: z.string().min(3).default('kiln'),
  AWS_REGION: z.string().default('us-east-1'),
  KILN_DYNAMODB_ENDPOINT: z.url().optional(),
  KILN_STEPFUNCTIONS_ENDPOINT: z.url().optional(),
  KILN_KMS_ENDPOINT: z.url().optional(),
  KILN_SSM_ENDPOINT: z.url().optional(),
  KILN_STS_ENDPOINT: z.url().optional(),
  /** EC2 and Auto Scaling (local mode serves both on one endpoint). */
  KILN_EC2_ENDPOINT: z.url().optional(),
  KILN_SQS_ENDPOINT: z.url().optional(),
  KILN_WEBHOOK_QUEUE_URL: z.url().optional().describe('The SQS queue the webhook dispatcher puts due deliveries on (the dispatcher only).'),
  KILN_PROVISION_STATE_MACHINE_ARN: z.string().min(1),
  KILN_DEPROVISION_STATE_MACHINE_ARN: z.string().min(1),
  KILN_UPDATE_STATE_MACHINE_ARN: z.string().min(1),
  KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: z.string().min(1),
  KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: z.string().min(1),
  KILN_SEALING_KEY_ID: z.string().min(1).describe('KMS key that wraps secrets Kiln keeps for tenants.'),
  KILN_ACCOUNT_ID: z
    .string()
    .regex(/^\d{12}$/, 'must be a 12-digit AWS account id')
    .describe("Kiln's own AWS account: what tenants' roles trust, and an account no order's role or KMS key may name unless the cluster is built there."),
  KILN_ADMIN_TOKEN_SHA256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional()
    .describe('SHA-256 of the admin bearer token; without it the admin API is closed.'),
  KILN_POLL_SECONDS: z.coerce.number().int().min(1).max(300).default(15),
  KILN_PUBLIC_URL: z.url().optional(),
  KILN_PULUMI_BACKEND_URL: z.string().startsWith('s3://').optional().describe('Pulumi state backend (production infrastructure runner).'),
  KILN_PULUMI_SECRETS_PROVIDER: z.string().startsWith('awskms://').optional().describe('Pulumi secrets provider for stack state.'),
  KILN_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  KILN_WEBHOOK_ALLOW_LOOPBACK: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true')
    .describe('Local mode only: deliver webhooks to receivers on 127.0.0.1 or ::1 (never the metadata address).'),
  KILN_WEBHOOK_PORTS: z
    .string()
    .default('443')
    .transform((value) => value.split(',').map((port) => port.trim()).filter((port) => port !== '').map(Number))
    .pipe(z.array(z.number().int().min(1).max(65_535)).min(1))
    .describe("Comma-separated ports a webhook URL may name; https's own (443) by default."),
  KILN_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0.01).max(10_000).default(DEFAULT_RATE_POLICY.perSecond).describe('Requests a tenant may send a second on average.'),
  KILN_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(100_000).default(DEFAULT_RATE_POLICY.burst).describe('Requests a tenant may send at once after a quiet spell.'),
  KILN_INFRASTRUCTURE_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(DEFAULT_INFRASTRUCTURE_CONCURRENCY)
    .describe("Infrastructure runs (Fargate tasks) at once across all tenants, within the account's Fargate quota; more orders wait their turn, fairly across tenants."),
  KILN_QUOTA_CLUSTERS: z.coerce.number().int().min(0).default(DEFAULT_QUOTAS.clusters).describe('Clusters a tenant may hold, unless the admin gave it its own quotas.'),
  KILN_QUOTA_NODES: z.coerce.number().int().min(0).default(DEFAULT_QUOTAS.nodes).describe("Nodes a tenant's clusters may grow to, unless the admin gave it its own quotas."),
  KILN_EGRESS_CIDRS: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((cidr) => cidr.trim()).filter((cidr) => cidr !== ''))
    .pipe(z.array(z.cidrv4({ message: 'must be an IPv4 CIDR block such as 198.51.100.7/32' })))
    .describe(
      "Comma-separated public addresses Kiln's functions reach clusters from (its NAT gateways' Elastic IPs, as /32): every cluster's API load balancer admits them, whatever the order's apiAllowedCidrs.",
    ),
  KILN_KMS_PLUGIN_IMAGE: z
    .string()
    .regex(KMS_PLUGIN_IMAGE_REFERENCE, 'must be an image reference pinned by digest, such as public.ecr.aws/example/aws-encryption-provider@sha256:<64 hex digits>')
    .optional()
    .describe('The aws-encryption-provider image (v1.33.0, which its project does not publish) the machines pull, pinned by digest: without it orders with the kms at-rest provider are refused.'),
  KILN_CORS_ORIGINS: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((origin) => origin.trim()).filter((origin) => origin !== ''))
    .pipe(z.array(z.string().regex(/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/, 'must be an origin such as https://portal.example.com (scheme, host, optional port)')))
    .describe('Comma-separated browser origins allowed to call the API (CORS); none by default.'),
});
export type KilnConfig = z.infer<typeof KilnConfig>;

export function loadConfig(environment: Record<string, string | undefined> = process.env): KilnConfig {
  // Parsed once per cold start: zod's compiled fast path would cost more to build than it saves.
  const parsed = KilnConfig.safeParse(environment, { jitless: true });
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new Error(`Kiln is misconfigured: ${fields}`);
  }
  return parsed.data;
}
