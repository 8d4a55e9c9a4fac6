import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ClusterSpec, DEFAULT_KUBERNETES_VERSION, kubernetesReleaseOf, offeredKubernetesReleases, offeredKubernetesSentence, versionSupportConditions } from '#core';
import { DEFAULT_REWRITE_PAGE_SIZE } from '#encryption';
import { authenticate, orderCluster, recoverOperations, startDueRotations } from '#services';
import { MAX_UNHEALTHY_RESTARTS } from '#steps';
import type { LocalStack } from '#sandbox';
import { type ApiCall, eventually, expectProblem } from '../support/api.ts';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0 });
const { newTenant, waitForPhase, waitForDeletion, sandboxOf } = session;
let stack: LocalStack;
let api: ApiCall;

beforeAll(() => {
  ({ stack, api } = session);
});

describe('the README walk-through', () => {
  // One cluster followed through its life; each test is one step of the walk-through, in order.
  let key: string;
  let clusterId: string;
  let provisionId: string | undefined;
  let ready: ClusterBody;

  it('accepts an order with 202, its Location and the provision operation', async () => {
    key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('demo') });
    expect(created.status).toBe(202);
    expect(created.headers.get('location')).toBe(`/v1/clusters/${created.body.id}`);
    expect(created.body.status.phase).toBe('Pending');
    clusterId = created.body.id;
    provisionId = created.body.status.activeOperationId;
    expect(provisionId).toMatch(/^op_/);
  });

  it('provisions the cluster to Ready, with its endpoint', async () => {
    ready = await waitForPhase(key, clusterId, 'Ready');
    expect(ready.status.endpoint).toMatch(/^https:\/\/127\.0\.0\.2:\d+$/);
    expect(ready.status.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
    expect(ready.status.activeOperationId).toBeUndefined();
    // When its certificates expire, as the verify step read them: the CA in ten years, the API server's in one.
    const certificates = (ready.status as { certificates?: Record<string, string> }).certificates ?? {};
    const years = (field: string) => (Date.parse(certificates[field] ?? '') - Date.now()) / (365 * 24 * 60 * 60_000);
    expect(years('authorityExpiresAt')).toBeGreaterThan(9.9);
    expect(years('apiServerExpiresAt')).toBeGreaterThan(0.99);
    expect(years('apiServerExpiresAt')).toBeLessThan(1.01);
    expect(certificates.earliestExpiresAt).toBe(certificates.apiServerExpiresAt);
    // The sandbox cluster really has the nodes and the hardening the steps applied.
    expect(stack.clusters.get(clusterId)).toBeDefined();
  });

  it('records every provision step in order, with times and outputs', async () => {
    const operation = await api<OperationBody>('GET', `/v1/operations/${provisionId ?? ''}`, { token: key });
    expect(operation.body).toMatchObject({ type: 'provision', state: 'succeeded' });
    expect(operation.body.steps.map((step) => step.name)).toEqual(['plan', 'infrastructure', 'bootstrap', 'network', 'control-plane', 'workers', 'addons', 'verify']);
    for (const step of operation.body.steps) {
      expect(step.state).toBe('succeeded');
      expect(Date.parse(step.finishedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(step.startedAt ?? ''));
    }
    const infrastructure = operation.body.steps.find((step) => step.name === 'infrastructure');
    expect(infrastructure?.outputs).toMatchObject({ vpcId: expect.any(String), kmsKeyArn: expect.stringMatching(/^arn:aws:kms:/) });
  });

  it('issues a short-lived admin kubeconfig signed by the cluster CA', async () => {
    const kubeconfig = await api<{ kubeconfig: string; expiresAt: string }>('GET', `/v1/clusters/${clusterId}/kubeconfig?validityMinutes=15`, { token: key });
    expect(kubeconfig.status).toBe(200);
    expect(kubeconfig.body.kubeconfig).toContain(`server: ${ready.status.endpoint ?? ''}`);
    expect(kubeconfig.body.kubeconfig).toContain('client-certificate-data');
    expect(Date.parse(kubeconfig.body.expiresAt) - Date.now()).toBeLessThanOrEqual(15 * 60_000);
    // It works: the cluster's API server (TLS, anonymous access off) verifies the certificate, and the client the server.
    const customer = new KubeConfig();
    customer.loadFromString(kubeconfig.body.kubeconfig);
    expect((await customer.makeApiClient(CoreV1Api).listNode()).items).toHaveLength(5);
    expectProblem(await api('GET', `/v1/clusters/${clusterId}/kubeconfig?validityMinutes=100000`, { token: key }), 400, 'validation_failed');
  });

  it('issues a read-only kubeconfig that reads workloads and Nodes but not Secrets, and changes nothing', async () => {
    const issued = await api<{ kubeconfig: string }>('GET', `/v1/clusters/${clusterId}/kubeconfig?access=read-only&validityMinutes=720`, { token: key });
    expect(issued.status).toBe(200);
    const viewer = new KubeConfig();
    viewer.loadFromString(issued.body.kubeconfig);
    const core = viewer.makeApiClient(CoreV1Api);
    expect((await core.listNode()).items).toHaveLength(5);
    expect((await core.listPodForAllNamespaces()).items).toBeDefined();
    await expect(core.listSecretForAllNamespaces()).rejects.toMatchObject({ code: 403 });
    await expect(core.deleteNamespace({ name: 'default' })).rejects.toMatchObject({ code: 403 });
    expectProblem(await api('GET', `/v1/clusters/${clusterId}/kubeconfig?validityMinutes=61`, { token: key }), 400, 'validation_failed');
  });

  it('hands the managed SSH private key out once, then answers 410', async () => {
    const sshKey = await api<{ privateKey: string; publicKey: string; fingerprint: string }>('GET', `/v1/clusters/${clusterId}/ssh-key`, { token: key });
    expect(sshKey.status).toBe(200);
    expect(sshKey.headers.get('cache-control')).toBe('no-store');
    expect(sshKey.body.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(sshKey.body.publicKey).toMatch(/^ssh-ed25519 /);
    expectProblem(await api('GET', `/v1/clusters/${clusterId}/ssh-key`, { token: key }), 410, 'gone');
    const afterDownload = await api<ClusterBody & { status: { ssh?: { fingerprint: string; privateKeyDownloadable: boolean } } }>('GET', `/v1/clusters/${clusterId}`, { token: key });
    expect(afterDownload.body.status.ssh).toMatchObject({ fingerprint: sshKey.body.fingerprint, privateKeyDownloadable: false });
  });

  it('deletes the cluster: 202, Deleting, then Deleted and gone from the cloud', async () => {
    const etag = (await api('GET', `/v1/clusters/${clusterId}`, { token: key })).headers.get('etag');
    expect(etag).toMatch(/^"v\d+"$/);
    const deleted = await api<ClusterBody>('DELETE', `/v1/clusters/${clusterId}`, { token: key });
    expect(deleted.status).toBe(202);
    expect(deleted.body.status.phase).toBe('Deleting');
    expect(deleted.headers.get('location')).toMatch(/^\/v1\/operations\/op_/);
    await waitForDeletion(key, clusterId);
    expect(stack.clusters.has(clusterId)).toBe(false);
    // Gone from the API as from the cloud: 404 to read or delete again, not listed; its operations and events stay.
    expectProblem(await api('GET', `/v1/clusters/${clusterId}`, { token: key }), 404, 'not_found');
    expectProblem(await api('DELETE', `/v1/clusters/${clusterId}`, { token: key }), 404, 'not_found');
    expect((await api<{ items: ClusterBody[] }>('GET', '/v1/clusters', { token: key })).body.items.map((cluster) => cluster.id)).not.toContain(clusterId);
    const operations = await api<{ items: OperationBody[] }>('GET', `/v1/clusters/${clusterId}/operations`, { token: key });
    expect(operations.body.items.map((item) => [item.type, item.state])).toEqual([
      ['deprovision', 'succeeded'],
      ['provision', 'succeeded'],
    ]);
  });

  it('kept an event for every change and every secret handed out, and no secret in them', async () => {
    const events = await api<{ items: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/clusters/${clusterId}/events?limit=100`, { token: key });
    // Whether the default minor is already near its end of life depends on the day; its events are checked apart.
    const versionEvents = events.body.items.filter((event) => event.type.startsWith('cluster.kubernetes_version_')).map((event) => event.type);
    const dueVersionEvents = versionSupportConditions(DEFAULT_KUBERNETES_VERSION, new Date())
      .filter((condition) => condition.status === 'True')
      .map((condition) => (condition.type === 'KubernetesVersionUnsupported' ? 'cluster.kubernetes_version_unsupported' : 'cluster.kubernetes_version_end_of_life_soon'));
    expect(versionEvents.sort()).toEqual(dueVersionEvents.sort());
    const lifecycleEvents = events.body.items.filter((event) => !event.type.startsWith('cluster.kubernetes_version_'));
    expect(lifecycleEvents.map((event) => (event.type === 'cluster.phase_changed' ? `${String(event.data.from)}->${String(event.data.to)}` : event.type)).reverse()).toEqual([
      'cluster.created',
      'operation.started',
      'Pending->Provisioning',
      'operation.succeeded',
      'Provisioning->Ready',
      'cluster.ready',
      'cluster.kubeconfig_issued',
      'cluster.kubeconfig_issued',
      'cluster.ssh_key_downloaded',
      'Ready->Deleting',
      'operation.started',
      'operation.succeeded',
      'Deleting->Deleted',
      'cluster.deleted',
    ]);
    expect(JSON.stringify(events.body)).not.toContain('PRIVATE KEY');
  });

  it('frees the name once the cluster is Deleted', async () => {
    const again = await api('POST', '/v1/clusters', { token: key, body: { ...order('demo'), nodePools: [{ name: 'default', size: 0 }, { name: 'one', size: 1 }] } });
    expect(again.status).toBe(202);
  });
});

describe('Kubernetes versions', () => {
  const offered = offeredKubernetesReleases(new Date()).map((release) => release.minor);
  // The default (ordered by naming no version), then the oldest and newest offered minors, named, where they differ
  // from it (a build of the default again would differ only in the order's text).
  const cases = [
    { label: `the default (${DEFAULT_KUBERNETES_VERSION}) when the order names none`, minor: DEFAULT_KUBERNETES_VERSION, named: false },
    ...[...new Set([offered[0], offered.at(-1)])].flatMap((minor) =>
      minor === undefined || minor === DEFAULT_KUBERNETES_VERSION ? [] : [{ label: `${minor}, the ${minor === offered[0] ? 'oldest' : 'newest'} offered`, minor, named: true }],
    ),
  ];

  it.each(cases)('builds $label: every node runs its pinned release, and the cluster says how long it is maintained', async ({ minor, named }) => {
    const key = await newTenant();
    const body = { ...order(`k8s-${minor.replace('.', '-')}`), ...(named ? { kubernetesVersion: minor } : {}) };
    const created = await api<ClusterBody & { spec: { kubernetesVersion: string } }>('POST', '/v1/clusters', { token: key, body });
    expect(created.status).toBe(202);
    expect(created.body.kubernetesVersion).toBe(minor);
    const ready = await waitForPhase(key, created.body.id, 'Ready');

    const patch = kubernetesReleaseOf(minor)?.patch;
    const nodes = await sandboxOf(created.body.id).core.listNode();
    expect(nodes.items.map((node) => node.status?.nodeInfo?.kubeletVersion)).toEqual(nodes.items.map(() => patch));
    expect(nodes.items).toHaveLength(5);
    const expected = versionSupportConditions(minor, new Date()).map(({ type, status, reason }) => ({ type, status, reason }));
    expect(expected).toHaveLength(2);
    const actual = ready.status.conditions.filter((condition) => condition.type.startsWith('KubernetesVersion'));
    expect(actual.map(({ type, status, reason }) => ({ type, status, reason }))).toEqual(expected);
  });

  it('lists what it offers, and refuses a minor past its end of life with the offered set, creating nothing', async () => {
    const key = await newTenant();
    const versions = await api<{ items: { version: string; default: boolean }[] }>('GET', '/v1/kubernetes-versions', { token: key });
    expect(versions.body.items.map((item) => item.version)).toEqual(offered);
    expect(versions.body.items.find((item) => item.default)?.version).toBe(DEFAULT_KUBERNETES_VERSION);

    const refused = await api<{ detail: string }>('POST', '/v1/clusters', { token: key, body: { ...order('old'), kubernetesVersion: '1.33' } });
    expectProblem(refused, 422, 'unprocessable');
    expect(refused.body.detail).toContain(offeredKubernetesSentence(new Date()));
    expect((await api<{ items: unknown[] }>('GET', '/v1/clusters', { token: key })).body.items).toEqual([]);
  });
});

describe('the service documents', () => {
  it('serves health, the OpenAPI 3.1 document and an interactive reference', async () => {
    expect((await api('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const document = await api<{ openapi: string; paths: Record<string, unknown> }>('GET', '/openapi.json');
    expect(document.body.openapi).toBe('3.1.0');
    expect(Object.keys(document.body.paths)).toEqual(expect.arrayContaining(['/v1/clusters', '/v1/clusters/{id}', '/v1/operations/{id}']));
    const docs = await api('GET', '/docs');
    expect(docs.headers.get('content-type')).toMatch(/text\/html/);
    expect(docs.text).toContain('/openapi.json');
    expectProblem(await api('GET', '/no/such/route'), 404, 'not_found');
  });
});

describe('idempotency', () => {
  it('replays the first response for the same key and body', async () => {
    const key = await newTenant();
    const headers = { 'idempotency-key': 'order-1' };
    const first = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('replayed'), headers });
    const second = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('replayed'), headers });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const list = await api<{ items: unknown[] }>('GET', '/v1/clusters', { token: key });
    expect(list.body.items).toHaveLength(1);
  });

  it('gives racing duplicates one cluster and one response', async () => {
    const key = await newTenant();
    const headers = { 'idempotency-key': 'race-1' };
    const responses = await Promise.all(Array.from({ length: 6 }, () => api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('raced'), headers })));
    expect(responses.map((response) => response.status)).toEqual(Array(6).fill(202));
    expect(new Set(responses.map((response) => response.body.id)).size).toBe(1);
    const list = await api<{ items: unknown[] }>('GET', '/v1/clusters', { token: key });
    expect(list.body.items).toHaveLength(1);
  });

  it('refuses a reused key with a different body and changes nothing', async () => {
    const key = await newTenant();
    const headers = { 'idempotency-key': 'reuse-1' };
    expect((await api('POST', '/v1/clusters', { token: key, body: order('first'), headers })).status).toBe(202);
    const reused = await api('POST', '/v1/clusters', { token: key, body: order('second'), headers });
    expectProblem(reused, 422, 'idempotency_key_reused');
    const list = await api<{ items: ClusterBody[] }>('GET', '/v1/clusters', { token: key });
    expect(list.body.items.map((item) => item.name)).toEqual(['first']);
  });
});

describe('bad input', () => {
  it('answers malformed JSON with 400 and creates nothing', async () => {
    const key = await newTenant();
    const response = await api('POST', '/v1/clusters', { token: key, rawBody: '{"name": "x",' });
    expectProblem(response, 400, 'malformed_request');
    const list = await api<{ items: unknown[] }>('GET', '/v1/clusters', { token: key });
    expect(list.body.items).toEqual([]);
  });

  it('points at each field of the wrong shape', async () => {
    const key = await newTenant();
    const response = await api<{ errors: { pointer?: string }[] }>('POST', '/v1/clusters', {
      token: key,
      body: { ...order('Bad_Name'), nodePools: [{ name: 'p', size: -1 }], colour: 'blue' },
    });
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors.map((error) => error.pointer)).toEqual(expect.arrayContaining(['/name', '/nodePools/0/size', '/colour']));
  });

  it('refuses cross-field rules with 422 and the pointer', async () => {
    const key = await newTenant();
    const response = await api<{ errors: { pointer?: string }[] }>('POST', '/v1/clusters', {
      token: key,
      body: { ...order('even'), controlPlane: { replicas: 4 } },
    });
    expectProblem(response, 422, 'unprocessable');
    expect(response.body.errors).toEqual([expect.objectContaining({ pointer: '/controlPlane/replicas' })]);
  });

  it('refuses a second cluster with the same name', async () => {
    const key = await newTenant();
    expect((await api('POST', '/v1/clusters', { token: key, body: order('twin') })).status).toBe(202);
    expectProblem(await api('POST', '/v1/clusters', { token: key, body: order('twin') }), 409, 'conflict');
  });

  it('needs a valid bearer token', async () => {
    expectProblem(await api('GET', '/v1/clusters'), 401, 'unauthorized');
    expectProblem(await api('GET', '/v1/clusters', { token: 'kiln_not-a-key' }), 401, 'unauthorized');
    const key = await newTenant();
    expectProblem(await api('POST', '/v1/tenants', { token: key, body: { name: 'sneaky' } }), 403, 'forbidden');
  });
});

describe('secrets in the order', () => {
  it("keeps a user-provided at-rest key sealed, and moves it under the cluster's own KMS key once there is one", async () => {
    const key = await newTenant();
    const material = Buffer.alloc(32, 7).toString('base64');
    const created = await api<ClusterBody>('POST', '/v1/clusters', {
      token: key,
      body: { ...order('sealed'), encryption: { atRest: { provider: 'secretbox', keySource: 'user', key: material } } },
    });
    expect(created.status).toBe(202);
    expect(created.body.encryption.atRest).toEqual({ provider: 'secretbox', keySource: 'user' });
    expect(created.text).not.toContain(material);

    const principal = await authenticate(stack.services, key);
    if (principal?.kind !== 'tenant') throw new Error('the new key did not authenticate');
    const { tenantId } = principal;
    const clusterId = created.body.id;
    // Before the cluster has a KMS key, the key waits sealed under Kiln's.
    const ordered = await stack.services.store.getCluster(tenantId, clusterId);
    expect(JSON.stringify(ordered)).not.toContain(material);
    const pending = ordered?.sealed?.pendingUserAtRestKey ?? '';
    expect(pending).toMatch(/^kms-envelope:v1:/);
    const pendingContext = { tenantId, clusterId, purpose: 'pendingUserAtRestKey' };
    expect(Buffer.from(await stack.services.sealer.unseal(pending, pendingContext)).toString('utf8')).toBe(material);
    await expect(stack.services.sealer.unseal(pending, { ...pendingContext, clusterId: 'cls_other' })).rejects.toThrow();

    const ready = (await waitForPhase(key, clusterId, 'Ready')) as unknown as { status: { encryption: { kmsKeyArn: string } } };
    const stored = await stack.services.store.getCluster(tenantId, clusterId);
    if (stored?.clusterKeyArn === undefined) throw new Error('the cluster has no KMS key');
    expect(ready.status.encryption.kmsKeyArn).toBe(stored.clusterKeyArn);
    expect(stored.clusterKeyArn).toMatch(/^arn:aws:kms:eu-central-1:\d{12}:key\//);
    // Now only the cluster's key wraps it: the order-time copy is gone, and Kiln's own key cannot open the new one.
    expect(Object.keys(stored.sealed ?? {})).not.toContain('pendingUserAtRestKey');
    const sealed = stored.sealed?.atRestKey ?? '';
    const context = { tenantId, clusterId, purpose: 'atRestKey' };
    expect(Buffer.from(await stack.services.inCluster(stored).sealer(stored.clusterKeyArn).unseal(sealed, context)).toString('utf8')).toBe(material);
    await expect(stack.services.sealer.unseal(sealed, context)).rejects.toThrow();

    // A stored order has no key (it is write-only), and that is not held against later changes.
    const patched = await api('PATCH', `/v1/clusters/${clusterId}`, {
      token: key,
      body: { extensions: { intrusionDetection: { enabled: true } } },
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(patched.status).toBe(202);
    await waitForPhase(key, clusterId, 'Ready');
  });
});

describe('tenant isolation', () => {
  it("answers another tenant's cluster and operation exactly like missing ones", async () => {
    const owner = await newTenant();
    const stranger = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: owner, body: order('private') });
    const clusterId = created.body.id;
    const operationId = created.body.status.activeOperationId ?? '';

    const foreign = await api('GET', `/v1/clusters/${clusterId}`, { token: stranger });
    const missing = await api('GET', `/v1/clusters/${clusterId.slice(0, -4)}zzzz`, { token: stranger });
    expectProblem(foreign, 404, 'not_found');
    expect({ ...foreign.body, detail: '', instance: '', requestId: '' }).toEqual({ ...missing.body, detail: '', instance: '', requestId: '' });
    expectProblem(await api('GET', `/v1/operations/${operationId}`, { token: stranger }), 404, 'not_found');
    expectProblem(await api('GET', `/v1/clusters/${clusterId}/operations`, { token: stranger }), 404, 'not_found');
    expectProblem(await api('DELETE', `/v1/clusters/${clusterId}`, { token: stranger }), 404, 'not_found');
    expect((await api<{ items: unknown[] }>('GET', '/v1/clusters', { token: stranger })).body.items).toEqual([]);
  });
});

describe('pagination', () => {
  it('walks every cluster once, without gaps or repeats', async () => {
    const key = await newTenant();
    const names = Array.from({ length: 7 }, (_, index) => `page-${index}`);
    // Pagination is what this test is about; stop each workflow at its first step to keep the run light.
    for (const name of names) stack.faults.inject({ task: 'Plan', clusterName: name, message: 'stopped by the pagination test' });
    const created = new Set<string>();
    for (const name of names) {
      created.add((await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order(name) })).body.id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const query = cursor === undefined ? '?limit=3' : `?limit=3&cursor=${encodeURIComponent(cursor)}`;
      const page = await api<{ items: ClusterBody[]; nextCursor?: string }>('GET', `/v1/clusters${query}`, { token: key });
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.items.map((item) => item.id));
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(created);
    expect(seen).toEqual([...seen].sort());

    expectProblem(await api('GET', '/v1/clusters?cursor=bm9wZQ', { token: key }), 400, 'validation_failed');
    expectProblem(await api('GET', '/v1/clusters?limit=1000', { token: key }), 400, 'validation_failed');
  });
});

describe('a failing provisioning step', () => {
  it('records the problem, fails the cluster, and leaves it deletable', async () => {
    const key = await newTenant();
    stack.faults.inject({ task: 'Addons', clusterName: 'doomed', message: 'the add-on installer could not reach the API server' });
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('doomed') });
    const failed = await waitForPhase(key, created.body.id, 'Failed');
    expect(failed.status.reason).toContain('addons');

    const operation = await api<OperationBody>('GET', `/v1/operations/${created.body.status.activeOperationId ?? ''}`, { token: key });
    expect(operation.body.state).toBe('failed');
    expect(operation.body.error).toMatchObject({
      type: expect.stringMatching(/^https:\/\//),
      title: expect.any(String),
      status: 500,
      detail: expect.stringContaining('the add-on installer could not reach the API server'),
    });
    const states = Object.fromEntries(operation.body.steps.map((step) => [step.name, step.state]));
    expect(states).toMatchObject({ plan: 'succeeded', infrastructure: 'succeeded', addons: 'failed', verify: 'pending' });

    expect((await api('DELETE', `/v1/clusters/${created.body.id}`, { token: key })).status).toBe(202);
    await waitForDeletion(key, created.body.id);
  });
});

describe('recovery', () => {
  it('starts an operation whose process died between the write and StartExecution, once', async () => {
    const key = await newTenant();
    const principal = await authenticate(stack.services, key);
    if (principal?.kind !== 'tenant') throw new Error('the new key did not authenticate');
    // The write commits, then the process "dies" before the execution starts.
    const crashing = {
      ...stack.services,
      workflows: { start: () => Promise.reject(new Error('process died')), status: stack.services.workflows.status.bind(stack.services.workflows), completeTask: stack.services.workflows.completeTask.bind(stack.services.workflows) },
    };
    const outcome = await orderCluster(crashing, principal.tenantId, ClusterSpec.parse(order('orphan')));
    if (outcome.kind !== 'fresh') throw new Error('expected a fresh order');
    const cluster = outcome.value;
    const operationId = cluster.status.activeOperationId ?? '';
    expect((await api<OperationBody>('GET', `/v1/operations/${operationId}`, { token: key })).body.state).toBe('pending');

    const report = await recoverOperations(stack.services, { graceMs: 0 });
    expect(report.started).toContain(operationId);
    // A second pass while it runs, and a duplicate start, change nothing.
    const again = await recoverOperations(stack.services, { graceMs: 0 });
    expect(again.started).not.toContain(operationId);
    const { requestId } = (await api<OperationBody & { requestId: string }>('GET', `/v1/operations/${operationId}`, { token: key })).body;
    await stack.services.workflows.start('provision', { tenantId: principal.tenantId, clusterId: cluster.id, operationId, requestId });

    await waitForPhase(key, cluster.id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${operationId}`, { token: key });
    expect(operation.body.state).toBe('succeeded');
    expect(operation.body.steps.every((step) => step.state === 'succeeded')).toBe(true);
  });
});

describe('coordinated reboots', () => {
  it('moves the reboot window of a running cluster with a PATCH of its maintenance window', async () => {
    const key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('reboots') });
    await waitForPhase(key, created.body.id, 'Ready');
    const windowOf = () => {
      const chart = sandboxOf(created.body.id).sandbox.objects({ kind: 'HelmChart', name: 'kured' })[0] as { spec: { valuesContent: string } } | undefined;
      return (parseYaml(chart?.spec.valuesContent ?? '') as { configuration?: Record<string, unknown> } | null)?.configuration;
    };
    expect(windowOf()).toMatchObject({ rebootDays: ['mo', 'tu', 'we', 'th', 'fr', 'sa', 'su'], startTime: '03:00', endTime: '07:00', concurrency: 1 });

    const patched = await api('PATCH', `/v1/clusters/${created.body.id}`, {
      token: key,
      body: { maintenance: { window: { days: ['sun'], start: '01:30', durationMinutes: 120 } } },
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(patched.status).toBe(202);
    await waitForPhase(key, created.body.id, 'Ready');
    expect(windowOf()).toMatchObject({ rebootDays: ['su'], startTime: '01:30', endTime: '03:30' });
  });
});

describe('changing a cluster', () => {
  it('applies an add-on change through the update workflow, guarded by If-Match and one operation at a time', async () => {
    const key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('changing') });
    await waitForPhase(key, created.body.id, 'Ready');
    const path = `/v1/clusters/${created.body.id}`;
    const etag = (await api('GET', path, { token: key })).headers.get('etag') ?? '';
    const patch = { extensions: { intrusionDetection: { enabled: true } } };
    const mergePatch = { 'content-type': 'application/merge-patch+json' };

    expectProblem(await api('PATCH', path, { token: key, body: patch, headers: { ...mergePatch, 'if-match': '"v999"' } }), 412, 'precondition_failed');
    const immutable = await api<{ errors: { pointer?: string }[] }>('PATCH', path, { token: key, body: { region: 'us-east-1' }, headers: mergePatch });
    expectProblem(immutable, 422, 'unprocessable');
    expect(immutable.body.errors).toEqual([expect.objectContaining({ pointer: '/region' })]);
    expectProblem(await api('PATCH', path, { token: key, body: { controlPlane: { replicas: 2 } }, headers: mergePatch }), 422, 'unprocessable');

    // Drift before the change: someone loosens the default namespace's Pod Security level by hand.
    const { sandbox, core } = sandboxOf(created.body.id);
    await core.patchNamespace(
      { name: 'default', body: { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const enforcedOnDefault = () => (sandbox.objects({ kind: 'Namespace', name: 'default' })[0]?.metadata as { labels?: Record<string, string> }).labels?.['pod-security.kubernetes.io/enforce'];
    expect(enforcedOnDefault()).toBe('privileged');
    sandbox.clearRequestLog();

    const accepted = await api<ClusterBody & { spec: { extensions: { intrusionDetection: { enabled: boolean } } } }>('PATCH', path, {
      token: key,
      body: patch,
      headers: { ...mergePatch, 'if-match': etag },
    });
    expect(accepted.status).toBe(202);
    expect(accepted.body.status.phase).toBe('Updating');
    expect(accepted.body.extensions.intrusionDetection.enabled).toBe(true);
    const operationId = accepted.body.status.activeOperationId ?? '';
    expect(accepted.headers.get('location')).toBe(`/v1/operations/${operationId}`);

    const busy = await api('PATCH', path, { token: key, body: { extensions: { policyEngine: { enabled: true } } }, headers: mergePatch });
    expectProblem(busy, 409, 'conflict');
    expect((busy.body as { detail: string }).detail).toContain(operationId);

    await waitForPhase(key, created.body.id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${operationId}`, { token: key });
    expect(operation.body).toMatchObject({ type: 'update', state: 'succeeded' });
    expect(operation.body.steps.map((step) => [step.name, step.state])).toEqual([
      ['addons', 'succeeded'],
      ['verify', 'succeeded'],
    ]);
    expect(sandbox.objects({ kind: 'TracingPolicy' }).map((policy) => (policy.metadata as { name: string }).name)).toEqual(['kiln-kill-privilege-gain']);
    // The drift is repaired, and this second run of the add-ons changed nothing but Tetragon and the drifted field.
    expect(enforcedOnDefault()).toBe('restricted');
    const changedByKiln = sandbox.mutatingRequests((request) => request.fieldManager === 'kiln').map((request) => `${request.resource ?? ''}/${request.name ?? ''}`);
    expect(new Set(changedByKiln)).toEqual(new Set(['namespaces/default', 'helmcharts/tetragon', 'tracingpolicies/kiln-kill-privilege-gain']));
    expect(sandbox.objects({ kind: 'HelmChart' }).map((chart) => (chart.metadata as { name: string }).name)).toContain('tetragon');
    expect(sandbox.objects({ kind: 'ClusterIssuer' }).length).toBeGreaterThanOrEqual(1);

    // A patch that changes nothing starts nothing.
    const unchanged = await api<ClusterBody>('PATCH', path, { token: key, body: patch, headers: mergePatch });
    expect(unchanged.status).toBe(200);
    expect(unchanged.body.status.activeOperationId).toBeUndefined();

    // Turning it off again removes what it installed.
    const off = await api('PATCH', path, { token: key, body: { extensions: { intrusionDetection: { enabled: false } } }, headers: mergePatch });
    expect(off.status).toBe(202);
    await waitForPhase(key, created.body.id, 'Ready');
    expect(sandbox.objects({ kind: 'TracingPolicy' })).toEqual([]);
    expect(sandbox.objects({ kind: 'HelmChart' }).map((chart) => (chart.metadata as { name: string }).name)).not.toContain('tetragon');
  });
});

describe('rotating the Secret-encryption key', () => {
  it('moves every Secret to a new key and drops the old one, surviving a fault at each step of the procedure', async () => {
    const key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('rotating') });
    await waitForPhase(key, created.body.id, 'Ready');
    const { sandbox, core } = sandboxOf(created.body.id);
    // More Secrets than one rewrite page holds, so the rewrite follows a continue token.
    const secretCount = DEFAULT_REWRITE_PAGE_SIZE + 20;
    for (let index = 0; index < secretCount; index++) {
      await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: `app-${index}` }, stringData: { password: `secret-${index}` } } });
    }
    const keysOf = () => new Set(sandbox.storedSecretKeys().map((stored) => `${stored.provider}/${stored.key}`));
    expect(keysOf()).toEqual(new Set(['secretbox/key-1']));

    // One fault at each step of the upstream procedure: KMS fails while the new key is generated and sealed (three
    // times, so the SDK's own retries give up too); every config write fails once and every restart on the config just
    // written comes back unhealthy once; during the rewrite a Secret's replace fails and the continue token expires;
    // and the step's Lambda fails once before it runs at all. A failure after progress hands back to the poll loop, so
    // only invocations that got nowhere use up the workflow's retries.
    stack.kms.failNext('GenerateDataKey', 3);
    for (const keys of [['key-1', 'key-2'], ['key-2', 'key-1'], ['key-2']]) {
      stack.machines.failCommands('write', 1, { keys });
      stack.machines.failCommands('restart', 1, { keys });
    }
    const failedReplace = sandbox.faults.failRequests({ match: (request) => request.verb === 'update' && request.resource === 'secrets', code: 500 });
    const expiredContinue = sandbox.faults.expireContinueTokens({ resource: 'secrets' });
    stack.faults.inject({ task: 'RotateEncryptionKey', clusterName: 'rotating', times: 1, retriable: true, message: 'Lambda throttled' });
    const path = `/v1/clusters/${created.body.id}/encryption-key-rotations`;
    const started = await api<OperationBody>('POST', path, { token: key });
    expect(started.status).toBe(202);
    expect(started.body.type).toBe('rotate-encryption-key');
    expectProblem(await api('POST', path, { token: key }), 409, 'conflict');

    const ready = await waitForPhase(key, created.body.id, 'Ready');
    expect(stack.machines.unusedCommandFaults()).toBe(0);
    expect(stack.kms.unusedFaults()).toBe(0);
    expect(failedReplace.hits).toBe(1);
    expect(expiredContinue.hits).toBe(1);
    expect(stack.faults.unused('RotateEncryptionKey')).toBe(0);
    const encryption = (ready as unknown as { status: { encryption: { activeKeyId: string; keys: string[]; rotation: { lastCompletedAt?: string } } } }).status.encryption;
    expect(encryption).toMatchObject({ activeKeyId: 'key-2', keys: ['key-2'] });
    expect(encryption.rotation.lastCompletedAt).toBeDefined();
    expect(keysOf()).toEqual(new Set(['secretbox/key-2']));
    // Listing decrypts every Secret: one under a key the API server no longer has would fail the whole list.
    const secrets = await core.listNamespacedSecret({ namespace: 'default' });
    const passwords = new Map(secrets.items.map((secret) => [secret.metadata?.name, Buffer.from(secret.data?.password ?? '', 'base64').toString()]));
    for (let index = 0; index < secretCount; index++) expect(passwords.get(`app-${index}`), `app-${index}`).toBe(`secret-${index}`);

    const operation = await api<OperationBody>('GET', `/v1/operations/${started.body.id}`, { token: key });
    expect(operation.body.state).toBe('succeeded');
    const outputs = operation.body.steps[0]?.outputs ?? {};
    // The expired token made the rewrite start over, so the first page was rewritten twice.
    expect(outputs.secretsRewritten).toBe(sandbox.storedSecretKeys().length + DEFAULT_REWRITE_PAGE_SIZE);
    const phases = (outputs.phases ?? {}) as Record<string, string>;
    const entered = ['Preparing', 'Prepared', 'Completing', 'Completed'].map((phase) => Date.parse(phases[phase] ?? ''));
    expect(entered.every((at, index) => Number.isFinite(at) && (index === 0 || at >= (entered[index - 1] ?? 0)))).toBe(true);
  });
});

describe('scheduled key rotation', () => {
  it('starts a rotation once rotationPeriodDays has passed, and schedules the next', async () => {
    const key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', {
      token: key,
      body: { ...order('scheduled'), encryption: { atRest: { provider: 'aescbc', rotationPeriodDays: 30 } } },
    });
    await waitForPhase(key, created.body.id, 'Ready');
    const principal = await authenticate(stack.services, key);
    if (principal?.kind !== 'tenant') throw new Error('the new key did not authenticate');
    const due = async () => (await stack.services.store.getCluster(principal.tenantId, created.body.id))?.encryption?.nextRotationAt ?? '';
    const firstDue = await due();
    expect(Date.parse(firstDue) - Date.now()).toBeGreaterThan(29 * 24 * 3600_000);

    expect((await startDueRotations(stack.services, new Date())).started).not.toContain(created.body.id);
    const report = await startDueRotations(stack.services, new Date(Date.parse(firstDue) + 1000));
    expect(report.started).toContain(created.body.id);

    await eventually('the scheduled rotation to finish', async () => {
      const cluster = await stack.services.store.getCluster(principal.tenantId, created.body.id);
      return cluster?.status.phase === 'Ready' && cluster.encryption?.activeKeyId === 'key-2' ? cluster : undefined;
    });
    expect(Date.parse(await due())).toBeGreaterThan(Date.parse(firstDue));
  });
});

describe('an interrupted key rotation', () => {
  it('fails visibly, and a second request resumes it from the recorded step instead of starting over', async () => {
    const key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('interrupted') });
    await waitForPhase(key, created.body.id, 'Ready');
    const principal = await authenticate(stack.services, key);
    if (principal?.kind !== 'tenant') throw new Error('the new key did not authenticate');
    const path = `/v1/clusters/${created.body.id}/encryption-key-rotations`;

    // The first API server never comes back healthy with the new key as second: the operation stops after
    // MAX_UNHEALTHY_RESTARTS tries, with that machine's new config written and every other machine untouched.
    stack.machines.failCommands('restart', 1_000, { keys: ['key-1', 'key-2'] });
    const first = await api<OperationBody>('POST', path, { token: key });
    const failed = await waitForPhase(key, created.body.id, 'Failed');
    expect(failed.status.reason).toContain(`did not come back healthy in ${MAX_UNHEALTHY_RESTARTS} restarts`);
    expect((await api<OperationBody>('GET', `/v1/operations/${first.body.id}`, { token: key })).body.state).toBe('failed');
    const interrupted = await stack.services.store.getCluster(principal.tenantId, created.body.id);
    expect(interrupted?.encryption?.rotation).toMatchObject({ phase: 'Preparing', newKey: 'key-2', newKeyGenerated: true });
    const machinesOf = (interrupted?.encryption?.rotation as { configs: Record<string, { written: number; loaded: number; failedRestarts: number }> }).configs;
    const byName = Object.entries(machinesOf).sort(([a], [b]) => a.localeCompare(b));
    expect(byName.map(([, { written, loaded, failedRestarts }]) => [written, loaded, failedRestarts])).toEqual([
      [1, 0, MAX_UNHEALTHY_RESTARTS],
      [0, 0, 0],
      [0, 0, 0],
    ]);
    const preparingSince = (interrupted?.encryption?.rotation as { phaseEnteredAt: { Preparing: string } }).phaseEnteredAt.Preparing;

    // The machine is repaired; rotating again picks up the same rotation (key-2, not key-3).
    stack.machines.clearCommandFaults();
    const second = await api<OperationBody>('POST', path, { token: key });
    expect(second.status).toBe(202);
    await eventually('the resumed rotation to finish', async () => {
      const cluster = await stack.services.store.getCluster(principal.tenantId, created.body.id);
      return cluster?.status.phase === 'Ready' ? cluster : undefined;
    });
    const done = await stack.services.store.getCluster(principal.tenantId, created.body.id);
    expect(done?.encryption).toMatchObject({ activeKeyId: 'key-2', keys: ['key-2'] });
    expect(done?.encryption?.rotation).toBeUndefined();
    // Resumed, not restarted: the rotation that finished is the one that entered Preparing before the failure.
    const resumed = await api<OperationBody>('GET', `/v1/operations/${second.body.id}`, { token: key });
    expect((resumed.body.steps[0]?.outputs?.phases as { Preparing?: string } | undefined)?.Preparing).toBe(preparingSince);
    expect(new Set(stack.clusters.get(created.body.id)?.storedSecretKeys().map((stored) => stored.key))).toEqual(new Set(['key-2']));
  });
});

describe("clusters in the tenant's own account", () => {
  it('builds there through the role the tenant trusts Kiln with, and keeps its data keys under a key in that account', async () => {
    const key = await newTenant();
    // The tenant writes its role's trust policy from what Kiln shows it: Kiln's account, and the external ID Kiln issued.
    const trust = await api<{ kilnAccountId: string; externalId: string; trustPolicy: string }>('GET', '/v1/account-trust', { token: key });
    const account = { roleArn: 'arn:aws:iam::222233334444:role/kiln-provisioner' };
    const role = await api('POST', '/v1/sandbox/account-roles', { token: stack.adminToken, body: { roleArn: account.roleArn, assumeRolePolicyDocument: trust.body.trustPolicy } });
    expect(role.status).toBe(201);
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: { ...order('own-account'), region: 'eu-west-1', account } });
    expect(created.status).toBe(202);
    const ready = (await waitForPhase(key, created.body.id, 'Ready')) as unknown as { status: { encryption: { kmsKeyArn: string } } };

    // The machines only boot once their join material is in their own account and region, so Ready proves where it went.
    expect(ready.status.encryption.kmsKeyArn).toMatch(/^arn:aws:kms:eu-west-1:222233334444:key\//);
    const sessions = stack.sts.calls.filter((call) => call.roleSessionName === `kiln-${created.body.id}`);
    expect(sessions.length).toBeGreaterThanOrEqual(1);
    expect(sessions.every((call) => call.roleArn === account.roleArn && call.externalId === trust.body.externalId && call.callerAccountId === '000000000000')).toBe(true);
    const principal = await authenticate(stack.services, key);
    if (principal?.kind !== 'tenant') throw new Error('the new key did not authenticate');
    const stored = await stack.services.store.getCluster(principal.tenantId, created.body.id);
    expect(stored?.spec.account?.externalId).toBe(trust.body.externalId);
    if (stored?.clusterKeyArn === undefined) throw new Error('the cluster has no KMS key');
    const context = { tenantId: principal.tenantId, clusterId: created.body.id, purpose: 'atRestKey' };
    // Only the tenant account can open the data key: Kiln's own credentials are not allowed to use the cluster key.
    await expect(stack.services.inCluster(stored).sealer(stored.clusterKeyArn).unseal(stored.sealed?.atRestKey ?? '', context)).resolves.toHaveLength(44);
    await expect(
      stack.services.inCluster({ id: stored.id, spec: { ...stored.spec, account: undefined } }).sealer(stored.clusterKeyArn).unseal(stored.sealed?.atRestKey ?? '', context),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });

    // Deleting the cluster schedules its key's deletion: what it wrapped can no longer be opened.
    expect((await api('DELETE', `/v1/clusters/${created.body.id}`, { token: key })).status).toBe(202);
    await waitForDeletion(key, created.body.id);
    expect(stack.kms.keys.ensureKey(stored.clusterKeyArn).KeyState).toBe('PendingDeletion');
  });

  it("fails the order of a tenant naming another tenant's role: Kiln sends the ordering tenant's external ID, which that role does not trust", async () => {
    const owner = await newTenant();
    const ownersTrust = await api<{ kilnAccountId: string; externalId: string }>('GET', '/v1/account-trust', { token: owner });
    const account = { roleArn: 'arn:aws:iam::555566667777:role/kiln-provisioner' };
    stack.sts.trust(account.roleArn, { trustedAccountId: ownersTrust.body.kilnAccountId, externalId: ownersTrust.body.externalId });
    const key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: { ...order('untrusted'), account } });
    const failed = await waitForPhase(key, created.body.id, 'Failed');
    expect(failed.status.reason).toContain("Kiln could not assume the order's account role");
    expect(failed.status.reason).not.toContain(ownersTrust.body.externalId);
    expect(failed.status.reason).not.toContain('arn:');
    expect(stack.sts.calls.filter((call) => call.roleSessionName === `kiln-${created.body.id}`)).toEqual([]);
  });
});

describe('Secrets encrypted through KMS v2', () => {
  it('runs the AWS KMS plugin beside every API server, with the cluster key, and leaves rotation to KMS', async () => {
    const key = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', {
      token: key,
      body: { ...order('kms-at-rest'), region: 'eu-west-1', encryption: { atRest: { provider: 'kms', keySource: 'kms' } } },
    });
    expect(created.status).toBe(202);
    await waitForPhase(key, created.body.id, 'Ready');
    const { sandbox, core } = sandboxOf(created.body.id);

    // A Secret written now goes through the plugin, sealed under a data key that only the cluster key unwraps.
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'db' }, stringData: { password: 'through-kms' } } });
    expect(sandbox.storedSecretKeys().find((stored) => stored.name === 'db')).toMatchObject({ provider: 'kms', key: 'aws-encryption-provider' });
    const read = await core.readNamespacedSecret({ namespace: 'default', name: 'db' });
    expect(Buffer.from(read.data?.password ?? '', 'base64').toString()).toBe('through-kms');

    // Kiln holds no data key for such a cluster: KMS rotates its own key material.
    const principal = await authenticate(stack.services, key);
    if (principal?.kind !== 'tenant') throw new Error('the new key did not authenticate');
    const stored = await stack.services.store.getCluster(principal.tenantId, created.body.id);
    expect(Object.keys(stored?.sealed ?? {}).filter((name) => name.startsWith('atRestKey'))).toEqual([]);
    const rotation = await api('POST', `/v1/clusters/${created.body.id}/encryption-key-rotations`, { token: key });
    expectProblem(rotation, 409, 'conflict');
    expect((rotation.body as { detail: string }).detail).toContain('KMS');

    // Once the cluster is deleted its key waits out its deletion window, and nothing it sealed opens any more.
    expect((await api('DELETE', `/v1/clusters/${created.body.id}`, { token: key })).status).toBe(202);
    await waitForDeletion(key, created.body.id);
    expect(stack.kms.keys.ensureKey(stored?.clusterKeyArn ?? '').KeyState).toBe('PendingDeletion');
  });
});
