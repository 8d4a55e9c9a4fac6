import {
  type CipherChaCha20Poly1305,
  type CipherGCM,
  type CipherGCMTypes,
  type DecipherChaCha20Poly1305,
  type DecipherGCM,
  createCipheriv,
  createDecipheriv,
  randomBytes,
} from 'node:crypto';
import { type JsonObject, arrayAt, isObject, objectAt, stringAt } from './json.ts';
import { KubeApiError } from './status.ts';

/**
 * Encryption at rest for Secrets, as kube-apiserver does it with an EncryptionConfiguration: the first provider
 * encrypts writes, every provider is tried on reads by the prefix the stored value carries
 * (`k8s:enc:<provider>:v1:<key>:`), and a value whose key is in no provider cannot be read.
 *
 * secretbox upstream is XSalsa20-Poly1305, which node:crypto lacks; the sandbox models it with ChaCha20-Poly1305,
 * another AEAD with a 32-byte key, since what matters here is which key a Secret is under, not the cipher.
 * kms (v2) goes through a plugin the caller hands over per endpoint, as the plugin beside a real API server listens
 * on its socket; a kms provider whose endpoint has no plugin keeps the API server from starting.
 */

export type AtRestProviderType = 'aescbc' | 'aesgcm' | 'secretbox' | 'kms' | 'identity';

/** What a KMS v2 plugin does for the API server: seal and open the bytes of one stored object. */
export interface KmsPlugin {
  encrypt(plaintext: Buffer): Buffer;
  decrypt(ciphertext: Buffer): Buffer;
}

/** Where one stored Secret's bytes came from, as `storedSecretKeys()` reports it. */
export interface StoredSecretKey {
  namespace: string;
  name: string;
  provider: AtRestProviderType;
  /** The key name in the EncryptionConfiguration; `identity` for a Secret stored in plain text. */
  key: string;
}

interface NamedKey {
  name: string;
  secret: Buffer;
}

type KeyedType = Exclude<AtRestProviderType, 'identity' | 'kms'>;
type Provider = { type: 'identity' } | { type: KeyedType; keys: NamedKey[] } | { type: 'kms'; name: string; plugin: KmsPlugin };

/** The store's `group/plural` key of the one resource encrypted: core Secrets. */
export const ENCRYPTED_RESOURCE = '/secrets';

/** What the store keeps for a Secret instead of the object: enough metadata to index it, and the sealed bytes. */
const SEALED_FIELD = 'sandbox.kiln.dev/sealed';
const ENCRYPTED_PREFIX = 'k8s:enc:';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const CBC_IV_BYTES = 16;

function invalid(message: string): KubeApiError {
  return new KubeApiError(400, 'BadRequest', `invalid EncryptionConfiguration: ${message}`);
}

function parseKeys(type: KeyedType, body: JsonObject): NamedKey[] {
  const keys = arrayAt(body, 'keys').map((entry) => {
    const name = isObject(entry) ? stringAt(entry, 'name') : undefined;
    const secret = isObject(entry) ? stringAt(entry, 'secret') : undefined;
    if (name === undefined || secret === undefined) throw invalid(`${type} keys need a name and a secret`);
    const bytes = Buffer.from(secret, 'base64');
    const sizes = type === 'secretbox' ? [32] : [16, 24, 32];
    if (!sizes.includes(bytes.length)) throw invalid(`${type} key ${name} must be ${sizes.join(', ')} bytes, got ${bytes.length}`);
    return { name, secret: bytes };
  });
  if (keys.length === 0) throw invalid(`${type} needs at least one key`);
  return keys;
}

function parseProviders(config: JsonObject, kmsPlugins: ReadonlyMap<string, KmsPlugin>): Provider[] {
  const entry = arrayAt(config, 'resources').find((resource) => isObject(resource) && arrayAt(resource, 'resources').includes('secrets'));
  if (!isObject(entry)) return [{ type: 'identity' }];
  const providers = arrayAt(entry, 'providers').map((provider): Provider => {
    if (!isObject(provider)) throw invalid('a provider must be an object');
    if (objectAt(provider, 'identity') !== undefined) return { type: 'identity' };
    for (const type of ['aescbc', 'aesgcm', 'secretbox'] as const) {
      const body = objectAt(provider, type);
      if (body !== undefined) return { type, keys: parseKeys(type, body) };
    }
    const kms = objectAt(provider, 'kms');
    if (kms !== undefined) {
      const name = stringAt(kms, 'name');
      const endpoint = stringAt(kms, 'endpoint');
      if (stringAt(kms, 'apiVersion') !== 'v2') throw invalid('kms providers must be apiVersion v2 (v1 is deprecated)');
      if (name === undefined || endpoint === undefined) throw invalid('kms needs a name and an endpoint');
      const plugin = kmsPlugins.get(endpoint);
      if (plugin === undefined) throw invalid(`no KMS plugin answers on ${endpoint}`);
      return { type: 'kms', name, plugin };
    }
    throw invalid(`unsupported provider ${Object.keys(provider).join(', ')}`);
  });
  if (providers.length === 0) throw invalid('secrets need at least one provider');
  return providers;
}

function aeadCipher(type: 'aesgcm' | 'secretbox', key: Buffer, nonce: Buffer): CipherGCM | CipherChaCha20Poly1305 {
  if (type === 'secretbox') return createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
  return createCipheriv(`aes-${key.length * 8}-gcm` as CipherGCMTypes, key, nonce, { authTagLength: TAG_BYTES });
}

function aeadDecipher(type: 'aesgcm' | 'secretbox', key: Buffer, nonce: Buffer): DecipherGCM | DecipherChaCha20Poly1305 {
  if (type === 'secretbox') return createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
  return createDecipheriv(`aes-${key.length * 8}-gcm` as CipherGCMTypes, key, nonce, { authTagLength: TAG_BYTES });
}

/** `additional` is the storage path, so a value copied to another Secret's place does not decrypt (as upstream aesgcm). */
function encrypt(type: KeyedType, key: Buffer, plaintext: Buffer, additional: Buffer): Buffer {
  if (type === 'aescbc') {
    const iv = randomBytes(CBC_IV_BYTES);
    const cipher = createCipheriv(`aes-${key.length * 8}-cbc`, key, iv);
    return Buffer.concat([iv, cipher.update(plaintext), cipher.final()]);
  }
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = aeadCipher(type, key, nonce);
  cipher.setAAD(additional, { plaintextLength: plaintext.length });
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

function decrypt(type: KeyedType, key: Buffer, sealed: Buffer, additional: Buffer): Buffer {
  if (type === 'aescbc') {
    const decipher = createDecipheriv(`aes-${key.length * 8}-cbc`, key, sealed.subarray(0, CBC_IV_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(CBC_IV_BYTES)), decipher.final()]);
  }
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  const decipher = aeadDecipher(type, key, sealed.subarray(0, NONCE_BYTES));
  decipher.setAAD(additional, { plaintextLength: body.length });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(body), decipher.final()]);
}

function storagePath(namespace: string, name: string): string {
  return `/registry/secrets/${namespace}/${name}`;
}

function transformFailed(namespace: string, name: string, reason: string): KubeApiError {
  return new KubeApiError(500, 'InternalError', `Internal error occurred: unable to transform key "${storagePath(namespace, name)}": ${reason}`);
}

/** Decides how Secrets are stored; with no configuration they are stored as plain objects, as before. */
export class SecretEncryptionAtRest {
  private providers: Provider[] | undefined;

  /**
   * Takes an EncryptionConfiguration (as kube-apiserver reads it on start), or undefined to stop encrypting, and the
   * KMS plugins listening on this machine, by endpoint.
   */
  configure(config: JsonObject | undefined, kmsPlugins: ReadonlyMap<string, KmsPlugin> = new Map()): void {
    this.providers = config === undefined ? undefined : parseProviders(config, kmsPlugins);
  }

  /** Only core Secrets are encrypted; `resource` is the store's `group/plural` key. */
  applies(resource: string): boolean {
    return resource === ENCRYPTED_RESOURCE;
  }

  /** What to store for a Secret under the first provider. */
  seal(namespace: string, name: string, object: JsonObject): JsonObject {
    const first = this.providers?.[0];
    if (first === undefined || first.type === 'identity') return object;
    if (first.type === 'kms') {
      const sealed = first.plugin.encrypt(Buffer.from(JSON.stringify(object)));
      return { metadata: { namespace, name }, [SEALED_FIELD]: `${ENCRYPTED_PREFIX}kms:v2:${first.name}:${sealed.toString('base64')}` };
    }
    const [key] = first.keys;
    if (key === undefined) return object;
    const prefix = `${ENCRYPTED_PREFIX}${first.type}:v1:${key.name}:`;
    const sealed = encrypt(first.type, key.secret, Buffer.from(JSON.stringify(object)), Buffer.from(storagePath(namespace, name)));
    return { metadata: { namespace, name }, [SEALED_FIELD]: prefix + sealed.toString('base64') };
  }

  /** The Secret a stored value holds, or a 500 as upstream when no configured key matches. */
  open(namespace: string, name: string, stored: JsonObject): JsonObject {
    const value = stringAt(stored, SEALED_FIELD);
    const providers = this.providers ?? [{ type: 'identity' }];
    if (value === undefined) {
      if (providers.some((provider) => provider.type === 'identity')) return stored;
      throw transformFailed(namespace, name, 'no matching prefix found');
    }
    for (const provider of providers) {
      if (provider.type === 'identity') continue;
      if (provider.type === 'kms') {
        const prefix = `${ENCRYPTED_PREFIX}kms:v2:${provider.name}:`;
        if (!value.startsWith(prefix)) continue;
        let plaintext: Buffer;
        try {
          plaintext = provider.plugin.decrypt(Buffer.from(value.slice(prefix.length), 'base64'));
        } catch (error) {
          throw transformFailed(namespace, name, `kms plugin ${provider.name}: ${error instanceof Error ? error.message : String(error)}`);
        }
        const object: unknown = JSON.parse(plaintext.toString('utf8'));
        if (isObject(object)) return object;
        continue;
      }
      for (const key of provider.keys) {
        const prefix = `${ENCRYPTED_PREFIX}${provider.type}:v1:${key.name}:`;
        if (!value.startsWith(prefix)) continue;
        try {
          const plaintext = decrypt(provider.type, key.secret, Buffer.from(value.slice(prefix.length), 'base64'), Buffer.from(storagePath(namespace, name)));
          const object: unknown = JSON.parse(plaintext.toString('utf8'));
          if (isObject(object)) return object;
        } catch {
          // Same key name, different material: try the next provider like upstream, then fail below.
        }
      }
    }
    throw transformFailed(namespace, name, value.startsWith(ENCRYPTED_PREFIX) ? 'no matching key for the stored prefix' : 'no matching prefix found');
  }

  /**
   * Whether a stored value is under something other than the first provider's first key. kube-apiserver marks such
   * reads stale and writes them even when an update changes nothing, which is what lets "read and replace every
   * Secret" move them to the new key.
   */
  isStale(namespace: string, name: string, stored: JsonObject): boolean {
    const first = this.providers?.[0] ?? { type: 'identity' };
    const current = this.describe(namespace, name, stored);
    if (first.type === 'identity') return current.provider !== 'identity';
    if (first.type === 'kms') return current.provider !== 'kms' || current.key !== first.name;
    return current.provider !== first.type || current.key !== first.keys[0]?.name;
  }

  /** Which provider and key a stored value is under, read from its prefix without decrypting. */
  describe(namespace: string, name: string, stored: JsonObject): StoredSecretKey {
    const value = stringAt(stored, SEALED_FIELD);
    if (value === undefined) return { namespace, name, provider: 'identity', key: 'identity' };
    const [provider, , key] = value.slice(ENCRYPTED_PREFIX.length).split(':');
    const type = provider === 'aescbc' || provider === 'aesgcm' || provider === 'secretbox' || provider === 'kms' ? provider : 'identity';
    return { namespace, name, provider: type, key: key ?? '' };
  }
}
