import { DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';

/**
 * Wraps small secrets (data keys, tokens) with a KMS key. The encryption
 * context binds a ciphertext to its tenant, cluster and purpose, so a blob
 * copied to another record does not decrypt.
 */
export interface SecretSealer {
  seal(plaintext: Uint8Array, context: Record<string, string>): Promise<string>;
  unseal(sealed: string, context: Record<string, string>): Promise<Uint8Array>;
}

export class KmsSealer implements SecretSealer {
  constructor(
    private readonly kms: KMSClient,
    private readonly keyId: string,
  ) {}

  async seal(plaintext: Uint8Array, context: Record<string, string>): Promise<string> {
    const result = await this.kms.send(new EncryptCommand({ KeyId: this.keyId, Plaintext: plaintext, EncryptionContext: context }));
    if (result.CiphertextBlob === undefined) throw new Error('KMS returned no ciphertext');
    return `kms:v1:${Buffer.from(result.CiphertextBlob).toString('base64')}`;
  }

  async unseal(sealed: string, context: Record<string, string>): Promise<Uint8Array> {
    const [scheme, version, blob] = sealed.split(':');
    if (scheme !== 'kms' || version !== 'v1' || blob === undefined) throw new Error('Not a sealed secret this sealer wrote');
    const result = await this.kms.send(
      new DecryptCommand({ KeyId: this.keyId, CiphertextBlob: Buffer.from(blob, 'base64'), EncryptionContext: context }),
    );
    if (result.Plaintext === undefined) throw new Error('KMS returned no plaintext');
    return result.Plaintext;
  }
}
