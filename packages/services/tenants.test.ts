import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RequestAdmission } from './admission.ts';
import type { KilnServices } from './context.ts';
import { authenticate } from './tenants.ts';

/** Services whose store knows one key, counting its reads (each a strongly consistent GetItem in production). */
function withOneKey(known: string) {
  const reads: string[] = [];
  const services = {
    admission: new RequestAdmission(),
    store: {
      findTenantByApiKeyHash: (digest: string) => {
        reads.push(digest);
        return Promise.resolve(digest === sha256Hex(known) ? { id: 'ten_1', name: 'one', lastUsedAt: new Date().toISOString() } : undefined);
      },
      touchApiKey: () => Promise.resolve(),
    },
  } as unknown as KilnServices;
  return { services, reads };
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const KEY = `kiln_${'A'.repeat(43)}`;

describe('authenticating an API key', () => {
  it('refuses a token that is not shaped like a key Kiln issues without reading anything', async () => {
    const { services, reads } = withOneKey(KEY);
    for (const token of ['kiln_short', `kiln_${'A'.repeat(44)}`, `kiln_${'!'.repeat(43)}`, 'Bearer-ish', '']) expect(await authenticate(services, token)).toBeUndefined();
    expect(reads).toEqual([]);
  });

  it('reads an unknown key once per TTL and refuses it again from memory', async () => {
    const { services, reads } = withOneKey(KEY);
    const unknown = `kiln_${'B'.repeat(43)}`;
    expect(await authenticate(services, unknown)).toBeUndefined();
    expect(await authenticate(services, unknown)).toBeUndefined();
    expect(reads).toHaveLength(1);
    expect(await authenticate(services, KEY)).toMatchObject({ kind: 'tenant', tenantId: 'ten_1' });
  });
});
