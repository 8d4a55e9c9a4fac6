import { z } from 'zod';
import { type AwsCaller, AwsServiceError, epochSeconds, parseRequest, serveAwsJson } from '../aws-json.ts';
import type { AwsScope, SandboxIam } from '../iam.ts';
import { type KeyMetadata, KmsKeyStore } from './keys.ts';

export interface KmsServiceOptions {
  /** 0 or absent picks a free port. */
  port?: number;
  /** Resolves each caller's account; without it every caller acts in `accountId`. */
  iam?: SandboxIam;
  accountId?: string;
  /** Keep the keys in this file (and load them from it), so they outlive a restart. */
  keyFile?: string;
}

export interface KmsService {
  /** Give it to `new KMSClient({ endpoint })`. */
  endpoint: string;
  /** The keys themselves, for what AWS does outside the API (a Pulumi stack creating or deleting a key). */
  keys: KmsKeyStore;
  /** Fault injection: the next `times` calls of the operation fail with this AWS error (default a 500 KMSInternalException). */
  failNext(operation: string, times: number, error?: AwsServiceError): void;
  /** Injected failures not yet hit. */
  unusedFaults(): number;
  clearFaults(): void;
  close(): Promise<void>;
}

/**
 * A local KMS: the AWS JSON 1.1 API (CreateKey, CreateAlias, DescribeKey,
 * Encrypt, Decrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext) over
 * HTTP, so `@aws-sdk/client-kms` and envelope code work unchanged. Keys live
 * in memory and die with the service; nothing is logged.
 */
export async function startKmsService(options: KmsServiceOptions = {}): Promise<KmsService> {
  const keys = new KmsKeyStore(options.keyFile);
  const scopeOf = (caller: AwsCaller): AwsScope => options.iam?.scopeOf(caller) ?? { accountId: options.accountId ?? '123456789012', region: caller.region };
  const faults: { operation: string; remaining: number; error: AwsServiceError }[] = [];
  const operations: Record<string, (request: Record<string, unknown>, scope: AwsScope) => unknown> = {
      CreateKey: (request, scope) => {
        const { Description, KeyUsage, KeySpec, CustomerMasterKeySpec } = parseRequest(CreateKeyRequest, request);
        const spec = KeySpec ?? CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
        if ((KeyUsage ?? 'ENCRYPT_DECRYPT') !== 'ENCRYPT_DECRYPT' || spec !== 'SYMMETRIC_DEFAULT') {
          throw new AwsServiceError('UnsupportedOperationException', 'The KMS sandbox makes symmetric ENCRYPT_DECRYPT keys only.');
        }
        return { KeyMetadata: keyMetadata(keys.createKey(scope, Description)) };
      },
      CreateAlias: (request, scope) => {
        const { AliasName, TargetKeyId } = parseRequest(CreateAliasRequest, request);
        keys.createAlias(scope, AliasName, TargetKeyId);
        return {};
      },
      DescribeKey: (request, scope) => ({ KeyMetadata: keyMetadata(keys.describeKey(scope, parseRequest(KeyRequest, request).KeyId)) }),
      Encrypt: (request, scope) => {
        const { KeyId, Plaintext, EncryptionContext, EncryptionAlgorithm } = parseRequest(EncryptRequest, request);
        requireSymmetricDefault(EncryptionAlgorithm);
        const sealed = keys.encrypt(scope, KeyId, Buffer.from(Plaintext, 'base64'), EncryptionContext);
        return { CiphertextBlob: sealed.ciphertextBlob.toString('base64'), KeyId: sealed.keyArn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      },
      Decrypt: (request, scope) => {
        const { CiphertextBlob, EncryptionContext, KeyId, EncryptionAlgorithm } = parseRequest(DecryptRequest, request);
        requireSymmetricDefault(EncryptionAlgorithm);
        const opened = keys.decrypt(scope, Buffer.from(CiphertextBlob, 'base64'), EncryptionContext, KeyId);
        return { KeyId: opened.keyArn, Plaintext: opened.plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      },
      GenerateDataKey: (request, scope) => {
        const parsed = parseRequest(GenerateDataKeyRequest, request);
        const dataKey = keys.generateDataKey(scope, parsed.KeyId, dataKeyBytes(parsed), parsed.EncryptionContext);
        return { CiphertextBlob: dataKey.ciphertextBlob.toString('base64'), Plaintext: dataKey.plaintext.toString('base64'), KeyId: dataKey.keyArn };
      },
      GenerateDataKeyWithoutPlaintext: (request, scope) => {
        const parsed = parseRequest(GenerateDataKeyRequest, request);
        const dataKey = keys.generateDataKey(scope, parsed.KeyId, dataKeyBytes(parsed), parsed.EncryptionContext);
        return { CiphertextBlob: dataKey.ciphertextBlob.toString('base64'), KeyId: dataKey.keyArn };
      },
  };
  const server = await serveAwsJson({
    ...(options.port === undefined ? {} : { port: options.port }),
    targetPrefix: 'TrentService',
    contentType: 'application/x-amz-json-1.1',
    operations: Object.fromEntries(
      Object.entries(operations).map(([name, operation]) => [
        name,
        (request: Record<string, unknown>, caller: AwsCaller) => {
          const scope = scopeOf(caller);
          const fault = faults.find((candidate) => candidate.operation === name && candidate.remaining > 0);
          if (fault !== undefined) {
            fault.remaining -= 1;
            throw fault.error;
          }
          return operation(request, scope);
        },
      ]),
    ),
  });
  return {
    endpoint: server.endpoint,
    keys,
    failNext: (operation, times, error = new AwsServiceError('KMSInternalException', 'Injected fault: KMS is having a bad day.', 500)) => {
      faults.push({ operation, remaining: times, error });
    },
    unusedFaults: () => faults.reduce((sum, fault) => sum + fault.remaining, 0),
    clearFaults: () => {
      faults.length = 0;
    },
    close: () => server.close(),
  };
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
  return {
    ...metadata,
    CreationDate: epochSeconds(metadata.CreationDate),
    ...(metadata.DeletionDate === undefined ? {} : { DeletionDate: epochSeconds(metadata.DeletionDate) }),
  };
}

