import { z } from 'zod';
import { AwsServiceError, epochSeconds, parseRequest, serveAwsJson } from '../aws-json.ts';
import { type KeyMetadata, KmsKeyStore } from './keys.ts';

export interface KmsServiceOptions {
  /** 0 or absent picks a free port. */
  port?: number;
  region?: string;
  accountId?: string;
}

export interface KmsService {
  /** Give it to `new KMSClient({ endpoint })`. */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * A local KMS: the AWS JSON 1.1 API (CreateKey, CreateAlias, DescribeKey,
 * Encrypt, Decrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext) over
 * HTTP, so `@aws-sdk/client-kms` and envelope code work unchanged. Keys live
 * in memory and die with the service; nothing is logged.
 */
export async function startKmsService(options: KmsServiceOptions = {}): Promise<KmsService> {
  const keys = new KmsKeyStore(options.region ?? 'us-east-1', options.accountId ?? '123456789012');
  const server = await serveAwsJson({
    ...(options.port === undefined ? {} : { port: options.port }),
    targetPrefix: 'TrentService',
    contentType: 'application/x-amz-json-1.1',
    operations: {
      CreateKey: (request) => {
        const { Description, KeyUsage, KeySpec, CustomerMasterKeySpec } = parseRequest(CreateKeyRequest, request);
        const spec = KeySpec ?? CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
        if ((KeyUsage ?? 'ENCRYPT_DECRYPT') !== 'ENCRYPT_DECRYPT' || spec !== 'SYMMETRIC_DEFAULT') {
          throw new AwsServiceError('UnsupportedOperationException', 'The KMS sandbox makes symmetric ENCRYPT_DECRYPT keys only.');
        }
        return { KeyMetadata: keyMetadata(keys.createKey(Description)) };
      },
      CreateAlias: (request) => {
        const { AliasName, TargetKeyId } = parseRequest(CreateAliasRequest, request);
        keys.createAlias(AliasName, TargetKeyId);
        return {};
      },
      DescribeKey: (request) => ({ KeyMetadata: keyMetadata(keys.describeKey(parseRequest(KeyRequest, request).KeyId)) }),
      Encrypt: (request) => {
        const { KeyId, Plaintext, EncryptionContext, EncryptionAlgorithm } = parseRequest(EncryptRequest, request);
        requireSymmetricDefault(EncryptionAlgorithm);
        const sealed = keys.encrypt(KeyId, Buffer.from(Plaintext, 'base64'), EncryptionContext);
        return { CiphertextBlob: sealed.ciphertextBlob.toString('base64'), KeyId: sealed.keyArn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      },
      Decrypt: (request) => {
        const { CiphertextBlob, EncryptionContext, KeyId, EncryptionAlgorithm } = parseRequest(DecryptRequest, request);
        requireSymmetricDefault(EncryptionAlgorithm);
        const opened = keys.decrypt(Buffer.from(CiphertextBlob, 'base64'), EncryptionContext, KeyId);
        return { KeyId: opened.keyArn, Plaintext: opened.plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      },
      GenerateDataKey: (request) => {
        const parsed = parseRequest(GenerateDataKeyRequest, request);
        const dataKey = keys.generateDataKey(parsed.KeyId, dataKeyBytes(parsed), parsed.EncryptionContext);
        return { CiphertextBlob: dataKey.ciphertextBlob.toString('base64'), Plaintext: dataKey.plaintext.toString('base64'), KeyId: dataKey.keyArn };
      },
      GenerateDataKeyWithoutPlaintext: (request) => {
        const parsed = parseRequest(GenerateDataKeyRequest, request);
        const dataKey = keys.generateDataKey(parsed.KeyId, dataKeyBytes(parsed), parsed.EncryptionContext);
        return { CiphertextBlob: dataKey.ciphertextBlob.toString('base64'), KeyId: dataKey.keyArn };
      },
    },
  });
  return { endpoint: server.endpoint, close: () => server.close() };
}

const Context = z.record(z.string(), z.string()).optional();
const Blob = z.base64().min(1);
const KeyId = z.string().min(1).max(2048);

const CreateKeyRequest = z.object({
  Description: z.string().max(8192).optional(),
  KeyUsage: z.string().optional(),
  KeySpec: z.string().optional(),
  CustomerMasterKeySpec: z.string().optional(),
});
const CreateAliasRequest = z.object({ AliasName: z.string(), TargetKeyId: KeyId });
const KeyRequest = z.object({ KeyId });
const EncryptRequest = z.object({ KeyId, Plaintext: Blob, EncryptionContext: Context, EncryptionAlgorithm: z.string().optional() });
const DecryptRequest = z.object({
  CiphertextBlob: Blob,
  EncryptionContext: Context,
  KeyId: KeyId.optional(),
  EncryptionAlgorithm: z.string().optional(),
});
const GenerateDataKeyRequest = z.object({
  KeyId,
  KeySpec: z.enum(['AES_256', 'AES_128']).optional(),
  NumberOfBytes: z.int().min(1).max(1024).optional(),
  EncryptionContext: Context,
});

function dataKeyBytes(request: z.infer<typeof GenerateDataKeyRequest>): number {
  if ((request.KeySpec === undefined) === (request.NumberOfBytes === undefined)) {
    throw new AwsServiceError('ValidationException', 'Specify either KeySpec or NumberOfBytes, but not both.');
  }
  if (request.NumberOfBytes !== undefined) return request.NumberOfBytes;
  return request.KeySpec === 'AES_128' ? 16 : 32;
}

function requireSymmetricDefault(algorithm: string | undefined): void {
  if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw new AwsServiceError('InvalidKeyUsageException', `Symmetric keys support SYMMETRIC_DEFAULT only, not ${algorithm}.`);
  }
}

function keyMetadata(metadata: KeyMetadata): Record<string, unknown> {
  return { ...metadata, CreationDate: epochSeconds(metadata.CreationDate) };
}

