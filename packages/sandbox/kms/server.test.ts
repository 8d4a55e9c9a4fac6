import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KmsService, startKmsService } from './server.ts';

let kms: KmsService;
let client: KMSClient;

beforeAll(async () => {
  kms = await startKmsService({ region: 'eu-central-1', accountId: '210987654321' });
  client = new KMSClient({ endpoint: kms.endpoint, region: 'eu-central-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
});

afterAll(async () => {
  client.destroy();
  await kms.close();
});

/** Each test makes its own key, as a tenant's cluster would. */
async function newKey(): Promise<{ keyId: string; arn: string }> {
  const created = await client.send(new CreateKeyCommand({ Description: 'test key' }));
  return { keyId: created.KeyMetadata?.KeyId ?? '', arn: created.KeyMetadata?.Arn ?? '' };
}

const context = { tenantId: 'ten_1', clusterId: 'cls_1' };
const secret = Buffer.from('a 32-byte secretbox key, really!');

describe('the KMS sandbox', () => {
  it('creates keys that DescribeKey finds by id, ARN and alias', async () => {
    const { keyId, arn } = await newKey();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/kiln-test-describe', TargetKeyId: keyId }));

    const byId = await client.send(new DescribeKeyCommand({ KeyId: keyId }));
    const byArn = await client.send(new DescribeKeyCommand({ KeyId: arn }));
    const byAlias = await client.send(new DescribeKeyCommand({ KeyId: 'alias/kiln-test-describe' }));

    expect(arn).toBe(`arn:aws:kms:eu-central-1:210987654321:key/${keyId}`);
    expect(byId.KeyMetadata).toMatchObject({ KeyId: keyId, Arn: arn, Enabled: true, KeyState: 'Enabled', KeyUsage: 'ENCRYPT_DECRYPT', Description: 'test key' });
    expect(byId.KeyMetadata?.CreationDate).toBeInstanceOf(Date);
    expect(byArn.KeyMetadata?.KeyId).toBe(keyId);
    expect(byAlias.KeyMetadata?.KeyId).toBe(keyId);
  });

  it('decrypts what it encrypted under the same encryption context, naming the key', async () => {
    const { arn } = await newKey();

    const encrypted = await client.send(new EncryptCommand({ KeyId: arn, Plaintext: secret, EncryptionContext: context }));
    const decrypted = await client.send(
      new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { clusterId: 'cls_1', tenantId: 'ten_1' } }),
    );

    expect(encrypted.KeyId).toBe(arn);
    expect(Buffer.from(encrypted.CiphertextBlob ?? new Uint8Array()).includes(secret)).toBe(false);
    expect(Buffer.from(decrypted.Plaintext ?? new Uint8Array())).toEqual(secret);
    expect(decrypted.KeyId).toBe(arn);
  });

  it('refuses to decrypt with a different or missing encryption context', async () => {
    const { keyId } = await newKey();
    const { CiphertextBlob } = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: secret, EncryptionContext: context }));

    await expect(
      client.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { ...context, clusterId: 'cls_2' } })),
    ).rejects.toBeInstanceOf(InvalidCiphertextException);
    await expect(client.send(new DecryptCommand({ CiphertextBlob }))).rejects.toBeInstanceOf(InvalidCiphertextException);
  });

  it('refuses tampered ciphertext, wherever the change is', async () => {
    const { keyId } = await newKey();
    const { CiphertextBlob = new Uint8Array() } = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: secret }));

    for (const position of [0, 5, 20, 40, CiphertextBlob.length - 1]) {
      const tampered = Uint8Array.from(CiphertextBlob);
      tampered[position] = (tampered[position] ?? 0) ^ 0x01;
      await expect(client.send(new DecryptCommand({ CiphertextBlob: tampered })), `byte ${position}`).rejects.toBeInstanceOf(
        InvalidCiphertextException,
      );
    }
  });

  it('refuses a KeyId that is not the key the ciphertext was made with', async () => {
    const first = await newKey();
    const second = await newKey();
    const { CiphertextBlob } = await client.send(new EncryptCommand({ KeyId: first.keyId, Plaintext: secret }));

    await expect(client.send(new DecryptCommand({ CiphertextBlob, KeyId: second.keyId }))).rejects.toBeInstanceOf(IncorrectKeyException);
  });

  it('generates data keys whose blob decrypts to the plaintext it returned', async () => {
    const { keyId } = await newKey();

    const dataKey = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
    const opened = await client.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob, EncryptionContext: context }));
    const short = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 16 }));
    const sealedOnly = await client.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: 'AES_128' }));

    expect(dataKey.Plaintext).toHaveLength(32);
    expect(Buffer.from(opened.Plaintext ?? new Uint8Array())).toEqual(Buffer.from(dataKey.Plaintext ?? new Uint8Array()));
    expect(short.Plaintext).toHaveLength(16);
    expect('Plaintext' in sealedOnly).toBe(false);
    expect((await client.send(new DecryptCommand({ CiphertextBlob: sealedOnly.CiphertextBlob }))).Plaintext).toHaveLength(16);
  });

  it('answers unknown keys with NotFoundException and bad requests with ValidationException', async () => {
    const { keyId } = await newKey();

    await expect(client.send(new DescribeKeyCommand({ KeyId: '00000000-0000-4000-8000-000000000000' }))).rejects.toBeInstanceOf(
      NotFoundException,
    );
    await expect(client.send(new EncryptCommand({ KeyId: 'alias/missing', Plaintext: secret }))).rejects.toBeInstanceOf(NotFoundException);
    await expect(
      client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', NumberOfBytes: 32 })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.alloc(4097) }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });
});
