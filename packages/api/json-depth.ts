import type { MiddlewareHandler } from 'hono';
import { KilnError } from '#core';
import type { AppEnv } from './context.ts';

/** Deeper than any body Kiln takes (an order nests six levels): refused before anything parses or walks it. */
export const MAX_JSON_DEPTH = 32;

/** How deep the JSON text nests its objects and arrays, counted without parsing (strings are skipped); stops past `limit`. */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index);
    if (inString) {
      if (char === 0x5c) index++; // a backslash escapes the next character
      else if (char === 0x22) inString = false;
      continue;
    }
    if (char === 0x22) inString = true;
    else if (char === 0x7b || char === 0x5b) {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (char === 0x7d || char === 0x5d) depth--;
  }
  return deepest;
}

/**
 * Refuses a JSON body nested deeper than MAX_JSON_DEPTH with a 400 that says so, before the body is parsed: the
 * merge patch, the validators and the idempotency hash all recurse, and a 30 KB body can nest 5,000 levels.
 */
export function jsonDepthLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && /json/i.test(c.req.header('content-type') ?? '')) {
      if (jsonDepth(await c.req.text()) > MAX_JSON_DEPTH) {
        throw new KilnError('malformed_request', `The request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels.`);
      }
    }
    await next();
  };
}
