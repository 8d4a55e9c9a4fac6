import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { AwsServiceError } from '../aws-json.ts';
import type { AwsScope } from '../iam.ts';

/**
 * Symmetric KMS keys held in memory, with real cryptography: AES-256-GCM under
 * a random 256-bit master key per KMS key. A ciphertext blob names its key,
 * and the encryption context is authenticated data, so decrypting needs the
 * same context, byte for byte, and any tampering fails.
 *
 * Blob layout: version (1) | key id as UUID bytes (16) | IV (12) | tag (16) | ciphertext.
 */

const BLOB_VERSION = 1;
const HEADER_BYTES = 1 + 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MAX_PLAINTEXT_BYTES = 4096;
const SYMMETRIC_DEFAULT = 'SYMMETRIC_DEFAULT';

export type EncryptionContext = Record<string, string>;

export interface KeyMetadata {
  AWSAccountId: string;
  KeyId: string;
  Arn: string;
  CreationDate: Date;
  Enabled: boolean;
  Description: string;
  KeyUsage: 'ENCRYPT_DECRYPT';
  KeyState: 'Enabled' | 'PendingDeletion';
  DeletionDate?: Date;
  Origin: 'AWS_KMS';
  KeyManager: 'CUSTOMER';
  CustomerMasterKeySpec: typeof SYMMETRIC_DEFAULT;
  KeySpec: typeof SYMMETRIC_DEFAULT;
  EncryptionAlgorithms: [typeof SYMMETRIC_DEFAULT];
  MultiRegion: false;
}

interface LocalKey {
  metadata: KeyMetadata;
  material: Buffer;
  scope: AwsScope;
}

export interface Sealed {
  keyArn: string;
  ciphertextBlob: Buffer;
}

/**
 * Keys are regional and belong to an account, as in AWS: every call names the
 * account and region it acts in, and a key elsewhere is not found (another
 * region) or not allowed (another account; the sandbox has no cross-account
 * key policies).
 */
export class KmsKeyStore {
  private readonly keys = new Map<string, LocalKey>();
  /** By `<account>/<region>/<alias name>`. */
  private readonly aliases = new Map<string, string>();

  /**
   * With a file, the keys (their material too: these are the sandbox's own keys, on the developer's disk) outlive a
   * restart, as AWS's do: local mode with KILN_DATA_DIR keeps them beside its data, so what they sealed still opens.
   */
  constructor(private readonly file?: string) {
    if (file === undefined || !existsSync(file)) return;
    const saved = JSON.parse(readFileSync(file, 'utf8')) as {
      keys: { metadata: KeyMetadata & { CreationDate: string; DeletionDate?: string }; material: string; scope: AwsScope }[];
      aliases: [string, string][];
    };
    for (const key of saved.keys) {
      const { CreationDate, DeletionDate, ...metadata } = key.metadata;
      this.keys.set(metadata.KeyId, {
        metadata: { ...metadata, CreationDate: new Date(CreationDate), ...(DeletionDate === undefined ? {} : { DeletionDate: new Date(DeletionDate) }) },
        material: Buffer.from(key.material, 'base64'),
        scope: key.scope,
      });
    }
    for (const [name, keyId] of saved.aliases) this.aliases.set(name, keyId);
  }

  private persist(): void {
    if (this.file === undefined) return;
    const keys = [...this.keys.values()].map((key) => ({ metadata: key.metadata, material: key.material.toString('base64'), scope: key.scope }));
    writeFileSync(this.file, JSON.stringify({ keys, aliases: [...this.aliases.entries()] }), { mode: 0o600 });
  }

  createKey(scope: AwsScope, description = '', keyId: string = randomUUID()): KeyMetadata {
    const metadata: KeyMetadata = {
      AWSAccountId: scope.accountId,
      KeyId: keyId,
      Arn: `arn:aws:kms:${scope.region}:${scope.accountId}:key/${keyId}`,
      CreationDate: new Date(),
      Enabled: true,
      Description: description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: 'Enabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: SYMMETRIC_DEFAULT,
      KeySpec: SYMMETRIC_DEFAULT,
      EncryptionAlgorithms: [SYMMETRIC_DEFAULT],
      MultiRegion: false,
    };
    this.keys.set(keyId, { metadata, material: randomBytes(32), scope: { ...scope } });
    this.persist();
    return metadata;
  }

  /**
   * The key a key ARN names, created if it does not exist yet: what AWS does
   * when a Pulumi program (run under mocks in the sandbox) declares a key.
   */
  ensureKey(keyArn: string, description = ''): KeyMetadata {
    const parsed = KEY_ARN.exec(keyArn);
    if (parsed?.[1] === undefined || parsed[2] === undefined || parsed[3] === undefined) throw new Error(`${keyArn} is not a KMS key ARN`);
    return this.keys.get(parsed[3])?.metadata ?? this.createKey({ region: parsed[1], accountId: parsed[2] }, description, parsed[3]);
  }

  /** What deleting the key's stack does: the key waits out its deletion window, unusable. */
  scheduleKeyDeletion(keyArn: string, pendingWindowInDays = 30): void {
    const id = KEY_ARN.exec(keyArn)?.[3];
    const key = id === undefined ? undefined : this.keys.get(id);
    if (key === undefined) return;
    key.metadata = { ...key.metadata, Enabled: false, KeyState: 'PendingDeletion', DeletionDate: new Date(Date.now() + pendingWindowInDays * 86_400_000) };
    this.persist();
  }

  createAlias(scope: AwsScope, aliasName: string, targetKeyId: string): void {
    if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(aliasName) || aliasName.startsWith('alias/aws/')) {
      throw new AwsServiceError('ValidationException', `Alias must start with the prefix "alias/" and may not begin with "alias/aws/": ${aliasName}`);
    }
    const name = aliasKey(scope, aliasName);
    if (this.aliases.has(name)) {
      throw new AwsServiceError('AlreadyExistsException', `An alias with the name ${aliasArn(scope, aliasName)} already exists`);
    }
    this.aliases.set(name, this.key(scope, targetKeyId).metadata.KeyId);
    this.persist();
  }

  describeKey(scope: AwsScope, keyId: string): KeyMetadata {
    return this.key(scope, keyId).metadata;
  }

  encrypt(scope: AwsScope, keyId: string, plaintext: Buffer, context: EncryptionContext = {}): Sealed {
    if (plaintext.length < 1 || plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new AwsServiceError('ValidationException', `Plaintext must be between 1 and ${MAX_PLAINTEXT_BYTES} bytes long.`);
    }
    const key = usable(this.key(scope, keyId));
    const header = Buffer.concat([Buffer.from([BLOB_VERSION]), uuidBytes(key.metadata.KeyId)]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.material, iv);
    cipher.setAAD(additionalData(header, context));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { keyArn: key.metadata.Arn, ciphertextBlob: Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]) };
  }

  decrypt(scope: AwsScope, ciphertextBlob: Buffer, context: EncryptionContext = {}, expectedKeyId?: string): { keyArn: string; plaintext: Buffer } {
    const invalid = (): AwsServiceError =>
      new AwsServiceError('InvalidCiphertextException', 'The ciphertext is invalid, was not made by this KMS, or its encryption context does not match.');
    if (ciphertextBlob.length <= HEADER_BYTES + IV_BYTES + TAG_BYTES || ciphertextBlob[0] !== BLOB_VERSION) throw invalid();
    const header = ciphertextBlob.subarray(0, HEADER_BYTES);
    const found = this.keys.get(uuidFromBytes(header.subarray(1)));
    if (!found) throw invalid();
    // The blob names its key; using it still needs the caller's account and region to hold it.
    const key = usable(this.key(scope, found.metadata.Arn));
    if (expectedKeyId !== undefined && this.key(scope, expectedKeyId) !== key) {
      throw new AwsServiceError('IncorrectKeyException', 'The key ID in the request does not identify the KMS key that encrypted the ciphertext.');
    }
    const iv = ciphertextBlob.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
    const tag = ciphertextBlob.subarray(HEADER_BYTES + IV_BYTES, HEADER_BYTES + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key.material, iv);
    decipher.setAAD(additionalData(header, context));
    decipher.setAuthTag(tag);
    try {
      const plaintext = Buffer.concat([decipher.update(ciphertextBlob.subarray(HEADER_BYTES + IV_BYTES + TAG_BYTES)), decipher.final()]);
      return { keyArn: key.metadata.Arn, plaintext };
    } catch {
      throw invalid();
    }
  }

  /** A fresh data key, returned in the clear and sealed under the KMS key. */
  generateDataKey(scope: AwsScope, keyId: string, numberOfBytes: number, context: EncryptionContext = {}): Sealed & { plaintext: Buffer } {
    const plaintext = randomBytes(numberOfBytes);
    return { ...this.encrypt(scope, keyId, plaintext, context), plaintext };
  }

  /** Finds a key of the caller's account and region by id, key ARN, alias name or alias ARN. */
  private key(scope: AwsScope, keyId: string): LocalKey {
    const arn = /^arn:aws[a-z-]*:kms:([^:]*):(\d*):(.+)$/.exec(keyId);
    if (arn?.[1] !== undefined && arn[2] !== undefined && arn[2] !== scope.accountId) {
      throw new AwsServiceError('AccessDeniedException', `The caller in account ${scope.accountId} is not authorized to use ${keyId}.`);
    }
    const inScope = arn === null || arn[1] === scope.region;
    const aliasName = /^(?:arn:aws[a-z-]*:kms:[^:]*:\d*:)?(alias\/.+)$/.exec(keyId)?.[1];
    if (aliasName !== undefined) {
      const target = inScope ? this.aliases.get(aliasKey(scope, aliasName)) : undefined;
      const key = target === undefined ? undefined : this.keys.get(target);
      if (!key) throw new AwsServiceError('NotFoundException', `Alias ${aliasArn(scope, aliasName)} is not found.`);
      return key;
    }
    const id = /^arn:aws[a-z-]*:kms:[^:]*:\d*:key\/(.+)$/.exec(keyId)?.[1] ?? keyId;
    const key = this.keys.get(id);
    if (!key || !inScope || key.scope.accountId !== scope.accountId || key.scope.region !== scope.region) {
      throw new AwsServiceError('NotFoundException', `Key 'arn:aws:kms:${scope.region}:${scope.accountId}:key/${id}' does not exist`);
    }
    return key;
  }
}

const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key\/([0-9a-f-]{36})$/;

function usable(key: LocalKey): LocalKey {
  if (key.metadata.KeyState !== 'Enabled') {
    throw new AwsServiceError('KMSInvalidStateException', `${key.metadata.Arn} is pending deletion.`);
  }
  return key;
}

function aliasKey(scope: AwsScope, aliasName: string): string {
  return `${scope.accountId}/${scope.region}/${aliasName}`;
}

function aliasArn(scope: AwsScope, aliasName: string): string {
  return `arn:aws:kms:${scope.region}:${scope.accountId}:${aliasName}`;
}

/** The blob header and the context, in an order that does not depend on how the caller built the map. */
function additionalData(header: Buffer, context: EncryptionContext): Buffer {
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.concat([header, Buffer.from(JSON.stringify(entries), 'utf8')]);
}

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

function uuidFromBytes(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const DEK_BYTES = 32;

/**
 * What aws-encryption-provider does for a KMS v2 API server, against the
 * sandbox's keys: each write gets a data key from GenerateDataKey under the
 * cluster's key (in the machine's account and region), seals the object with
 * it (AES-256-GCM), and stores the wrapped data key beside it. Opening needs
 * KMS to unwrap it, so a key pending deletion or out of reach makes Secrets
 * unreadable, as it would in AWS.
 *
 * Layout: wrapped key length (2, big-endian) | wrapped key | IV (12) | tag (16) | ciphertext.
 */
export function kmsV2Plugin(keys: KmsKeyStore, scope: AwsScope, keyArn: string): { encrypt(plaintext: Buffer): Buffer; decrypt(sealed: Buffer): Buffer } {
  return {
    encrypt: (plaintext) => {
      const dataKey = keys.generateDataKey(scope, keyArn, DEK_BYTES);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', dataKey.plaintext, iv);
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(dataKey.ciphertextBlob.length);
      return Buffer.concat([length, dataKey.ciphertextBlob, iv, cipher.getAuthTag(), ciphertext]);
    },
    decrypt: (sealed) => {
      const wrappedLength = sealed.readUInt16BE(0);
      const wrapped = sealed.subarray(2, 2 + wrappedLength);
      const rest = sealed.subarray(2 + wrappedLength);
      const dataKey = keys.decrypt(scope, wrapped, {}, keyArn).plaintext;
      const decipher = createDecipheriv('aes-256-gcm', dataKey, rest.subarray(0, IV_BYTES));
      decipher.setAuthTag(rest.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(rest.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    },
  };
}
