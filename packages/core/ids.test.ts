import { describe, expect, it } from 'vitest';
import { idPattern, newId, randomFraction } from './ids.ts';

describe('ids', () => {
  it('are unique, sort in the order they were made, and match their pattern', () => {
    const ids = Array.from({ length: 10_000 }, () => newId('cluster'));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(idPattern('cluster'));
  });

  it('draw their random part evenly from the pooled random bytes, across refills', () => {
    const draws = Array.from({ length: 3 * 4096 }, () => randomFraction());
    for (const draw of draws) expect(draw >= 0 && draw < 1).toBe(true);
    const mean = draws.reduce((sum, draw) => sum + draw, 0) / draws.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02);
    // Every one of the 32 characters a ULID's random part can hold comes up.
    expect(new Set(draws.map((draw) => Math.floor(draw * 32))).size).toBe(32);
    // A refill draws new bytes rather than repeating the pool.
    expect(draws.slice(4096, 8192)).not.toEqual(draws.slice(0, 4096));
  });
});
