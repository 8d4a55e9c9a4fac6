import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SsmService, startSsmService } from '#sandbox';
import { SsmMachineSecretStore, machineSecretPath } from './machine-secrets.ts';

const scope = { accountId: '210987654321', region: 'eu-central-1' };
let ssm: SsmService;
let client: SSMClient;
let store: SsmMachineSecretStore;

beforeAll(async () => {
  // SSM's 30 s before a deleted name is taken again, at a hundredth of it.
  ssm = await startSsmService({ accountId: scope.accountId, recreateAfterMs: 300 });
  client = new SSMClient({ endpoint: ssm.endpoint, region: scope.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
  store = new SsmMachineSecretStore(client);
});

afterAll(async () => {
  client.destroy();
  await ssm.close();
});

const versionsOf = (clusterId: string, name: string) =>
  [1, 2, 3, 4].map((version) => ssm.read(scope, `${machineSecretPath(clusterId, 'control-plane', name)}:${String(version)}`)).filter((value) => value !== undefined);

describe('the SSM machine secret store', () => {
  it('publishes a value with no earlier version left to read', async () => {
    await store.publish('cls_history', 'control-plane', 'encryption-config', 'old key and new key');
    await store.publish('cls_history', 'control-plane', 'encryption-config', 'new key and old key');
    await store.publishWithoutHistory('cls_history', 'control-plane', 'encryption-config', 'new key');
    expect(versionsOf('cls_history', 'encryption-config')).toEqual(['new key']);
  });

  it('withdraws every version, and publishes the name again once SSM has finished deleting it', async () => {
    await store.publish('cls_withdrawn', 'control-plane', 'join-token', 'first');
    await store.publish('cls_withdrawn', 'control-plane', 'join-token', 'second');
    await store.withdraw('cls_withdrawn', [{ role: 'control-plane', name: 'join-token' }, { role: 'worker', name: 'join-token' }]);
    expect(versionsOf('cls_withdrawn', 'join-token')).toEqual([]);
    await store.publish('cls_withdrawn', 'control-plane', 'join-token', 'third');
    expect(versionsOf('cls_withdrawn', 'join-token')).toEqual(['third']);
  });
});
