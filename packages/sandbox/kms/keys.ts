import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { AwsServiceError } from '../aws-json.ts';

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
  KeyState: 'Enabled';
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
}

export interface Sealed {
  keyArn: string;
  ciphertextBlob: Buffer;
}

export class KmsKeyStore {
  private readonly region: string;
  private readonly accountId: string;
  private readonly keys = new Map<string, LocalKey>();
  private readonly aliases = new Map<string, string>();

  constructor(region: string, accountId: string) {
    this.region = region;
    this.accountId = accountId;
  }

  createKey(description = ''): KeyMetadata {
    const keyId = randomUUID();
    const metadata: KeyMetadata = {
      AWSAccountId: this.accountId,
      KeyId: keyId,
      Arn: `arn:aws:kms:${this.region}:${this.accountId}:key/${keyId}`,
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
    this.keys.set(keyId, { metadata, material: randomBytes(32) });
    return metadata;
  }

  createAlias(aliasName: string, targetKeyId: string): void {
    if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(aliasName) || aliasName.startsWith('alias/aws/')) {
      throw new AwsServiceError('ValidationException', `Alias must start with the prefix "alias/" and may not begin with "alias/aws/": ${aliasName}`);
    }
    if (this.aliases.has(aliasName)) {
      throw new AwsServiceError('AlreadyExistsException', `An alias with the name ${this.aliasArn(aliasName)} already exists`);
    }
    this.aliases.set(aliasName, this.key(targetKeyId).metadata.KeyId);
  }

  describeKey(keyId: string): KeyMetadata {
    return this.key(keyId).metadata;
  }

  encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext = {}): Sealed {
    if (plaintext.length < 1 || plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new AwsServiceError('ValidationException', `Plaintext must be between 1 and ${MAX_PLAINTEXT_BYTES} bytes long.`);
    }
    const key = this.key(keyId);
    const header = Buffer.concat([Buffer.from([BLOB_VERSION]), uuidBytes(key.metadata.KeyId)]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.material, iv);
    cipher.setAAD(additionalData(header, context));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { keyArn: key.metadata.Arn, ciphertextBlob: Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]) };
  }

  decrypt(ciphertextBlob: Buffer, context: EncryptionContext = {}, expectedKeyId?: string): { keyArn: string; plaintext: Buffer } {
    const invalid = (): AwsServiceError =>
      new AwsServiceError('InvalidCiphertextException', 'The ciphertext is invalid, was not made by this KMS, or its encryption context does not match.');
    if (ciphertextBlob.length <= HEADER_BYTES + IV_BYTES + TAG_BYTES || ciphertextBlob[0] !== BLOB_VERSION) throw invalid();
    const header = ciphertextBlob.subarray(0, HEADER_BYTES);
    const key = this.keys.get(uuidFromBytes(header.subarray(1)));
    if (!key) throw invalid();
    if (expectedKeyId !== undefined && this.key(expectedKeyId) !== key) {
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
  generateDataKey(keyId: string, numberOfBytes: number, context: EncryptionContext = {}): Sealed & { plaintext: Buffer } {
    const plaintext = randomBytes(numberOfBytes);
    return { ...this.encrypt(keyId, plaintext, context), plaintext };
  }

  /** Finds a key by id, key ARN, alias name or alias ARN. */
  private key(keyId: string): LocalKey {
    const aliasName = /^(?:arn:aws[a-z-]*:kms:[^:]*:\d*:)?(alias\/.+)$/.exec(keyId)?.[1];
    if (aliasName !== undefined) {
      const target = this.aliases.get(aliasName);
      const key = target === undefined ? undefined : this.keys.get(target);
      if (!key) throw new AwsServiceError('NotFoundException', `Alias ${this.aliasArn(aliasName)} is not found.`);
      return key;
    }
    const id = /^arn:aws[a-z-]*:kms:[^:]*:\d*:key\/(.+)$/.exec(keyId)?.[1] ?? keyId;
    const key = this.keys.get(id);
    if (!key) throw new AwsServiceError('NotFoundException', `Key '${this.keyArn(id)}' does not exist`);
    return key;
  }

  private keyArn(keyId: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:key/${keyId}`;
  }

  private aliasArn(aliasName: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:${aliasName}`;
  }
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
