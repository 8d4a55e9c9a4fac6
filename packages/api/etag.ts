import { KilnError } from '#core';

export function etagOf(version: number): string {
  return `"v${version}"`;
}

/**
 * What an If-Match header asks for: the version it names, or (for `*`, RFC 9110) any current version, which every
 * cluster that exists has. A malformed tag can match nothing, so it is a 412.
 */
export function ifMatchOption(header: string | undefined): { ifMatchVersion?: number } {
  if (header === undefined || header.trim() === '*') return {};
  const match = /^(?:W\/)?"v(\d{1,12})"$/.exec(header.trim());
  if (match?.[1] === undefined) throw new KilnError('precondition_failed', 'If-Match must be an ETag this API issued, such as "v3", or *.');
  return { ifMatchVersion: Number(match[1]) };
}

/** Whether an If-None-Match header names this ETag (or `*`): a GET then answers 304 Not Modified. */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}

/** How long a client should wait before it looks at an operation it started (Retry-After on a 202). */
export const OPERATION_RETRY_AFTER_SECONDS = 10;
