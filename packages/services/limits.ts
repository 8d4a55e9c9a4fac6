import { DEFAULT_RATE_POLICY, KilnError, QuotaExceededError, type QuotaUsage, type RateDecision, type RatePolicy } from '#core';
import type { KilnServices } from './context.ts';

/** The bucket the admin's requests come out of (tenants each have their own, under their id). */
export const ADMIN_BUCKET = 'admin';

export function ratePolicy(services: KilnServices): RatePolicy {
  return services.rateLimit ?? DEFAULT_RATE_POLICY;
}

/** The RateLimit and RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers-10) for a decision. */
export function rateLimitHeaders(policy: RatePolicy, decision: RateDecision, now: number): Record<string, string> {
  const window = Math.ceil(policy.burst / policy.perSecond);
  return {
    'ratelimit-policy': `"tenant";q=${String(policy.burst)};w=${String(window)}`,
    ratelimit: `"tenant";r=${String(decision.remaining)};t=${String(Math.max(0, Math.ceil((decision.fullAt - now) / 1000)))}`,
  };
}

/**
 * Takes a request from the bucket of `bucket` (a tenant id, or ADMIN_BUCKET), from the instance's lease on it when it
 * has one (see RequestAdmission). When it is empty, a 429 with Retry-After and the RateLimit fields; otherwise the
 * fields for the answer.
 */
export async function takeRequestToken(services: KilnServices, bucket: string, now = Date.now()): Promise<Record<string, string>> {
  const policy = ratePolicy(services);
  const admission = services.admission;
  const decision =
    admission === undefined
      ? await services.store.takeRequestToken(bucket, now, policy)
      : await admission.admit(bucket, policy, now, (wanted, expectFull) => services.store.takeRequestToken(bucket, now, policy, wanted, expectFull));
  const headers = rateLimitHeaders(policy, decision, now);
  if (decision.granted) return headers;
  throw new KilnError(
    'rate_limited',
    `Too many requests: this tenant may send ${String(policy.perSecond)} a second on average and ${String(policy.burst)} at once. Retry in ${String(decision.retryAfterSeconds)} s.`,
    [],
    { ...headers, 'retry-after': String(decision.retryAfterSeconds) },
  );
}

export function getQuotaUsage(services: KilnServices, tenantId: string): Promise<QuotaUsage> {
  return services.store.getQuotaUsage(tenantId);
}

/**
 * Runs a change that takes some of the tenant's quota; a refusal says what the tenant holds, what the change needs
 * and what to do about it.
 */
export async function withinQuota<T>(services: KilnServices, tenantId: string, needs: { clusters: number; nodes: number }, change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (error) {
    if (!(error instanceof QuotaExceededError)) throw error;
    const { clusters, nodes } = await getQuotaUsage(services, tenantId);
    const wanted = [needs.clusters > 0 ? `${String(needs.clusters)} more cluster` : '', needs.nodes > 0 ? `${String(needs.nodes)} more nodes` : ''].filter((part) => part !== '').join(' and ');
    throw new QuotaExceededError(
      `This needs ${wanted || 'more of the quota'}, and the tenant holds ${String(clusters.used)} of its ${String(clusters.limit)} clusters and ${String(nodes.used)} of its ${String(nodes.limit)} nodes ` +
        "(a cluster counts its control-plane replicas and each pool's max). Delete a cluster, make the order smaller, or ask the operator for a larger quota.",
    );
  }
}
