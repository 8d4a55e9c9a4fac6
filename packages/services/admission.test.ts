import { describe, expect, it } from 'vitest';
import type { RateDecision } from '#core';
import { RequestAdmission } from './admission.ts';

const policy = { perSecond: 20, burst: 100 };
const principal = { kind: 'tenant' as const, tenantId: 'tenant_a', tenantName: 'a', scopes: ['read-only' as const] };
const verified = { principal, tenantSuspended: false };
const grant = (taken: number, remaining: number, fullAt = 5_000): RateDecision => ({ granted: true, taken, remaining, retryAfterSeconds: 0, fullAt });

describe('RequestAdmission', () => {
  it('trusts a verified key for its TTL from when it was read, and forgets a tenant’s keys on revocation', () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    admission.rememberKey('digest-1', verified, 0);
    admission.rememberKey('digest-2', { ...verified, principal: { ...principal, tenantId: 'tenant_b' } }, 0);
    expect(admission.knownKey('digest-1', 999)).toEqual(verified);
    expect(admission.knownKey('digest-1', 1_000)).toBeUndefined();
    admission.rememberKey('digest-1', verified, 2_000);
    admission.forgetTenant('tenant_a');
    expect(admission.knownKey('digest-1', 2_001)).toBeUndefined();
    expect(admission.knownKey('digest-2', 500)?.principal.tenantId).toBe('tenant_b');
  });

  it('remembers a key with its tenant’s suspension as it was read, for the TTL, and forgets it with the tenant', () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    admission.rememberKey('digest-1', { principal, tenantSuspended: true }, 0);
    expect(admission.knownKey('digest-1', 999)?.tenantSuspended).toBe(true);
    expect(admission.knownKey('digest-1', 1_000)).toBeUndefined();
    admission.rememberKey('digest-1', { principal, tenantSuspended: true }, 2_000);
    // Resumed on this instance: the key is read again at once.
    admission.forgetTenant('tenant_a');
    expect(admission.knownKey('digest-1', 2_001)).toBeUndefined();
  });

  it('refuses a key found unknown for its TTL, then reads it again', () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    expect(admission.unknownKey('digest-x', 0)).toBe(false);
    admission.rememberUnknownKey('digest-x', 0);
    expect(admission.unknownKey('digest-x', 999)).toBe(true);
    expect(admission.unknownKey('digest-x', 1_000)).toBe(false);
  });

  it('remembers at most maxEntries keys, dropping the oldest', () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 2 });
    for (const digest of ['one', 'two', 'three']) admission.rememberKey(digest, verified, 0);
    expect(['one', 'two', 'three'].map((digest) => admission.knownKey(digest, 1) !== undefined)).toEqual([false, true, true]);
  });

  /** A bucket stand-in: answers each take from a script, and counts the takes. */
  function bucket(...answers: RateDecision[]) {
    const asked: number[] = [];
    const expectedFull: boolean[] = [];
    return {
      asked,
      expectedFull,
      take: (wanted: number, expectFull: boolean) => {
        asked.push(wanted);
        expectedFull.push(expectFull);
        const answer = answers.shift();
        return answer === undefined ? Promise.reject(new Error('no more answers')) : Promise.resolve(answer);
      },
    };
  }

  /** A bucket stand-in that holds `held` requests and gives what is asked while it has them, counting the takes. */
  function liveBucket(held: number) {
    const asked: number[] = [];
    return {
      asked,
      take: (wanted: number) => {
        asked.push(wanted);
        const taken = Math.min(wanted, held);
        held -= taken;
        return Promise.resolve(taken > 0 ? grant(taken, held) : refusal);
      },
    };
  }
  const refusal: RateDecision = { granted: false, taken: 0, remaining: 0, retryAfterSeconds: 1, fullAt: 5_000 };

  it('spends the requests a take brought beyond the first, within the lease time, and reports what the tenant has left', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    const tenantA = bucket(grant(1, 99), grant(2, 97), grant(4, 93), grant(1, 92));
    for (const now of [0, 1]) await admission.admit('tenant_a', policy, now, tenantA.take);
    // The third request spends what the second took ahead; the fourth takes four, 93 left in the bucket: it is
    // answered with 96 left (93 + 3 held here), and the requests after it spend those.
    expect((await admission.admit('tenant_a', policy, 2, tenantA.take)).remaining).toBe(97);
    expect(await admission.admit('tenant_a', policy, 3, tenantA.take)).toMatchObject({ granted: true, remaining: 96 });
    const spent = [];
    for (const now of [4, 5]) spent.push((await admission.admit('tenant_a', policy, now, tenantA.take)).remaining);
    expect(spent).toEqual([95, 94]);
    expect(tenantA.asked).toEqual([1, 2, 4]);
    // The one left unused past the lease time is dropped (the tenant already paid for it), so the next request takes
    // again, as many as the 6 admitted in the last period.
    const late = bucket(grant(4, 90), grant(1, 89));
    await admission.admit('tenant_a', policy, 1_100, late.take);
    expect(late.asked).toEqual([6]);
  });

  it('takes ahead as many requests as the instance admitted in one lease period, so a busy instance writes once for many and a quiet one takes one at a time', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    const busy = liveBucket(10_000);
    for (let now = 0; now < 30; now++) await admission.admit('tenant_a', policy, now, busy.take);
    // Doubling while the demand grows, up to maxLease: 6 writes for 30 requests.
    expect(busy.asked).toEqual([1, 2, 4, 8, 10, 10]);
    // The next lease period starts from the last one's demand (30, so maxLease).
    await admission.admit('tenant_a', policy, 1_500, busy.take);
    expect(busy.asked.at(-1)).toBe(10);

    // A request now and then (a tenant spread over many instances): one at a time, nothing taken that goes unused.
    const quiet = liveBucket(100);
    for (const now of [0, 2_000, 4_000, 6_000]) expect((await admission.admit('tenant_b', policy, now, quiet.take)).granted).toBe(true);
    expect(quiet.asked).toEqual([1, 1, 1, 1]);
  });

  it('lets requests that arrive during a take wait for it and share what it brought', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    const tenantA = bucket(grant(3, 50), grant(3, 47));
    const decisions = await Promise.all(Array.from({ length: 5 }, () => admission.admit('tenant_a', policy, 0, tenantA.take)));
    expect(decisions.every((decision) => decision.granted)).toBe(true);
    expect(tenantA.asked).toHaveLength(2);
  });

  it('takes no more than a fifth of what the bucket held last, so a tenant near its limit takes one request at a time', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    const tenantA = liveBucket(60);
    const granted = [];
    for (let now = 0; now < 70; now++) granted.push((await admission.admit('tenant_a', policy, now, tenantA.take)).granted);
    // The demand asks for more; what the bucket held caps it: 45 left after the first four takes, so 9, and so on.
    expect(tenantA.asked.slice(0, 6)).toEqual([1, 2, 4, 8, 9, 7]);
    expect(tenantA.asked.slice(-12)).toEqual(Array.from({ length: 12 }, () => 1));
    // Exactly what the bucket held, no more.
    expect(granted.filter(Boolean)).toHaveLength(60);
  });

  it('tells the store whether the bucket is likely full by now: unknown or past the time it said, so the right write goes first', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 0, maxLease: 10, maxEntries: 100 });
    const tenantA = bucket(grant(10, 90, 500), grant(10, 80, 900), grant(10, 90, 3_000));
    for (const now of [0, 100, 1_000]) await admission.admit('tenant_a', policy, now, tenantA.take);
    // Never seen here: full (a quiet tenant's is); then in use until 500 ms; at 1000 ms, past the 900 ms it said, full again.
    expect(tenantA.expectedFull).toEqual([true, false, true]);
  });
});
