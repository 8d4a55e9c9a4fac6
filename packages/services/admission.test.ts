import { describe, expect, it } from 'vitest';
import type { RateDecision } from '#core';
import { RequestAdmission } from './admission.ts';

const policy = { perSecond: 20, burst: 100 };
const principal = { kind: 'tenant' as const, tenantId: 'tenant_a', tenantName: 'a' };
const grant = (taken: number, remaining: number, fullAt = 5_000): RateDecision => ({ granted: true, taken, remaining, retryAfterSeconds: 0, fullAt });

describe('RequestAdmission', () => {
  it('trusts a verified key for its TTL from when it was read, and forgets a tenant’s keys on revocation', () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    admission.rememberKey('digest-1', principal, 0);
    admission.rememberKey('digest-2', { ...principal, tenantId: 'tenant_b' }, 0);
    expect(admission.knownKey('digest-1', 999)).toEqual(principal);
    expect(admission.knownKey('digest-1', 1_000)).toBeUndefined();
    admission.rememberKey('digest-1', principal, 2_000);
    admission.forgetTenant('tenant_a');
    expect(admission.knownKey('digest-1', 2_001)).toBeUndefined();
    expect(admission.knownKey('digest-2', 500)?.tenantId).toBe('tenant_b');
  });

  it('remembers at most maxEntries keys, dropping the oldest', () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 2 });
    for (const digest of ['one', 'two', 'three']) admission.rememberKey(digest, principal, 0);
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

  it('spends the requests a take brought beyond the first, within the lease time, and reports what the tenant has left', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    const tenantA = bucket(grant(4, 90), grant(2, 80), grant(1, 79));
    // Four taken at once, 90 left in the bucket: the asking request is answered with 93 left (90 + 3 held here).
    expect(await admission.admit('tenant_a', policy, 0, tenantA.take)).toMatchObject({ granted: true, remaining: 93 });
    const spent = [];
    for (const now of [1, 2, 3]) spent.push((await admission.admit('tenant_a', policy, now, tenantA.take)).remaining);
    expect(spent).toEqual([92, 91, 90]);
    expect(tenantA.asked).toEqual([10]);
    await admission.admit('tenant_a', policy, 4, tenantA.take);
    // Unused past the lease time: dropped (the tenant already paid for it), so the next request takes again.
    await admission.admit('tenant_a', policy, 1_004, tenantA.take);
    expect(tenantA.asked).toEqual([10, 10, 10]);
  });

  it('lets requests that arrive during a take wait for it and share what it brought', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 1_000, maxLease: 10, maxEntries: 100 });
    const tenantA = bucket(grant(3, 50), grant(3, 47));
    const decisions = await Promise.all(Array.from({ length: 5 }, () => admission.admit('tenant_a', policy, 0, tenantA.take)));
    expect(decisions.every((decision) => decision.granted)).toBe(true);
    expect(tenantA.asked).toHaveLength(2);
  });

  it('takes a fifth of what the bucket held last, so a tenant near its limit takes one request at a time', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 0, maxLease: 10, maxEntries: 100 });
    const refused: RateDecision = { granted: false, taken: 0, remaining: 0, retryAfterSeconds: 1, fullAt: 5_000 };
    const tenantA = bucket(grant(10, 30), grant(6, 4), grant(1, 0), refused, refused);
    for (let request = 0; request < 5; request++) await admission.admit('tenant_a', policy, request, tenantA.take);
    expect(tenantA.asked).toEqual([10, 6, 1, 1, 1]);
    const small = bucket(grant(1, 4));
    await admission.admit('tenant_b', { perSecond: 1, burst: 5 }, 0, small.take);
    expect(small.asked).toEqual([1]);
  });

  it('tells the store whether the bucket is likely full by now: unknown or past the time it said, so the right write goes first', async () => {
    const admission = new RequestAdmission({ keyTtlMs: 1_000, leaseMs: 0, maxLease: 10, maxEntries: 100 });
    const tenantA = bucket(grant(10, 90, 500), grant(10, 80, 900), grant(10, 90, 3_000));
    for (const now of [0, 100, 1_000]) await admission.admit('tenant_a', policy, now, tenantA.take);
    // Never seen here: full (a quiet tenant's is); then in use until 500 ms; at 1000 ms, past the 900 ms it said, full again.
    expect(tenantA.expectedFull).toEqual([true, false, true]);
  });
});
