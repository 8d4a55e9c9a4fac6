import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ParsedByVersion } from './parsed-by-version.ts';

/** A schema that counts its parses. */
function counted() {
  const schema = z.object({ version: z.number(), updatedAt: z.string(), spec: z.object({ size: z.number() }) });
  let parses = 0;
  const counting = schema.transform((record) => {
    parses += 1;
    return record;
  });
  return { schema: counting, parses: () => parses };
}

const item = (sk: string, version: number, updatedAt: string, size = 2) => ({ PK: 'TENANT#t', SK: sk, version, updatedAt, spec: { size } });

describe('records parsed by version', () => {
  it('parses an item read again unchanged once, and again when its version or time moved', () => {
    const { schema, parses } = counted();
    const records = new ParsedByVersion(schema, 10);
    const first = records.parse(item('CLUSTER#a', 1, '2026-11-30T00:00:00.000Z'));
    expect(records.parse(item('CLUSTER#a', 1, '2026-11-30T00:00:00.000Z'))).toBe(first);
    expect(parses()).toBe(1);

    expect(records.parse(item('CLUSTER#a', 2, '2026-11-30T00:00:01.000Z', 4)).spec.size).toBe(4);
    expect(records.parse(item('CLUSTER#a', 2, '2026-11-30T00:00:02.000Z', 5)).spec.size).toBe(5);
    // Another item with the same version is parsed on its own.
    expect(records.parse(item('CLUSTER#b', 2, '2026-11-30T00:00:02.000Z', 6)).spec.size).toBe(6);
    expect(parses()).toBe(4);
  });

  it('hands out frozen records, so no reader changes one under another', () => {
    const { schema } = counted();
    const record = new ParsedByVersion(schema, 10).parse(item('CLUSTER#a', 1, 'now'));
    expect(Object.isFrozen(record)).toBe(true);
    expect(Object.isFrozen(record.spec)).toBe(true);
    expect(() => {
      record.spec.size = 3;
    }).toThrow(TypeError);
  });

  it('keeps at most its bound, dropping the item read longest ago', () => {
    const { schema, parses } = counted();
    const records = new ParsedByVersion(schema, 2);
    records.parse(item('CLUSTER#a', 1, 'now'));
    records.parse(item('CLUSTER#b', 1, 'now'));
    records.parse(item('CLUSTER#a', 1, 'now'));
    records.parse(item('CLUSTER#c', 1, 'now'));
    expect(parses()).toBe(3);
    // a was read after b, so b went.
    records.parse(item('CLUSTER#a', 1, 'now'));
    expect(parses()).toBe(3);
    records.parse(item('CLUSTER#b', 1, 'now'));
    expect(parses()).toBe(4);
  });
});
