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
import { SandboxIam } from '../iam.ts';
import { type KmsService, startKmsService } from './server.ts';

let kms: KmsService;
let client: KMSClient;

beforeAll(async () => {
  kms = await startKmsService({ accountId: '210987654321' });
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

  it('fails the next calls of an operation when told to, then works again', async () => {
    const { keyId } = await newKey();
    kms.failNext('GenerateDataKey', 1);

    await expect(client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }))).rejects.toMatchObject({ name: 'KMSInternalException' });
    expect(kms.unusedFaults()).toBe(0);
    await expect(client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }))).resolves.toMatchObject({ KeyId: expect.any(String) as unknown });
  });

  it('refuses keys pending deletion, and keeps describing them', async () => {
    const { keyId, arn } = await newKey();
    const sealed = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: secret }));
    kms.keys.scheduleKeyDeletion(arn);

    await expect(client.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob }))).rejects.toMatchObject({ name: 'KMSInvalidStateException' });
    expect((await client.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({ KeyState: 'PendingDeletion', Enabled: false });
  });
});

describe('KMS keys across accounts and regions', () => {
  const iam = new SandboxIam('111111111111', 'home');
  let scoped: KmsService;
  const clientAs = (accessKeyId: string, secretAccessKey: string, region: string, sessionToken?: string) =>
    new KMSClient({ endpoint: scoped.endpoint, region, credentials: { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) }, maxAttempts: 1 });

  beforeAll(async () => {
    scoped = await startKmsService({ iam });
  });

  afterAll(async () => {
    await scoped.close();
  });

  it('keeps a key to its account and region, as AWS does', async () => {
    const home = clientAs('home', 'home', 'eu-central-1');
    const created = await home.send(new CreateKeyCommand({}));
    const arn = created.KeyMetadata?.Arn ?? '';
    expect(arn).toMatch(/^arn:aws:kms:eu-central-1:111111111111:key\//);
    const sealed = await home.send(new EncryptCommand({ KeyId: arn, Plaintext: secret }));

    // Same account, other region: the key is not there.
    await expect(clientAs('home', 'home', 'us-west-2').send(new DescribeKeyCommand({ KeyId: created.KeyMetadata?.KeyId }))).rejects.toBeInstanceOf(NotFoundException);
    // Another account (through an assumed role): not allowed, not even with the blob that names the key.
    const tenant = iam.assumeRole('arn:aws:iam::222222222222:role/kiln', 'kiln-test', 900);
    const other = clientAs(tenant.accessKeyId, tenant.secretAccessKey, 'eu-central-1', tenant.sessionToken);
    await expect(other.send(new DescribeKeyCommand({ KeyId: arn }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(other.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
    // Unknown credentials are refused outright.
    await expect(clientAs('stranger', 'x', 'eu-central-1').send(new CreateKeyCommand({}))).rejects.toMatchObject({ name: 'UnrecognizedClientException' });
  });

  it('creates the key a stack declared, in the account and region of its ARN, once', async () => {
    const arn = 'arn:aws:kms:eu-west-1:222222222222:key/0d7c6b2a-1f2e-4c3d-9a8b-7c6d5e4f3a2b';
    expect(scoped.keys.ensureKey(arn).Arn).toBe(arn);
    expect(scoped.keys.ensureKey(arn).CreationDate).toEqual(scoped.keys.ensureKey(arn).CreationDate);
    const tenant = iam.assumeRole('arn:aws:iam::222222222222:role/kiln', 'kiln-test', 900);
    const inAccount = clientAs(tenant.accessKeyId, tenant.secretAccessKey, 'eu-west-1', tenant.sessionToken);
    const dataKey = await inAccount.send(new GenerateDataKeyCommand({ KeyId: arn, KeySpec: 'AES_256' }));
    expect(dataKey.KeyId).toBe(arn);
  });
});
