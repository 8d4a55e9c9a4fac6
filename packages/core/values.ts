import { createHash } from 'node:crypto';

/** A plain JSON object (not null, not an array), as parsed YAML and JSON give them. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Hex SHA-256 of a text: API keys, idempotency keys and request bodies are kept only as this. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Whether two values serialise to the same JSON (same members in the same order): orders as parsed, step states. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
