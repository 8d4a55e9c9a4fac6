import { type ApiKeyScope, type RateDecision, type RatePolicy, remember } from '#core';

/** A tenant's principal as a verified API key gives it. */
export interface TenantPrincipal {
  kind: 'tenant';
  tenantId: string;
  tenantName: string;
  /** The key's id (absent only for keys issued before keys were listed by id). */
  keyId?: string;
  /** What the key may do. */
  scopes: readonly ApiKeyScope[];
  /** When the key stops working, if it does. */
  keyExpiresAt?: string;
}

/** A key as it was read: its principal, and whether its tenant was suspended then. */
export interface VerifiedKey {
  principal: TenantPrincipal;
  tenantSuspended: boolean;
}

export interface AdmissionOptions {
  /** How long an instance trusts a key it verified before it reads the key again (and so sees a revocation made elsewhere). */
  keyTtlMs: number;
  /** How long requests an instance took ahead from a bucket stay usable; unused ones are dropped (the tenant already paid for them). */
  leaseMs: number;
  /** At most this many requests taken from a bucket in one write. */
  maxLease: number;
  /** Keys and buckets remembered at most; the oldest go first. */
  maxEntries: number;
}

export const DEFAULT_ADMISSION: AdmissionOptions = { keyTtlMs: 30_000, leaseMs: 1_000, maxLease: 100, maxEntries: 10_000 };

interface KnownKey {
  verified: VerifiedKey;
  expiresAt: number;
}

interface Lease {
  /** Requests taken and not yet spent. */
  tokens: number;
  expiresAt: number;
  /** The bucket's fields when the requests were taken. */
  remaining: number;
  fullAt: number;
}

/** The requests an instance admitted from a bucket: in the lease period that began at `since`, and in the one before. */
interface Demand {
  since: number;
  admitted: number;
  before: number;
}


/**
 * What one API instance (a Lambda execution environment) remembers between requests, so that most requests make no
 * DynamoDB call before their own work: the API keys it verified (for `keyTtlMs`), and requests taken ahead from each
 * bucket (a lease, usable for `leaseMs`).
 *
 * The limit still holds across instances: every request spent was taken from the shared bucket first. A lease is as
 * large as the instance's own demand (the most requests it admitted from the bucket in one lease period, this one or
 * the last), so an instance that sees a tenant's request now and then takes one at a time and leaves the rest of the
 * bucket to the instances that need it, while a busy one makes one write for many requests. It is never more than a
 * fifth of what the bucket held at the last take, so a tenant near its limit takes one request at a time and is
 * limited exactly, nor more than `maxLease`. What goes unused is what the demand fell short of its last period's. A
 * revoked key, or a suspended or resumed tenant, is seen at once by the instance that made the change and within
 * `keyTtlMs` by the others: a key is remembered with its tenant's suspension as read.
 */
export class RequestAdmission {
  private readonly keys = new Map<string, KnownKey>();
  /** Keys read and found in no tenant, by SHA-256, until when they are refused without a read. */
  private readonly unknownKeys = new Map<string, number>();
  private readonly leases = new Map<string, Lease>();
  /** What each bucket held at the last take, which sizes the next lease, and when it would be full again. */
  private readonly lastTake = new Map<string, { remaining: number; fullAt: number }>();
  /** The take under way for each bucket. */
  private readonly pending = new Map<string, Promise<RateDecision>>();
  private readonly demand = new Map<string, Demand>();

  constructor(readonly options: AdmissionOptions = DEFAULT_ADMISSION) {}

  /** A key read less than `keyTtlMs` ago, by its SHA-256. */
  knownKey(digest: string, now: number): VerifiedKey | undefined {
    const known = this.keys.get(digest);
    if (known === undefined) return undefined;
    if (known.expiresAt <= now) {
      this.keys.delete(digest);
      return undefined;
    }
    return known.verified;
  }

  rememberKey(digest: string, verified: VerifiedKey, now: number): void {
    remember(this.keys, digest, { verified, expiresAt: now + this.options.keyTtlMs }, this.options.maxEntries);
  }

  /**
   * Whether a key was read and found unknown less than `keyTtlMs` ago: refused again without a read, so a client
   * retrying a wrong key (or trying many) costs one strongly consistent read per key and instance per TTL.
   */
  unknownKey(digest: string, now: number): boolean {
    const until = this.unknownKeys.get(digest);
    if (until === undefined) return false;
    if (until <= now) {
      this.unknownKeys.delete(digest);
      return false;
    }
    return true;
  }

  rememberUnknownKey(digest: string, now: number): void {
    remember(this.unknownKeys, digest, now + this.options.keyTtlMs, this.options.maxEntries);
  }

  /** Forgets every key of a tenant (one was revoked here, or the tenant suspended or resumed: the next request with it reads it again). */
  forgetTenant(tenantId: string): void {
    for (const [digest, known] of this.keys) if (known.verified.principal.tenantId === tenantId) this.keys.delete(digest);
  }

  /**
   * One request from the bucket: from the instance's lease when it holds one, else taken (with the next ones) by
   * `take`, told how many to take and whether the bucket is likely full by now (so the store tries the right write
   * first; a bucket this instance has not seen is taken as full, which a quiet tenant's is). Requests that arrive
   * while a take is under way wait for it and share what it brought, so an instance has at most one take per bucket
   * in flight.
   */
  async admit(bucket: string, policy: RatePolicy, now: number, take: (wanted: number, expectFull: boolean) => Promise<RateDecision>): Promise<RateDecision> {
    const demand = this.demanded(bucket, now);
    for (;;) {
      const spent = this.spend(bucket, now);
      if (spent !== undefined) return spent;
      const pending = this.pending.get(bucket);
      if (pending === undefined) break;
      await pending.catch(() => undefined);
    }
    const last = this.lastTake.get(bucket);
    const taking = take(this.wanted(last, policy, demand), last === undefined || last.fullAt < now).then((decision) => this.took(bucket, decision, now));
    this.pending.set(bucket, taking);
    try {
      return await taking;
    } finally {
      this.pending.delete(bucket);
    }
  }

  private spend(bucket: string, now: number): RateDecision | undefined {
    const lease = this.leases.get(bucket);
    if (lease === undefined || lease.tokens < 1 || lease.expiresAt <= now) return undefined;
    lease.tokens -= 1;
    return { granted: true, taken: 1, remaining: lease.remaining + lease.tokens, retryAfterSeconds: 0, fullAt: lease.fullAt };
  }

  /** The instance's demand, but no more than a fifth of what the bucket held at the last take, within 1..maxLease. */
  private wanted(last: { remaining: number } | undefined, policy: RatePolicy, demand: number): number {
    const held = last?.remaining ?? policy.burst;
    return Math.max(1, Math.min(this.options.maxLease, Math.floor(held / 5), demand));
  }

  /** Counts a request for the bucket; the most requests admitted from it in one lease period, this one or the last. */
  private demanded(bucket: string, now: number): number {
    const known = this.demand.get(bucket);
    const period = this.options.leaseMs;
    if (known !== undefined && now - known.since < period) {
      known.admitted += 1;
      return Math.max(known.admitted, known.before);
    }
    // A new period: the one before counts only if it just ended (a quiet spell in between is no demand).
    const before = known !== undefined && now - known.since < 2 * period ? known.admitted : 0;
    remember(this.demand, bucket, { since: now, admitted: 1, before }, this.options.maxEntries);
    return Math.max(1, before);
  }

  /** Keeps what a take brought beyond the request that asked; returns that request's decision. */
  private took(bucket: string, decision: RateDecision, now: number): RateDecision {
    remember(this.lastTake, bucket, { remaining: decision.remaining, fullAt: decision.fullAt }, this.options.maxEntries);
    if (!decision.granted) return decision;
    const spare = decision.taken - 1;
    if (spare > 0) {
      remember(this.leases, bucket, { tokens: spare, expiresAt: now + this.options.leaseMs, remaining: decision.remaining, fullAt: decision.fullAt }, this.options.maxEntries);
    }
    return { ...decision, remaining: decision.remaining + spare };
  }
}
