import { encodeTime, monotonicFactory } from 'ulid';

/** Prefixed, time-ordered ids: the prefix says what it is, the ULID sorts by creation. */
export const ID_PREFIXES = {
  tenant: 'ten',
  cluster: 'cls',
  operation: 'op',
  event: 'evt',
  apiKey: 'key',
  webhookEndpoint: 'whk',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const nextUlid = monotonicFactory();

export function newId(kind: IdKind): string {
  return `${ID_PREFIXES[kind]}_${nextUlid().toLowerCase()}`;
}

/** The smallest id of a kind made at `at`: every id made later sorts after it. */
export function firstIdAt(kind: IdKind, at: Date): string {
  return `${ID_PREFIXES[kind]}_${encodeTime(at.getTime(), 10).toLowerCase()}${'0'.repeat(16)}`;
}

export function idPattern(kind: IdKind): RegExp {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-hjkmnp-tv-z]{26}$`);
}
