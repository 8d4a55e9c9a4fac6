import { randomFillSync } from 'node:crypto';
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

/**
 * Random bytes for ULIDs, drawn from the system's CSPRNG 4 KiB at a time: ulid's own generator makes one
 * getRandomValues call per character (16 per id), which was a tenth of the CPU an order costs the API.
 */
const randomBytePool = new Uint8Array(4096);
let nextRandomByte = randomBytePool.length;
export function randomFraction(): number {
  if (nextRandomByte === randomBytePool.length) {
    randomFillSync(randomBytePool);
    nextRandomByte = 0;
  }
  return (randomBytePool[nextRandomByte++] ?? 0) / 256;
}

const nextUlid = monotonicFactory(randomFraction);

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
