import type { Logger, Metrics, RatePolicy } from '#core';
import type { SecretSealer } from '#encryption';
import type { KilnStore } from '#store';
import type { AddressPolicy } from '#webhooks/shared';
import type { RequestAdmission } from './admission.ts';
import type { Workflows } from './workflows.ts';

/**
 * What the API and the scheduled functions need, built once per process
 * (Lambda module scope) by functions/wiring from the configuration.
 */
export interface KilnServices {
  /** SHA-256 of the admin token; without it the admin API is closed. */
  adminTokenSha256?: string;
  /** Browser origins allowed to call the API (CORS); none when empty or absent. */
  corsOrigins?: readonly string[];
  /** Where webhooks may go: local mode lets a receiver on loopback take them (never the metadata address); the ports allowed. */
  webhooks?: AddressPolicy;
  /** Requests per tenant (and for the admin); DEFAULT_RATE_POLICY when absent. */
  rateLimit?: RatePolicy;
  /** What the API instance remembers between requests (verified keys, requests taken ahead); without it every request reads its key and takes from its bucket. */
  admission?: RequestAdmission;
  /** The aws-encryption-provider image (digest-pinned) Kiln's operator provides; without it orders with the kms provider are refused. */
  kmsPluginImage?: string;
  /** Kiln's own AWS account (KILN_ACCOUNT_ID): what tenants' roles trust, and where no tenant's role may be. */
  kilnAccountId: string;
  /** Infrastructure runs at once across every tenant (a fair queue hands them out); DEFAULT_INFRASTRUCTURE_CONCURRENCY (core) when absent. */
  infrastructureConcurrency?: number;
  store: KilnStore;
  workflows: Workflows;
  /** Wraps what Kiln keeps for tenants (PKI, tokens, SSH keys) under Kiln's own sealing key. */
  sealer: SecretSealer;
  log: Logger;
  /** Counters and timings (CloudWatch metrics in EMF in production); none when absent. */
  metrics?: Metrics;
  /** The API request being served (its x-request-id): operations it starts carry it into their workflows. */
  requestId?: string;
}
