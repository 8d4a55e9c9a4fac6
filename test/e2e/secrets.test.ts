import { randomBytes } from 'node:crypto';
import { DynamoDBClient, ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_PKI_FILES, machineSecretPath } from '#bootstrap';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '#sandbox';
import { eventually } from '../support/api.ts';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

// Every line Kiln and the sandbox write while this file runs, at debug level, kept to be searched.
const written: string[] = [];
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  return (write as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean)(chunk, ...rest);
});
afterAll(() => {
  process.stdout.write = write;
});

const session = localSession({ port: 0, logLevel: 'debug', healthPollSeconds: 0 });

/** Every attribute of every item of Kiln's table, as DynamoDB returns them. */
async function everyItem(): Promise<string> {
  const client = new DynamoDBClient({ region: LOCAL_REGION, endpoint: process.env.KILN_DYNAMODB_ENDPOINT, credentials: LOCAL_CREDENTIALS });
  const pages: unknown[] = [];
  let start: ScanCommandOutput['LastEvaluatedKey'];
  do {
    const page = await client.send(new ScanCommand({ TableName: process.env.KILN_TABLE_NAME, ExclusiveStartKey: start }));
    pages.push(page.Items ?? []);
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  client.destroy();
  return JSON.stringify(pages);
}

describe('no secret in plaintext', () => {
  it('after a full walk-through, in no log line and no DynamoDB attribute', async () => {
    const { api, newTenant, waitForPhase, waitForDeletion } = session;
    const secrets: Record<string, string> = {};
    const key = await newTenant();
    secrets.apiKey = key;
    const another = await api<{ apiKey: string }>('POST', '/v1/api-keys', { token: key, body: { description: 'second' } });
    secrets.secondApiKey = another.body.apiKey;
    secrets.adminToken = session.stack.adminToken;

    const endpoint = await api<{ id: string; secret: string }>('POST', '/v1/webhook-endpoints', { token: key, body: { url: 'https://203.0.113.10/hooks' } });
    expect(endpoint.status).toBe(201);
    secrets.webhookSecret = endpoint.body.secret;
    const rotated = await api<{ secret: string }>('POST', `/v1/webhook-endpoints/${endpoint.body.id}/secret-rotations`, { token: key });
    secrets.rotatedWebhookSecret = rotated.body.secret;

    const atRestKey = randomBytes(32).toString('base64');
    secrets.atRestKey = atRestKey;
    const created = await api<ClusterBody>('POST', '/v1/clusters', {
      token: key,
      body: { ...order('secrets'), encryption: { atRest: { provider: 'secretbox', keySource: 'user', key: atRestKey } } },
    });
    expect(created.status).toBe(202);
    const id = created.body.id;
    await waitForPhase(key, id, 'Ready');

    const kubeconfig = await session.api<string>('GET', `/v1/clusters/${id}/kubeconfig`, { token: key });
    expect(kubeconfig.status).toBe(200);
    const clientKey = /client-key-data: (\S+)/.exec(kubeconfig.text)?.[1];
    expect(clientKey).toBeDefined();
    secrets.kubeconfigClientKey = clientKey ?? '';
    const sshKey = await session.api<string>('GET', `/v1/clusters/${id}/ssh-key`, { token: key });
    expect(sshKey.status).toBe(200);
    secrets.sshPrivateKey = sshKey.text.split('\n').find((line) => line.length > 40 && !line.startsWith('-----')) ?? '';
    expect(secrets.sshPrivateKey).not.toBe('');

    await session.stack.webhooks.run();
    expect((await api('DELETE', `/v1/clusters/${id}`, { token: key })).status).toBe(202);
    await waitForDeletion(key, id);

    const logs = written.join('');
    const items = await everyItem();
    // The run was logged (the scan reads something), at debug level.
    expect(logs).toContain('"message":"request"');
    expect(items).toContain(id);
    for (const [where, text] of [
      ['the logs', logs],
      ['DynamoDB', items],
    ] as const) {
      for (const [name, secret] of Object.entries(secrets)) expect(text.includes(secret), `${name} in ${where}`).toBe(false);
      expect(text, `a PEM block in ${where}`).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
      expect(text, `a Kiln API key in ${where}`).not.toMatch(/kiln_[A-Za-z0-9_-]{40,}/);
      expect(text, `a webhook secret in ${where}`).not.toMatch(/whsec_[A-Za-z0-9+/=]{20,}/);
      expect(text, `a kubeadm bootstrap token in ${where}`).not.toMatch(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/);
    }
  });
});

describe('nothing secret left behind', () => {
  /** Every version SSM still holds of a cluster's parameter, as the machines' instance roles could read them (`name:version`). */
  const versionsOf = (clusterId: string, role: 'control-plane' | 'worker', name: string): string[] => {
    const scope = { accountId: session.stack.accountId, region: order('any').region };
    const path = machineSecretPath(clusterId, role, name);
    const versions: string[] = [];
    for (let version = 1; version <= 100; version++) {
      const value = session.stack.ssm.read(scope, `${path}:${version}`);
      if (value !== undefined) versions.push(value);
    }
    return versions;
  };

  it('after provisioning, no join token and no CA key is left in SSM (no version), and no join token in the cluster', async () => {
    const key = await session.newTenant();
    const created = await session.api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('join-token-withdrawn') });
    const id = created.body.id;
    await session.waitForPhase(key, id, 'Ready');
    for (const role of ['control-plane', 'worker'] as const) expect(versionsOf(id, role, 'join-token'), `${role} join token`).toEqual([]);
    for (const file of CONTROL_PLANE_PKI_FILES) expect(versionsOf(id, 'control-plane', `pki/${file}`), file).toEqual([]);
    const { core } = session.sandboxOf(id);
    const tokens = (await core.listNamespacedSecret({ namespace: 'kube-system' })).items.filter((secret) => secret.type === 'bootstrap.kubernetes.io/token');
    expect(tokens.map((secret) => secret.metadata?.name)).toEqual([]);
  });

  it('after a key rotation, no version of the encryption configuration holds the retired key', async () => {
    const key = await session.newTenant();
    const retiredKey = randomBytes(32).toString('base64');
    const created = await session.api<ClusterBody>('POST', '/v1/clusters', {
      token: key,
      body: { ...order('retired-key'), encryption: { atRest: { provider: 'secretbox', keySource: 'user', key: retiredKey } } },
    });
    const id = created.body.id;
    await session.waitForPhase(key, id, 'Ready');
    expect(versionsOf(id, 'control-plane', 'encryption-config').some((config) => config.includes(retiredKey))).toBe(true);
    const started = await session.api<OperationBody>('POST', `/v1/clusters/${id}/encryption-key-rotations`, { token: key });
    expect(started.status).toBe(202);
    const rotation = await eventually('the rotation to finish', async () => {
      const operation = await session.api<OperationBody>('GET', `/v1/operations/${started.body.id}`, { token: key });
      return operation.body.state === 'succeeded' || operation.body.state === 'failed' ? operation.body : undefined;
    }, 120_000);
    expect(rotation.state, rotation.error?.detail).toBe('succeeded');
    const versions = versionsOf(id, 'control-plane', 'encryption-config');
    expect(versions.length).toBeGreaterThan(0);
    expect(versions.filter((config) => config.includes(retiredKey))).toEqual([]);
  });
});
