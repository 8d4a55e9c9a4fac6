import { KilnError } from '#core';

export function etagOf(version: number): string {
  return `"v${version}"`;
}

/** The version an If-Match header names; a malformed tag can match nothing, so it is a 412. */
export function parseIfMatch(header: string): number {
  const match = /^(?:W\/)?"v(\d{1,12})"$/.exec(header.trim());
  if (match?.[1] === undefined) throw new KilnError('precondition_failed', 'If-Match must be an ETag this API issued, such as "v3".');
  return Number(match[1]);
}
