import { randomBytes } from 'node:crypto';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ClusterSpec, ConflictError, KilnError, QuotaExceededError, ValidationError, clusterEvent, newId, sha256 } from '#core';
import { type LocalDynamoDb, connectLocalDynamoDb, ensureTable } from '#sandbox';
import type { ClusterRecord, OperationRecord } from './records.ts';
import { KilnStore, VersionConflictError } from './store.ts';
import { keys } from './table.ts';

let dynamo: LocalDynamoDb;
let store: KilnStore;
let raw: DynamoDBDocumentClient;
let tableName: string;

beforeAll(async () => {
  dynamo = connectLocalDynamoDb(inject('dynamoDbEndpoint'));
  tableName = `kiln-store-${randomBytes(4).toString('hex')}`;
  await ensureTable(dynamo.client, tableName);
  store = new KilnStore(dynamo.client, tableName);
  raw = DynamoDBDocumentClient.from(dynamo.client);
});

afterAll(async () => {
  await dynamo.close();
});

/** A fresh tenant for each test, as a new customer. */
async function newTenant(): Promise<string> {
  const id = newId('tenant');
  const createdAt = new Date().toISOString();
  await store.createTenant({ id, name: `t-${id.slice(-6).toLowerCase()}`, createdAt }, { tenantId: id, id: newId('apiKey'), prefix: 'kiln_test', apiKeyHash: sha256(`key-${id}`), createdAt });
  return id;
}

function clusterOf(tenantId: string, name: string, overrides: Partial<ClusterRecord> = {}): ClusterRecord {
  const now = new Date().toISOString();
  const spec = ClusterSpec.parse({ name, region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
  return { tenantId, id: newId('cluster'), name, spec, status: { phase: 'Pending', conditions: [] }, createdAt: now, updatedAt: now, version: 1, ...overrides };
}

function operationOf(cluster: ClusterRecord): OperationRecord {
  const now = new Date().toISOString();
  return { tenantId: cluster.tenantId, id: newId('operation'), type: 'provision', clusterId: cluster.id, state: 'pending', steps: {}, createdAt: now, updatedAt: now, version: 1 };
}

async function item(key: { PK: string; SK: string }): Promise<Record<string, unknown> | undefined> {
  return (await raw.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true }))).Item;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('tenants', () => {
  it('never gives one API key hash to two tenants', async () => {
    const hash = sha256(`shared-${randomBytes(4).toString('hex')}`);
    const tenant = (name: string) => ({ id: newId('tenant'), name, createdAt: new Date().toISOString() });
    const key = (tenantId: string) => ({ tenantId, id: newId('apiKey'), prefix: 'kiln_test', apiKeyHash: hash, createdAt: new Date().toISOString() });
    const first = tenant('first');
    await store.createTenant(first, key(first.id));
    const second = tenant('second');
    await expect(store.createTenant(second, key(second.id))).rejects.toThrow();
    expect((await store.findTenantByApiKeyHash(hash))?.name).toBe('first');
  });

  it("keeps a key's scopes and expiry on its lookup and its listing, and a key stored before scopes holds every scope", async () => {
    const tenantId = await newTenant();
    const tenant = { id: tenantId, name: 't', createdAt: new Date().toISOString() };
    const hash = sha256(`scoped-${tenantId}`);
    const scoped = { tenantId, id: newId('apiKey'), prefix: 'kiln_scoped', apiKeyHash: hash, scopes: ['read-only' as const, 'webhooks' as const], validUntil: '2027-06-01T00:00:00.000Z', createdAt: new Date().toISOString() };
    await store.createApiKey(tenant, scoped);
    expect(await store.findTenantByApiKeyHash(hash)).toMatchObject({ id: tenantId, keyId: scoped.id, scopes: ['read-only', 'webhooks'], validUntil: '2027-06-01T00:00:00.000Z' });
    expect(await store.getApiKey(tenantId, scoped.id)).toMatchObject({ scopes: ['read-only', 'webhooks'], validUntil: '2027-06-01T00:00:00.000Z' });
    // The validity is not the table's TTL attribute: an expired key stays until revoked.
    expect((await item(keys.apiKey(hash)))?.expiresAt).toBeUndefined();
    // newTenant's first key is written without scopes, as keys were before they had any.
    const [first] = (await store.listApiKeys(tenantId)).filter((key) => key.id !== scoped.id);
    expect(first?.scopes).toBeUndefined();
    expect((await store.findTenantByApiKeyHash(sha256(`key-${tenantId}`)))?.scopes).toEqual(['read-only', 'clusters', 'webhooks', 'keys']);
  });

  it('suspends a tenant from the first suspension on, shows it on every key lookup, and resumes it; an unknown tenant is neither', async () => {
    const tenantId = await newTenant();
    const suspended = await store.suspendTenant(tenantId, '2026-12-08T01:00:00.000Z');
    expect(suspended).toMatchObject({ id: tenantId, suspendedAt: '2026-12-08T01:00:00.000Z' });
    expect((await store.suspendTenant(tenantId, '2026-12-08T02:00:00.000Z'))?.suspendedAt).toBe('2026-12-08T01:00:00.000Z');
    expect((await store.findTenantByApiKeyHash(sha256(`key-${tenantId}`)))?.suspendedAt).toBe('2026-12-08T01:00:00.000Z');
    expect(await store.resumeTenant(tenantId)).not.toHaveProperty('suspendedAt');
    expect(await store.findTenantByApiKeyHash(sha256(`key-${tenantId}`))).not.toHaveProperty('suspendedAt');
    expect(await store.resumeTenant(tenantId)).toMatchObject({ id: tenantId });
    const unknown = newId('tenant');
    expect(await store.suspendTenant(unknown, '2026-12-08T01:00:00.000Z')).toBeUndefined();
    expect(await store.resumeTenant(unknown)).toBeUndefined();
    // Nothing was written for the unknown tenant.
    expect(await item(keys.tenant(unknown))).toBeUndefined();
  });

  it('gives a tenant from before external IDs one on first use, and keeps the first one written', async () => {
    const tenantId = await newTenant();
    expect((await store.getTenant(tenantId))?.externalId).toBeUndefined();
    expect(await store.ensureTenantExternalId(tenantId, 'kiln-first')).toBe('kiln-first');
    expect(await store.ensureTenantExternalId(tenantId, 'kiln-second')).toBe('kiln-first');
    expect((await store.getTenant(tenantId))?.externalId).toBe('kiln-first');
    expect(await store.ensureTenantExternalId(newId('tenant'), 'kiln-none')).toBeUndefined();
  });

  it('still reads a cluster stored with the external ID its order chose, from before Kiln issued them', async () => {
    const tenantId = await newTenant();
    const cluster = clusterOf(tenantId, 'chosen-external-id');
    const stored = { ...cluster, spec: { ...cluster.spec, account: { roleArn: 'arn:aws:iam::333344445555:role/kiln-provisioner', externalId: 'chosen-by-the-tenant' } } };
    await store.createCluster(stored, operationOf(stored));
    expect((await store.getCluster(tenantId, cluster.id))?.spec.account).toEqual(stored.spec.account);
  });
});

describe('cluster names', () => {
  it('are unique per tenant: the second order of a name is a conflict and writes nothing', async () => {
    const tenantId = await newTenant();
    const first = clusterOf(tenantId, 'payments');
    await store.createCluster(first, operationOf(first));
    const second = clusterOf(tenantId, 'payments');
    await expect(store.createCluster(second, operationOf(second))).rejects.toThrow(ConflictError);
    expect(await store.getCluster(tenantId, second.id)).toBeUndefined();
  });

  it('are free in every other tenant', async () => {
    const [a, b] = [await newTenant(), await newTenant()];
    const mine = clusterOf(a, 'shared-name');
    const theirs = clusterOf(b, 'shared-name');
    await store.createCluster(mine, operationOf(mine));
    await expect(store.createCluster(theirs, operationOf(theirs))).resolves.toEqual({ kind: 'written' });
  });

  it('are released only by the cluster that holds them', async () => {
    const tenantId = await newTenant();
    const cluster = clusterOf(tenantId, 'short-lived');
    await store.createCluster(cluster, operationOf(cluster));
    await store.releaseClusterName(tenantId, 'short-lived', newId('cluster'));
    expect(await item(keys.clusterName(tenantId, 'short-lived'))).toMatchObject({ clusterId: cluster.id });
    await store.releaseClusterName(tenantId, 'short-lived', cluster.id);
    expect(await item(keys.clusterName(tenantId, 'short-lived'))).toBeUndefined();
  });
});

describe('versioned writes', () => {
  it('refuse a cluster written from a stale read, and keep the newer write', async () => {
    const tenantId = await newTenant();
    const cluster = clusterOf(tenantId, 'versioned');
    await store.createCluster(cluster, operationOf(cluster));
    const saved = await store.saveCluster({ ...cluster, status: { ...cluster.status, phase: 'Provisioning' } }, 1);
    expect(saved.version).toBe(2);
    await expect(store.saveCluster({ ...cluster, status: { ...cluster.status, phase: 'Failed' } }, 1)).rejects.toThrow(VersionConflictError);
    expect((await store.getCluster(tenantId, cluster.id))?.status.phase).toBe('Provisioning');
  });

  it('start no operation on a cluster that changed since it was read', async () => {
    const tenantId = await newTenant();
    const cluster = clusterOf(tenantId, 'busy', { status: { phase: 'Ready', conditions: [] } });
    await store.createCluster(cluster, operationOf(cluster));
    await store.saveCluster(cluster, 1);
    const update = operationOf(cluster);
    await expect(store.beginOperation({ ...cluster, status: { phase: 'Updating', conditions: [], activeOperationId: update.id } }, 1, update)).rejects.toThrow(VersionConflictError);
    expect(await store.getOperation(tenantId, update.id)).toBeUndefined();
  });

  it('write a state change and its events together, or neither', async () => {
    const tenantId = await newTenant();
    const cluster = clusterOf(tenantId, 'evented');
    const operation = operationOf(cluster);
    await store.createCluster(cluster, operation);
    // The operation's start is written with it.
    const started = (await store.listClusterEvents(tenantId, cluster.id, { limit: 10 })).items;
    expect(started.map((stored) => [stored.type, stored.data.operationId])).toEqual([['operation.started', operation.id]]);
    const event = clusterEvent('cluster.phase_changed', cluster.id, { from: 'Pending', to: 'Provisioning' });
    await expect(store.saveCluster(cluster, 7, new Date(), [event])).rejects.toThrow(VersionConflictError);
    expect((await store.listClusterEvents(tenantId, cluster.id, { limit: 10 })).items).toEqual(started);
    await store.saveCluster(cluster, 1, new Date(), [event]);
    expect((await store.listClusterEvents(tenantId, cluster.id, { limit: 10 })).items.map((stored) => stored.id)).toEqual([event.id, ...started.map((stored) => stored.id)]);
  });
});

describe('idempotency records', () => {
  it('are written with the order, and a second write under the same key replays the first response instead of ordering again', async () => {
    const tenantId = await newTenant();
    const claim = { keyHash: sha256('key-1'), requestHash: sha256('body-1'), response: { status: 202, headers: { location: '/v1/clusters/x' }, body: '{"first":true}' } };
    const first = clusterOf(tenantId, 'idempotent');
    expect(await store.createCluster(first, operationOf(first), claim)).toEqual({ kind: 'written' });

    const retry = clusterOf(tenantId, 'idempotent-retry');
    const outcome = await store.createCluster(retry, operationOf(retry), { ...claim, response: { ...claim.response, body: '{"second":true}' } });
    expect(outcome).toMatchObject({ kind: 'replay', record: { requestHash: claim.requestHash, response: claim.response } });
    expect(await store.getCluster(tenantId, retry.id)).toBeUndefined();
  });

  it('expire after a day', async () => {
    const tenantId = await newTenant();
    const claim = { keyHash: sha256('key-ttl'), requestHash: sha256('body'), response: { status: 202, headers: {}, body: '{}' } };
    const cluster = clusterOf(tenantId, 'ttl');
    await store.createCluster(cluster, operationOf(cluster), claim);
    const expiresAt = Number((await item(keys.idempotency(tenantId, claim.keyHash)))?.expiresAt);
    expect(expiresAt - nowSeconds()).toBeGreaterThan(24 * 3600 - 60);
    expect(expiresAt - nowSeconds()).toBeLessThanOrEqual(24 * 3600);
  });
});

describe('expiry of what is no longer needed', () => {
  it('keeps a Deleted cluster for a week and every event for 90 days', async () => {
    const tenantId = await newTenant();
    const cluster = clusterOf(tenantId, 'gone');
    const event = clusterEvent('cluster.created', cluster.id, {});
    await store.createCluster(cluster, operationOf(cluster), undefined, [event]);
    expect((await item(keys.cluster(tenantId, cluster.id)))?.expiresAt).toBeUndefined();
    await store.saveCluster({ ...cluster, status: { phase: 'Deleted', conditions: [] } }, 1);
    const clusterExpiry = Number((await item(keys.cluster(tenantId, cluster.id)))?.expiresAt) - nowSeconds();
    expect(clusterExpiry).toBeGreaterThan(7 * 86_400 - 60);
    expect(clusterExpiry).toBeLessThanOrEqual(7 * 86_400);
    const eventExpiry = Number((await item(keys.clusterEvent(tenantId, cluster.id, event.id)))?.expiresAt) - Math.floor(Date.parse(event.occurredAt) / 1000);
    expect(eventExpiry).toBe(90 * 86_400);
  });
});

describe('active operations', () => {
  it('come oldest first in pages that each say where the next begins, until the list ends', async () => {
    const tenantId = await newTenant();
    const created: string[] = [];
    for (const name of ['o1', 'o2', 'o3']) {
      const cluster = clusterOf(tenantId, name);
      const operation = operationOf(cluster);
      await store.createCluster(cluster, operation);
      created.push(operation.id);
    }
    // Other tests' operations share the index: the walk finds these three in order, each once.
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await store.listActiveOperations({ limit: 2, after });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((active) => active.operationId));
      after = page.next;
    } while (after !== undefined);
    expect(seen.filter((operationId) => created.includes(operationId))).toEqual(created);
    expect(new Set(seen).size).toBe(seen.length);
    expect(await store.listActiveOperations({ limit: 2, after: '9999' })).toEqual({ items: [] });

    await store.setRecoveryCursor('2026-01-01T00:00:00.000Z#t#o');
    expect(await store.recoveryCursor()).toBe('2026-01-01T00:00:00.000Z#t#o');
    await store.setRecoveryCursor(undefined);
    expect(await store.recoveryCursor()).toBeUndefined();
  });
});

describe('pages', () => {
  it("walk a tenant's clusters without gaps or repeats, and refuse a cursor handed to another tenant", async () => {
    const [owner, other] = [await newTenant(), await newTenant()];
    const names = ['a1', 'a2', 'a3', 'a4', 'a5'];
    for (const name of names) {
      const cluster = clusterOf(owner, name);
      await store.createCluster(cluster, operationOf(cluster));
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listClusters(owner, { limit: 2, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.items.map((cluster) => cluster.name));
      cursor = page.nextCursor;
      if (cursor !== undefined) await expect(store.listClusters(other, { limit: 2, cursor })).rejects.toThrow(ValidationError);
    } while (cursor !== undefined);
    expect(seen.sort()).toEqual(names);
  });

  it("refuse one cluster's event cursor for another cluster", async () => {
    const tenantId = await newTenant();
    const [one, two] = [clusterOf(tenantId, 'one'), clusterOf(tenantId, 'two')];
    const events = [clusterEvent('cluster.created', one.id, {}), clusterEvent('cluster.kubeconfig_issued', one.id, {})];
    await store.createCluster(one, operationOf(one), undefined, events);
    await store.createCluster(two, operationOf(two));
    const page = await store.listClusterEvents(tenantId, one.id, { limit: 1 });
    expect(page.nextCursor).toBeDefined();
    await expect(store.listClusterEvents(tenantId, two.id, { limit: 1, cursor: page.nextCursor ?? '' })).rejects.toThrow(ValidationError);
    await expect(store.listClusters(tenantId, { limit: 1, cursor: 'not-a-cursor' })).rejects.toThrow(ValidationError);
  });

  it('index live clusters by their Kubernetes minor, and drop them from it once deleted', async () => {
    const tenantId = await newTenant();
    const minor = '1.33';
    const live = clusterOf(tenantId, 'old-live', { spec: ClusterSpec.parse({ name: 'old-live', region: 'eu-central-1', kubernetesVersion: minor, nodePools: [{ name: 'p', size: 1 }] }) });
    const deleted = clusterOf(tenantId, 'old-gone', { spec: ClusterSpec.parse({ name: 'old-gone', region: 'eu-central-1', kubernetesVersion: minor, nodePools: [{ name: 'p', size: 1 }] }) });
    for (const cluster of [live, deleted]) await store.createCluster(cluster, operationOf(cluster));
    await store.saveCluster({ ...deleted, status: { phase: 'Deleted', conditions: [] } }, 1);
    const ids: string[] = [];
    let after: string | undefined;
    do {
      const page = await store.listClustersOnKubernetesMinor(minor, { limit: 1, ...(after === undefined ? {} : { after }) });
      ids.push(...page.items.map((cluster) => cluster.id));
      after = page.next;
    } while (after !== undefined);
    expect(ids).toContain(live.id);
    expect(ids).not.toContain(deleted.id);
  });
});

describe('quotas', () => {
  async function tenantWithQuotas(quotas: { clusters: number; nodes: number }): Promise<string> {
    const id = newId('tenant');
    const createdAt = new Date().toISOString();
    await store.createTenant({ id, name: `q-${id.slice(-6).toLowerCase()}`, createdAt }, { tenantId: id, id: newId('apiKey'), prefix: 'kiln_test', apiKeyHash: sha256(`key-${id}`), createdAt }, quotas);
    return id;
  }
  const sized = (tenantId: string, name: string, size: number) => {
    const cluster = clusterOf(tenantId, name);
    return { ...cluster, spec: { ...cluster.spec, nodePools: [{ ...cluster.spec.nodePools[0], name: 'default', size }] } } as ClusterRecord;
  };

  it('counts each cluster and its control plane and pools at their max, and refuses what would go past them, writing nothing', async () => {
    const tenantId = await tenantWithQuotas({ clusters: 2, nodes: 10 });
    expect(await store.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 2, used: 0 }, nodes: { limit: 10, used: 0 } });
    const first = sized(tenantId, 'first', 2); // 3 control-plane replicas + 2
    await store.createCluster(first, operationOf(first));
    expect(await store.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 2, used: 1 }, nodes: { limit: 10, used: 5 } });
    expect((await store.getCluster(tenantId, first.id))?.quotaNodes).toBe(5);

    const tooBig = sized(tenantId, 'too-big', 3); // 6 nodes, 5 left
    await expect(store.createCluster(tooBig, operationOf(tooBig))).rejects.toThrow(QuotaExceededError);
    expect(await store.getCluster(tenantId, tooBig.id)).toBeUndefined();
    expect(await store.findClusterIdByName(tenantId, 'too-big')).toBeUndefined();

    const second = sized(tenantId, 'second', 2);
    await store.createCluster(second, operationOf(second));
    const third = sized(tenantId, 'third', 0);
    await expect(store.createCluster(third, operationOf(third))).rejects.toThrow(QuotaExceededError);
    expect(await store.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 2, used: 2 }, nodes: { limit: 10, used: 10 } });
  });

  it('follows a change of the spec and frees everything when the cluster is Deleted', async () => {
    const tenantId = await tenantWithQuotas({ clusters: 5, nodes: 12 });
    const cluster = sized(tenantId, 'grows', 2);
    await store.createCluster(cluster, operationOf(cluster));
    const stored = (await store.getCluster(tenantId, cluster.id)) as ClusterRecord;
    const grow = (size: number, from: ClusterRecord) => ({ ...from, spec: { ...from.spec, nodePools: [{ ...from.spec.nodePools[0], name: 'default', size, max: size }] } }) as ClusterRecord;

    const grown = await store.saveCluster(grow(9, stored), stored.version);
    expect(grown.quotaNodes).toBe(12);
    await expect(store.saveCluster(grow(10, grown), grown.version)).rejects.toThrow(QuotaExceededError);
    expect((await store.getCluster(tenantId, cluster.id))?.version).toBe(grown.version);
    const operation = operationOf(cluster);
    await expect(store.beginOperation(grow(10, grown), grown.version, { ...operation, type: 'update' })).rejects.toThrow(QuotaExceededError);
    expect(await store.getOperation(tenantId, operation.id)).toBeUndefined();

    const shrunk = await store.saveCluster(grow(1, grown), grown.version);
    expect(await store.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 5, used: 1 }, nodes: { limit: 12, used: 4 } });
    await store.saveCluster({ ...shrunk, status: { ...shrunk.status, phase: 'Deleted' } }, shrunk.version);
    expect(await store.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 5, used: 0 }, nodes: { limit: 12, used: 0 } });
  });

  it('holds under concurrent orders: exactly as many as fit are written', async () => {
    const tenantId = await tenantWithQuotas({ clusters: 3, nodes: 100 });
    const orders = Array.from({ length: 8 }, (_, index) => sized(tenantId, `c${String(index)}`, 1));
    const results = await Promise.allSettled(orders.map((order) => store.createCluster(order, operationOf(order))));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(3);
    for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(KilnError);
    expect(await store.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 3, used: 3 }, nodes: { limit: 100, used: 12 } });
  });

  it("starts a tenant stored before quotas were kept from the store's defaults", async () => {
    const small = new KilnStore(dynamo.client, tableName, { clusters: 1, nodes: 4 });
    const tenantId = newId('tenant'); // no quota item, as a tenant created before quotas existed
    expect(await small.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 1, used: 0 }, nodes: { limit: 4, used: 0 } });
    const tooBig = sized(tenantId, 'too-big', 2);
    await expect(small.createCluster(tooBig, operationOf(tooBig))).rejects.toThrow(QuotaExceededError);
    const fits = sized(tenantId, 'fits', 1);
    await small.createCluster(fits, operationOf(fits));
    expect(await small.getQuotaUsage(tenantId)).toEqual({ clusters: { limit: 1, used: 1 }, nodes: { limit: 4, used: 4 } });
  });
});

describe('request rate', () => {
  const policy = { perSecond: 2, burst: 3 };

  // Whichever write the caller guesses first (bucket in use, or full), the answers are the same.
  it.each([false, true])('grants a burst, refuses the next with when to retry, and refills at the rate (expecting a full bucket: %s)', async (expectFull) => {
    const tenantId = newId('tenant');
    const start = Date.now();
    const decisions = [];
    for (let index = 0; index < 4; index++) decisions.push(await store.takeRequestToken(tenantId, start, policy, 1, expectFull));
    expect(decisions.map((decision) => [decision.granted, decision.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(decisions[3]?.retryAfterSeconds).toBe(1);
    // Half a second later one token is back (2 a second), and only one.
    expect((await store.takeRequestToken(tenantId, start + 500, policy, 1, expectFull)).granted).toBe(true);
    expect((await store.takeRequestToken(tenantId, start + 500, policy, 1, expectFull)).granted).toBe(false);
    // After a quiet spell the bucket is full again; it says when it will be full after this take.
    expect(await store.takeRequestToken(tenantId, start + 60_000, policy, 1, !expectFull)).toMatchObject({ granted: true, remaining: 2, fullAt: start + 60_500 });
    // Taking more than it holds takes what it holds.
    expect(await store.takeRequestToken(tenantId, start + 60_000, policy, 5, expectFull)).toMatchObject({ granted: true, taken: 2, remaining: 0 });
    // Another tenant has a bucket of its own.
    expect((await store.takeRequestToken(newId('tenant'), start, policy)).granted).toBe(true);
  });

  it('holds across instances: of 12 requests at once through three clients, exactly the burst is granted', async () => {
    const tenantId = newId('tenant');
    const instances = [store, new KilnStore(dynamo.client, tableName), new KilnStore(dynamo.client, tableName)];
    const now = Date.now();
    const decisions = await Promise.all(Array.from({ length: 12 }, (_, index) => (instances[index % 3] as KilnStore).takeRequestToken(tenantId, now, { perSecond: 1, burst: 5 })));
    expect(decisions.filter((decision) => decision.granted)).toHaveLength(5);
  });
});

describe("the tenant's event feed", () => {
  it('reads nothing, and does not fail, after a cursor at or past the bound (a reader within the settle time)', async () => {
    const tenantId = await newTenant();
    const earlier = clusterEvent('cluster.created', newId('cluster'), {}, new Date(Date.now() - 60_000));
    const later = clusterEvent('cluster.created', newId('cluster'), {});
    await store.appendEvents(tenantId, [earlier, later]);
    expect((await store.listTenantEvents(tenantId, { before: later.id, types: [], limit: 10 })).items.map((event) => event.id)).toEqual([earlier.id]);
    expect(await store.listTenantEvents(tenantId, { after: later.id, before: earlier.id, types: [], limit: 10 })).toEqual({ items: [], more: false });
    expect(await store.listTenantEvents(tenantId, { after: earlier.id, before: earlier.id, types: [], limit: 10 })).toEqual({ items: [], more: false });
  });
});
