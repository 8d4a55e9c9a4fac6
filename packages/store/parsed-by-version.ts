import type { z } from 'zod';
import { remember } from '#core';

/** Freezes a parsed record and everything in it: a record one reader changed in place would change for every reader. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/**
 * Records parsed before, by item key: an item read again at the same `version` and `updatedAt` (every write of such
 * a record bumps both) is the record parsed then, without parsing it again. Records are frozen, as readers share them.
 * At most `max` items are kept; the least recently read go first.
 */
export class ParsedByVersion<S extends z.ZodType<{ version: number; updatedAt: string }>> {
  private readonly parsed = new Map<string, z.output<S>>();

  constructor(
    private readonly schema: S,
    private readonly max: number,
  ) {}

  parse(item: Record<string, unknown>): z.output<S> {
    const key = `${String(item.PK)}\u0000${String(item.SK)}`;
    const known = this.parsed.get(key);
    const record = known !== undefined && known.version === item.version && known.updatedAt === item.updatedAt ? known : deepFreeze(this.schema.parse(item));
    remember(this.parsed, key, record, this.max);
    return record;
  }
}
