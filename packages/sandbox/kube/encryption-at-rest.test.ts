import { randomBytes } from 'node:crypto';
import { V1Secret } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SandboxCluster, startSandboxCluster } from './cluster.ts';
import { SecretEncryptionAtRest } from './encryption-at-rest.ts';
import type { JsonObject } from './json.ts';
import { clientsFor, failureOf, manifest, statusOf } from './testing.ts';

function configWith(provider: string, keys: { name: string; secret: string }[], identityLast = true): JsonObject {
  const providers: JsonObject[] = [{ [provider]: { keys } }];
  if (identityLast) providers.push({ identity: {} });
  return { apiVersion: 'apiserver.config.k8s.io/v1', kind: 'EncryptionConfiguration', resources: [{ resources: ['secrets'], providers }] };
}

const key = (name: string, bytes = 32): { name: string; secret: string } => ({ name, secret: randomBytes(bytes).toString('base64') });

function secret(name: string, token: string): V1Secret {
  return manifest(V1Secret, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, stringData: { token } });
}

let cluster: SandboxCluster;

beforeEach(async () => {
  cluster = await startSandboxCluster({ name: 'at-rest' });
});

afterEach(async () => {
  await cluster.close();
});

describe('Secrets encrypted at rest in the sandbox API server', () => {
  it('stores Secrets in plain text while no EncryptionConfiguration is set, as before', async () => {
    const { core } = clientsFor(cluster);
    await core.createNamespacedSecret({ namespace: 'default', body: secret('plain', 'p1') });
    expect(cluster.storedSecretKeys()).toEqual([{ namespace: 'default', name: 'plain', provider: 'identity', key: 'identity' }]);
    expect(cluster.objects({ kind: 'Secret', name: 'plain' })[0]?.data).toEqual({ token: Buffer.from('p1').toString('base64') });
  });

  it.each([
    ['aescbc', 32],
    ['aescbc', 16],
    ['aesgcm', 32],
    ['secretbox', 32],
  ])('writes with the first %s key (%i bytes) and reads the Secret back', async (provider, bytes) => {
    const { core } = clientsFor(cluster);
    cluster.setEncryptionConfiguration(configWith(provider, [key('key-1', bytes)]));
    await core.createNamespacedSecret({ namespace: 'default', body: secret('db', 'hunter2') });
    expect(cluster.storedSecretKeys()).toEqual([{ namespace: 'default', name: 'db', provider, key: 'key-1' }]);
    const read = await core.readNamespacedSecret({ namespace: 'default', name: 'db' });
    expect(Buffer.from(read.data?.token ?? '', 'base64').toString()).toBe('hunter2');
  });

  it('keeps neither the value nor the name of the data in what it stores', () => {
    const atRest = new SecretEncryptionAtRest();
    atRest.configure(configWith('aesgcm', [key('key-1')]));
    const object = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, data: { password: 'aHVudGVyMg==' } };
    const stored = atRest.seal('default', 'db', object);
    expect(JSON.stringify(stored)).not.toMatch(/password|aHVudGVyMg/);
    expect(atRest.open('default', 'db', stored)).toEqual(object);
    // The storage path is authenticated, so a value moved to another Secret's place does not open.
    expect(() => atRest.open('default', 'other', stored)).toThrow(/unable to transform/);
  });

  it('reads with any configured key, and answers 500 for a Secret whose key is no longer configured', async () => {
    const { core } = clientsFor(cluster);
    const first = key('key-1');
    const second = key('key-2');
    cluster.setEncryptionConfiguration(configWith('aescbc', [first]));
    await core.createNamespacedSecret({ namespace: 'default', body: secret('old', 'o1') });
    cluster.setEncryptionConfiguration(configWith('aescbc', [second, first]));
    await core.createNamespacedSecret({ namespace: 'default', body: secret('new', 'n1') });
    expect(cluster.storedSecretKeys().map(({ name, key: under }) => [name, under])).toEqual([
      ['old', 'key-1'],
      ['new', 'key-2'],
    ]);
    expect((await core.readNamespacedSecret({ namespace: 'default', name: 'old' })).data?.token).toBe(Buffer.from('o1').toString('base64'));

    cluster.setEncryptionConfiguration(configWith('aescbc', [second]));
    expect((await core.readNamespacedSecret({ namespace: 'default', name: 'new' })).data?.token).toBe(Buffer.from('n1').toString('base64'));
    const status = statusOf(await failureOf(core.readNamespacedSecret({ namespace: 'default', name: 'old' })));
    expect(status).toMatchObject({ code: 500, reason: 'InternalError' });
    expect(status.message).toEqual(expect.stringContaining('/registry/secrets/default/old'));
    expect(statusOf(await failureOf(core.listSecretForAllNamespaces()))).toMatchObject({ code: 500 });
  });

  it('reads Secrets written before encryption through identity, and refuses them once identity is gone', async () => {
    const { core } = clientsFor(cluster);
    await core.createNamespacedSecret({ namespace: 'default', body: secret('before', 'b1') });
    cluster.setEncryptionConfiguration(configWith('secretbox', [key('key-1')]));
    expect((await core.readNamespacedSecret({ namespace: 'default', name: 'before' })).data?.token).toBe(Buffer.from('b1').toString('base64'));
    cluster.setEncryptionConfiguration(configWith('secretbox', [key('key-1')], false));
    expect(statusOf(await failureOf(core.readNamespacedSecret({ namespace: 'default', name: 'before' })))).toMatchObject({ code: 500 });
  });

  it('writes an unchanged replace only when the Secret was read with a key other than the write key', async () => {
    const { core } = clientsFor(cluster);
    const first = key('key-1');
    cluster.setEncryptionConfiguration(configWith('aesgcm', [first]));
    await core.createNamespacedSecret({ namespace: 'default', body: secret('db', 'd1') });
    const current = await core.readNamespacedSecret({ namespace: 'default', name: 'db' });
    cluster.clearRequestLog();
    await core.replaceNamespacedSecret({ namespace: 'default', name: 'db', body: current });
    expect(cluster.mutatingRequests()).toHaveLength(0);

    cluster.setEncryptionConfiguration(configWith('aesgcm', [key('key-2'), first]));
    const stale = await core.readNamespacedSecret({ namespace: 'default', name: 'db' });
    const replaced = await core.replaceNamespacedSecret({ namespace: 'default', name: 'db', body: stale });
    expect(cluster.mutatingRequests()).toHaveLength(1);
    expect(replaced.metadata?.resourceVersion).not.toBe(stale.metadata?.resourceVersion);
    expect(replaced.data).toEqual(stale.data);
    expect(cluster.storedSecretKeys()).toEqual([{ namespace: 'default', name: 'db', provider: 'aesgcm', key: 'key-2' }]);
  });

  it('refuses a KMS provider without a plugin on its endpoint, KMS v1, and keys of the wrong size', () => {
    const kms = (apiVersion: string): JsonObject => ({
      resources: [{ resources: ['secrets'], providers: [{ kms: { apiVersion, name: 'aws', endpoint: 'unix:///var/run/kmsplugin/socket.sock' } }] }],
    });
    expect(() => {
      cluster.setEncryptionConfiguration(kms('v2'));
    }).toThrow(/no KMS plugin answers/);
    expect(() => {
      cluster.setEncryptionConfiguration(kms('v1'), new Map([['unix:///var/run/kmsplugin/socket.sock', xorPlugin(1)]]));
    }).toThrow(/v2/);
    expect(() => {
      cluster.setEncryptionConfiguration(configWith('secretbox', [key('key-1', 16)]));
    }).toThrow(/32 bytes/);
  });

  it('encrypts through the KMS v2 plugin on the configured endpoint, and answers 500 when the plugin cannot open a Secret', async () => {
    const endpoint = 'unix:///var/run/kmsplugin/socket.sock';
    const config: JsonObject = {
      resources: [{ resources: ['secrets'], providers: [{ kms: { apiVersion: 'v2', name: 'aws-encryption-provider', endpoint } }, { identity: {} }] }],
    };
    const plugin = xorPlugin(7);
    cluster.setEncryptionConfiguration(config, new Map([[endpoint, plugin]]));
    const { core } = clientsFor(cluster);
    await core.createNamespacedSecret({ namespace: 'default', body: secret('db', 'kms-protected') });

    expect(cluster.storedSecretKeys()).toEqual([{ namespace: 'default', name: 'db', provider: 'kms', key: 'aws-encryption-provider' }]);
    expect(plugin.calls).toEqual({ encrypt: 1, decrypt: 0 });
    const read = await core.readNamespacedSecret({ namespace: 'default', name: 'db' });
    expect(Buffer.from(read.data?.token ?? '', 'base64').toString()).toBe('kms-protected');
    expect(plugin.calls.decrypt).toBeGreaterThanOrEqual(1);

    // The plugin's key is gone (say, pending deletion): the API server cannot open what it sealed.
    cluster.setEncryptionConfiguration(config, new Map([[endpoint, { ...xorPlugin(7), decrypt: () => { throw new Error('KMSInvalidStateException'); } }]]));
    expect(statusOf(await failureOf(core.readNamespacedSecret({ namespace: 'default', name: 'db' })))).toMatchObject({ code: 500, message: expect.stringContaining('KMSInvalidStateException') as unknown });
  });
});

/** A stand-in plugin that only scrambles bytes and counts its calls: what matters here is that the API server goes through it. */
function xorPlugin(mask: number) {
  const calls = { encrypt: 0, decrypt: 0 };
  const xor = (bytes: Buffer) => Buffer.from(bytes.map((byte) => byte ^ mask));
  return {
    calls,
    encrypt: (plaintext: Buffer) => {
      calls.encrypt++;
      return xor(plaintext);
    },
    decrypt: (sealed: Buffer) => {
      calls.decrypt++;
      return xor(sealed);
    },
  };
}
