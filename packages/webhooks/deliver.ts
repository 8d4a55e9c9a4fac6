import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { type AddressPolicy, resolveAllowed, urlRefusal } from './address.ts';

/** How long one attempt may take, connection included. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** How much of a receiver's answer the delivery log keeps. */
export const RESPONSE_BYTES_KEPT = 1024;

export interface AttemptResult {
  at: string;
  /** The receiver's status; absent when no answer came (refused, unreachable, timed out). */
  status?: number;
  latencyMs: number;
  /** The first kilobyte of the answer, or why there was none. */
  response: string;
  ok: boolean;
}

/** Reads at most `limit` bytes of a body, then stops reading. */
async function head(body: AsyncIterable<Uint8Array> & { destroy?: () => void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= limit) break;
  }
  body.destroy?.();
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/**
 * One delivery attempt as Standard Webhooks describes it: the payload POSTed with `webhook-id` (stable for the event),
 * `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 with every active secret, so a receiver mid-rotation
 * verifies with either). The connection goes only to an address the guard allowed at connect time (no DNS
 * rebinding), redirects are not followed, and the attempt has a deadline and a cap on what it reads.
 */
export async function attemptDelivery(
  target: { url: string; secrets: readonly string[] },
  message: { id: string; payload: string },
  policy: AddressPolicy,
  now = new Date(),
): Promise<AttemptResult> {
  const started = Date.now();
  const at = now.toISOString();
  const failed = (response: string): AttemptResult => ({ at, latencyMs: Date.now() - started, response, ok: false });
  const refused = urlRefusal(target.url, policy);
  if (refused !== undefined) return failed(`refused: the URL ${refused}`);
  const url = new URL(target.url);
  const resolved = await resolveAllowed(url.hostname, policy);
  if ('refused' in resolved) return failed(`refused: ${resolved.refused}`);
  const signatures = target.secrets.map((secret) => new Webhook(secret).sign(message.id, now, message.payload)).join(' ');
  // The lookup the connection makes returns the address checked above, whatever the name resolves to by then.
  const dispatcher = new Agent({
    connect: {
      lookup: (_hostname, _options, callback) => {
        callback(null, [{ address: resolved.address, family: resolved.family }]);
      },
      timeout: ATTEMPT_TIMEOUT_MS,
    },
  });
  try {
    const answer = await request(url, {
      method: 'POST',
      dispatcher,
      headersTimeout: ATTEMPT_TIMEOUT_MS,
      bodyTimeout: ATTEMPT_TIMEOUT_MS,
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Kiln-Webhooks/1',
        'webhook-id': message.id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signatures,
      },
      body: message.payload,
    });
    const response = await head(answer.body, RESPONSE_BYTES_KEPT);
    return { at, status: answer.statusCode, latencyMs: Date.now() - started, response, ok: answer.statusCode >= 200 && answer.statusCode < 300 };
  } catch (error) {
    return failed(error instanceof Error ? `${error.name}: ${error.message}` : 'the attempt failed');
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}
