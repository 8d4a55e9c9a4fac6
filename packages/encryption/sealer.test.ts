import { KMSClient } from '@aws-sdk/client-kms';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KmsService, startKmsService } from '#sandbox';
import { KmsSealer } from './sealer.ts';

let kms: KmsService;
let client: KMSClient;
let sealer: KmsSealer;

beforeAll(async () => {
  kms = await startKmsService();
  client = new KMSClient({ endpoint: kms.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const key = await client.send(new CreateKeyCommand({}));
  sealer = new KmsSealer(() => Promise.resolve(client), key.KeyMetadata?.KeyId ?? '');
});

afterAll(async () => {
  client.destroy();
  await kms.close();
});

describe('envelope sealing through KMS', () => {
  const context = { tenantId: 'ten_a', clusterId: 'cls_a', purpose: 'pki' };

  it('round-trips secrets far larger than KMS could encrypt directly, without the plaintext in the blob', async () => {
    const secret = Buffer.from('-----BEGIN PRIVATE KEY-----'.repeat(1000));
    const sealed = await sealer.seal(secret, context);
    expect(sealed).not.toContain('BEGIN PRIVATE KEY');
    expect(Buffer.from(await sealer.unseal(sealed, context))).toEqual(secret);
  });

  it('refuses another context and a tampered blob', async () => {
    const sealed = await sealer.seal(Buffer.from('token'), context);
    await expect(sealer.unseal(sealed, { ...context, clusterId: 'cls_b' })).rejects.toThrow();
    const parts = sealed.split(':');
    const body = Buffer.from(parts[parts.length - 1] ?? '', 'base64');
    body[0] = (body[0] ?? 0) ^ 1;
    parts[parts.length - 1] = body.toString('base64');
    await expect(sealer.unseal(parts.join(':'), context)).rejects.toThrow();
  });
});
