import { z } from 'zod';
import type { ClusterSpec } from './cluster-spec.ts';

/**
 * What a tenant may hold at once: live clusters (every phase but Deleted) and the nodes they may grow to. The
 * admin sets them when creating the tenant; the deployment's defaults apply otherwise.
 */
export const Quotas = z
  .strictObject({
    clusters: z.int().min(0).max(10_000).describe('Clusters the tenant may hold at once (every phase but Deleted).'),
    nodes: z
      .int()
      .min(0)
      .max(1_000_000)
      .describe("Machines the tenant's clusters may grow to, together: each cluster counts its control-plane replicas and each pool's max (its size when it has none)."),
  })
  .meta({ id: 'Quotas' });
export type Quotas = z.infer<typeof Quotas>;

/** The quotas of a tenant the admin gave none, unless the deployment sets others (KILN_QUOTA_CLUSTERS, KILN_QUOTA_NODES). */
export const DEFAULT_QUOTAS: Quotas = { clusters: 20, nodes: 500 };

/** A tenant's quotas with what its clusters hold of them. */
export const QuotaUsage = z
  .object({
    clusters: z.object({ limit: z.int(), used: z.int() }),
    nodes: z.object({ limit: z.int(), used: z.int() }),
  })
  .meta({ id: 'QuotaUsage' });
export type QuotaUsage = z.infer<typeof QuotaUsage>;

/**
 * The machines a cluster counts against the node quota: its control plane, and each pool at the most it may
 * scale to. Counting the upper bound (not today's size) means an autoscaler never takes a tenant over its quota.
 */
export function countedNodes(spec: Pick<ClusterSpec, 'controlPlane' | 'nodePools'>): number {
  return spec.controlPlane.replicas + spec.nodePools.reduce((sum, pool) => sum + (pool.max ?? pool.size), 0);
}

/** Requests a tenant may make: `perSecond` on average, `burst` at once after a quiet spell (a token bucket). */
export interface RatePolicy {
  perSecond: number;
  burst: number;
}

/** Requests per tenant unless the deployment sets others (KILN_RATE_LIMIT_PER_SECOND, KILN_RATE_LIMIT_BURST). */
export const DEFAULT_RATE_POLICY: RatePolicy = { perSecond: 20, burst: 100 };

/** Infrastructure runs (Fargate tasks) at once unless the deployment sets another number (KILN_INFRASTRUCTURE_CONCURRENCY). */
export const DEFAULT_INFRASTRUCTURE_CONCURRENCY = 16;

/** What one request's token left: granted or not, and what the RateLimit header fields say. */
export interface RateDecision {
  granted: boolean;
  /** Requests taken from the bucket (the one asking, and any an instance keeps for its next ones); 0 when refused. */
  taken: number;
  /** Requests the tenant may still send at once. */
  remaining: number;
  /** When refused: seconds until the next request would be granted. */
  retryAfterSeconds: number;
  /** When the bucket would be full again (epoch ms): a take after it finds the bucket full; RateLimit's `t` counts down to it. */
  fullAt: number;
}
