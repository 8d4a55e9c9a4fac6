import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KmsKeyStore } from './keys.ts';

const scope = { accountId: '000000000000', region: 'eu-central-1' };

describe('the KMS stand-in with a key file', () => {
  it('keeps its keys, aliases and deletions across a restart, so what they sealed still opens', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kiln-kms-')), 'kms-keys.json');
    const before = new KmsKeyStore(file);
    const key = before.createKey(scope, 'sealing');
    before.createAlias(scope, 'alias/kiln-local-sealing', key.KeyId);
    const gone = before.createKey(scope, 'a deleted cluster');
    before.scheduleKeyDeletion(gone.Arn);
    const sealed = before.encrypt(scope, key.KeyId, Buffer.from('kubeconfig material'), { purpose: 'test' });
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const after = new KmsKeyStore(file);
    expect(after.describeKey(scope, 'alias/kiln-local-sealing').KeyId).toBe(key.KeyId);
    expect(after.decrypt(scope, sealed.ciphertextBlob, { purpose: 'test' }).plaintext.toString()).toBe('kubeconfig material');
    expect(after.describeKey(scope, gone.KeyId).KeyState).toBe('PendingDeletion');
    // Without a file nothing is kept.
    expect(() => new KmsKeyStore().describeKey(scope, key.KeyId)).toThrow();
  });
});
