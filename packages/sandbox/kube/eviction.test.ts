import { PatchStrategy, PolicyV1Api, V1Eviction, V1Pod, V1PodDisruptionBudget, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SandboxCluster, startSandboxCluster } from './index.ts';
import type { JsonObject } from './json.ts';
import { clientsFor, failureOf, manifest, statusOf } from './testing.ts';

const NAMESPACE = 'default';

interface PodState {
  labels?: Record<string, string>;
  /** Sets the Ready condition; no status at all when omitted. */
  ready?: boolean;
  phase?: string;
}

describe('the pods/eviction subresource', () => {
  let cluster: SandboxCluster;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'eviction' });
  });

  afterEach(async () => {
    await cluster.close();
  });

  async function createPod(name: string, state: PodState = {}): Promise<void> {
    const { core } = clientsFor(cluster);
    const body = manifest(V1Pod, { metadata: { name, labels: state.labels ?? { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx:1.29' }] } });
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    if (state.ready === undefined && state.phase === undefined) return;
    const status: JsonObject = { phase: state.phase ?? 'Running' };
    if (state.ready !== undefined) status.conditions = [{ type: 'Ready', status: state.ready ? 'True' : 'False' }];
    await core.patchNamespacedPodStatus({ name, namespace: NAMESPACE, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  async function createBudget(name: string, spec: JsonObject): Promise<void> {
    const policy = clientsFor(cluster).config.makeApiClient(PolicyV1Api);
    const body = manifest(V1PodDisruptionBudget, { metadata: { name }, spec: { selector: { matchLabels: { app: 'web' } }, ...spec } });
    await policy.createNamespacedPodDisruptionBudget({ namespace: NAMESPACE, body });
  }

  function evict(name: string, eviction: JsonObject = {}): Promise<V1Eviction> {
    const body = manifest(V1Eviction, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: NAMESPACE }, ...eviction });
    return clientsFor(cluster).core.createNamespacedPodEviction({ name, namespace: NAMESPACE, body });
  }

  const podNames = (): string[] => cluster.objects({ kind: 'Pod' }).map((pod) => (pod.metadata as { name: string }).name).sort();
  const evictions = () => cluster.mutatingRequests((record) => record.subresource === 'eviction');

  it('evicts a pod no budget guards: 201 with a Success Status, the pod deleted, the request logged as a write', async () => {
    await createPod('lonely', { ready: true });

    const response = await fetch(`${cluster.url}/api/v1/namespaces/${NAMESPACE}/pods/lonely/eviction`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'lonely', namespace: NAMESPACE } }),
    });

    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
    expect(podNames()).toEqual([]);
    expect(evictions()).toMatchObject([{ method: 'POST', verb: 'create', resource: 'pods', name: 'lonely', subresource: 'eviction', status: 201 }]);
  });

  it('accepts a policy/v1beta1 Eviction', async () => {
    await createPod('old-client', { ready: true });
    const body = manifest(V1Eviction, { apiVersion: 'policy/v1beta1', kind: 'Eviction', metadata: { name: 'old-client' } });

    const reply = await clientsFor(cluster).core.createNamespacedPodEvictionWithHttpInfo({ name: 'old-client', namespace: NAMESPACE, body });

    expect(reply.httpStatusCode).toBe(201);
    expect(podNames()).toEqual([]);
  });

  it('refuses with 429 while an integer minAvailable would be violated, and changes nothing', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createBudget('web', { minAvailable: 2 });

    const status = statusOf(await failureOf(evict('web-1')));

    expect(status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: "Cannot evict pod as it would violate the pod's disruption budget.",
      reason: 'TooManyRequests',
      code: 429,
      details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] },
    });
    expect(podNames()).toEqual(['web-1', 'web-2']);
    expect(evictions()).toEqual([]);
  });

  it('evicts once another matching pod becomes Ready', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createPod('web-3', { ready: false });
    await createBudget('web', { minAvailable: 2 });
    expect(statusOf(await failureOf(evict('web-1')))).toMatchObject({ code: 429 });

    await createPod('web-4', { ready: true });
    await evict('web-1');

    expect(podNames()).toEqual(['web-2', 'web-3', 'web-4']);
  });

  it('rounds a percentage minAvailable up: 50% of 3 pods needs 2 healthy', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createPod('web-3', { ready: false });
    await createBudget('web', { minAvailable: '50%' });

    const status = statusOf(await failureOf(evict('web-1')));

    expect(status).toMatchObject({ code: 429, details: { causes: [{ message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] } });
  });

  it('refuses with an integer maxUnavailable that the unready pods already use up', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createPod('web-3', { ready: false });
    await createBudget('web', { maxUnavailable: 1 });

    const status = statusOf(await failureOf(evict('web-1')));

    expect(status).toMatchObject({ code: 429, details: { causes: [{ message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] } });
    expect(podNames()).toEqual(['web-1', 'web-2', 'web-3']);
  });

  it('rounds a percentage maxUnavailable up: 50% of 3 pods allows 2 unavailable', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createPod('web-3', { ready: false });
    await createBudget('web', { maxUnavailable: '50%' });

    await evict('web-1');
    expect(podNames()).toEqual(['web-2', 'web-3']);

    // Two pods left, one of them unready: 50% of 2 is 1 unavailable, already taken.
    const status = statusOf(await failureOf(evict('web-2')));
    expect(status).toMatchObject({ code: 429, details: { causes: [{ message: 'The disruption budget web needs 1 healthy pods and has 1 currently' }] } });
  });

  it('evicts within the budget when it allows a disruption', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createPod('web-3', { ready: true });
    await createBudget('web', { minAvailable: 2 });

    await evict('web-1');
    const second = statusOf(await failureOf(evict('web-2')));

    expect(podNames()).toEqual(['web-2', 'web-3']);
    expect(second).toMatchObject({ code: 429 });
  });

  it('evicts an unready pod while the rest is as healthy as the budget asks (IfHealthyBudget, the default)', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createPod('web-3', { ready: false });
    await createBudget('web', { minAvailable: 2 });

    await evict('web-3');

    expect(podNames()).toEqual(['web-1', 'web-2']);
  });

  it('keeps an unready pod while the budget is not met, unless the budget says AlwaysAllow', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: false });
    await createBudget('web', { minAvailable: 2 });

    const status = statusOf(await failureOf(evict('web-2')));
    expect(status).toMatchObject({ code: 429, details: { causes: [{ message: 'The disruption budget web needs 2 healthy pods and has 1 currently' }] } });
    expect(podNames()).toEqual(['web-1', 'web-2']);

    const policy = clientsFor(cluster).config.makeApiClient(PolicyV1Api);
    await policy.patchNamespacedPodDisruptionBudget(
      { name: 'web', namespace: NAMESPACE, body: { spec: { unhealthyPodEvictionPolicy: 'AlwaysAllow' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await evict('web-2');
    expect(podNames()).toEqual(['web-1']);
    // AlwaysAllow is for unready pods only: the ready one is still guarded.
    expect(statusOf(await failureOf(evict('web-1')))).toMatchObject({ code: 429 });
  });

  it('deletes pending and finished pods without consulting the budget', async () => {
    await createPod('starting', { phase: 'Pending' });
    await createPod('done', { phase: 'Succeeded' });
    await createBudget('web', { minAvailable: 5 });

    await evict('starting');
    await evict('done');

    expect(podNames()).toEqual([]);
  });

  it('answers 500 when two budgets select the pod, and keeps it', async () => {
    await createPod('web-1', { ready: true });
    await createPod('web-2', { ready: true });
    await createBudget('web', { maxUnavailable: 1 });
    await createBudget('web-too', { maxUnavailable: 1 });

    const status = statusOf(await failureOf(evict('web-1')));

    expect(status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.',
      code: 500,
    });
    expect(podNames()).toEqual(['web-1', 'web-2']);
  });

  it('ignores a budget with an empty selector, as upstream eviction does', async () => {
    await createPod('web-1', { ready: true });
    await createBudget('everything', { selector: {}, minAvailable: 1 });

    await evict('web-1');

    expect(podNames()).toEqual([]);
  });

  it('answers 404 for a pod that does not exist', async () => {
    const status = statusOf(await failureOf(evict('ghost')));

    expect(status).toMatchObject({ reason: 'NotFound', code: 404, message: 'pods "ghost" not found', details: { name: 'ghost', kind: 'pods' } });
  });

  it('answers 400 when the Eviction names another pod', async () => {
    await createPod('web-1', { ready: true });
    const body = manifest(V1Eviction, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'web-2' } });

    const status = statusOf(await failureOf(clientsFor(cluster).core.createNamespacedPodEviction({ name: 'web-1', namespace: NAMESPACE, body })));

    expect(status).toMatchObject({ reason: 'BadRequest', code: 400, message: 'name in URL does not match name in Eviction object' });
    expect(podNames()).toEqual(['web-1']);
  });

  it('honours deleteOptions: a stale uid precondition conflicts, dryRun keeps the pod', async () => {
    await createPod('web-1', { ready: true });

    const conflict = statusOf(await failureOf(evict('web-1', { deleteOptions: { preconditions: { uid: 'not-this-pod' } } })));
    expect(conflict).toMatchObject({ reason: 'Conflict', code: 409 });
    await evict('web-1', { deleteOptions: { dryRun: ['All'] } });
    expect(podNames()).toEqual(['web-1']);
    expect(evictions()).toEqual([]);
  });

  it('goes through the fault injector like any request', async () => {
    await createPod('web-1', { ready: true });
    cluster.faults.failRequests({ match: (request) => request.subresource === 'eviction', code: 503 });

    const status = statusOf(await failureOf(evict('web-1')));

    expect(status).toMatchObject({ reason: 'ServiceUnavailable', code: 503 });
    expect(podNames()).toEqual(['web-1']);
    expect(cluster.requestLog.at(-1)).toMatchObject({ subresource: 'eviction', status: 503, fault: 'injected' });
  });

  it('advertises pods/eviction in discovery and refuses other methods on it', async () => {
    await createPod('web-1', { ready: true });
    const discovery = await fetch(`${cluster.url}/api/v1`);
    const get = await fetch(`${cluster.url}/api/v1/namespaces/${NAMESPACE}/pods/web-1/eviction`);

    expect(await discovery.json()).toMatchObject({ resources: expect.arrayContaining([{ name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] }]) });
    expect(get.status).toBe(405);
  });
});
