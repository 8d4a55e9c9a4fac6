import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';

/**
 * Wraps secrets (data keys, tokens, private keys, PKI bundles) with a KMS
 * key. The encryption context binds a ciphertext to its tenant, cluster and
 * purpose, so a blob copied to another record does not decrypt.
 */
export interface SecretSealer {
  seal(plaintext: Uint8Array, context: Record<string, string>): Promise<string>;
  unseal(sealed: string, context: Record<string, string>): Promise<Uint8Array>;
}

const SCHEME = 'kms-envelope:v1';
const IV_BYTES = 12;

/**
 * Envelope encryption: KMS generates a fresh data key per secret and returns
 * it wrapped; the secret is sealed locally with AES-256-GCM under that key,
 * so secrets of any size work and KMS only ever sees 32-byte keys.
 */
export class KmsSealer implements SecretSealer {
  /**
   * `kms` gives the client when first needed: the KMS client's code is loaded only then (most API requests seal
   * nothing, so their Lambda's cold start does not carry it).
   */
  constructor(
    private readonly kms: () => Promise<Pick<KMSClient, 'send'>>,
    private readonly keyId: string,
  ) {}

  async seal(plaintext: Uint8Array, context: Record<string, string>): Promise<string> {
    const { GenerateDataKeyCommand } = await import('@aws-sdk/client-kms');
    const dataKey = await (await this.kms()).send(new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: context }));
    if (dataKey.Plaintext === undefined || dataKey.CiphertextBlob === undefined) throw new Error('KMS returned no data key');
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dataKey.Plaintext, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    dataKey.Plaintext.fill(0);
    const parts = [Buffer.from(dataKey.CiphertextBlob), iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString('base64'));
    return `${SCHEME}:${parts.join(':')}`;
  }

  async unseal(sealed: string, context: Record<string, string>): Promise<Uint8Array> {
    if (!sealed.startsWith(`${SCHEME}:`)) throw new Error('Not a secret this sealer wrote');
    const [wrappedKey, iv, tag, ciphertext] = sealed
      .slice(SCHEME.length + 1)
      .split(':')
      .map((part) => Buffer.from(part, 'base64'));
    if (wrappedKey === undefined || iv === undefined || tag === undefined || ciphertext === undefined) {
      throw new Error('The sealed secret is truncated');
    }
    const { DecryptCommand } = await import('@aws-sdk/client-kms');
    const dataKey = await (await this.kms()).send(new DecryptCommand({ KeyId: this.keyId, CiphertextBlob: wrappedKey, EncryptionContext: context }));
    if (dataKey.Plaintext === undefined) throw new Error('KMS returned no plaintext');
    const decipher = createDecipheriv('aes-256-gcm', dataKey.Plaintext, iv);
    decipher.setAuthTag(tag);
    const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    dataKey.Plaintext.fill(0);
    return plaintext;
  }
}
