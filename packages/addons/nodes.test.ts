import { CoreV1Api, KubeConfig, PatchStrategy, PolicyV1Api, V1Namespace, V1Pod, V1PodDisruptionBudget, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SandboxCluster, startSandboxCluster } from '#sandbox';
import { cordonNode, deleteNode, drainNode } from './nodes.ts';

interface PodOptions {
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Record<string, unknown>[];
  finalizers?: string[];
  volumes?: Record<string, unknown>[];
  /** The Ready condition; Running with Ready=True unless told otherwise. */
  ready?: boolean;
  phase?: string;
}

const REPLICA_SET_OWNER = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d4f8', uid: '11111111-1111-4111-8111-111111111111', controller: true };
const DAEMON_SET_OWNER = { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'cilium', uid: '22222222-2222-4222-8222-222222222222', controller: true };

describe('cordon, drain and delete a node', () => {
  let cluster: SandboxCluster;
  let config: KubeConfig;
  let core: CoreV1Api;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'nodes' });
    cluster.registerNode({ name: 'w-1', role: 'worker', pool: 'general' });
    cluster.registerNode({ name: 'w-2', role: 'worker', pool: 'general' });
    config = new KubeConfig();
    config.loadFromString(cluster.kubeconfig());
    core = config.makeApiClient(CoreV1Api);
  });

  afterEach(async () => {
    await cluster.close();
  });

  async function runPod(name: string, nodeName: string, options: PodOptions = {}): Promise<void> {
    const namespace = options.namespace ?? 'default';
    const metadata = {
      name,
      labels: options.labels ?? { app: name },
      ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
      ...(options.ownerReferences === undefined ? {} : { ownerReferences: options.ownerReferences }),
      ...(options.finalizers === undefined ? {} : { finalizers: options.finalizers }),
    };
    const spec = { nodeName, containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.10' }], ...(options.volumes === undefined ? {} : { volumes: options.volumes }) };
    await core.createNamespacedPod({ namespace, body: Object.assign(new V1Pod(), { metadata, spec }) });
    const status = { phase: options.phase ?? 'Running', conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] };
    await core.patchNamespacedPodStatus({ name, namespace, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  async function createBudget(name: string, spec: Record<string, unknown>): Promise<void> {
    const policy = config.makeApiClient(PolicyV1Api);
    await policy.createNamespacedPodDisruptionBudget({ namespace: 'default', body: Object.assign(new V1PodDisruptionBudget(), { metadata: { name }, spec }) });
  }

  const podsLeft = (): string[] =>
    cluster
      .objects({ kind: 'Pod' })
      .map((pod) => {
        const metadata = pod.metadata as { namespace: string; name: string };
        return `${metadata.namespace}/${metadata.name}`;
      })
      .sort();
  const nodeSpec = (name: string): Record<string, unknown> | undefined => cluster.objects({ kind: 'Node', name })[0]?.spec as Record<string, unknown> | undefined;

  it('cordons a node: spec.unschedulable becomes true', async () => {
    expect(await cordonNode(config, 'w-1')).toBe(true);

    expect(nodeSpec('w-1')).toMatchObject({ unschedulable: true });
    expect(nodeSpec('w-2')?.unschedulable).toBeUndefined();
  });

  it('cordons an already cordoned node without writing anything', async () => {
    await cordonNode(config, 'w-1');
    cluster.clearRequestLog();

    expect(await cordonNode(config, 'w-1')).toBe(true);

    expect(cluster.mutatingRequests()).toEqual([]);
    expect(nodeSpec('w-1')).toMatchObject({ unschedulable: true });
  });

  it('answers false when cordoning a node that does not exist', async () => {
    expect(await cordonNode(config, 'w-9')).toBe(false);
  });

  it('evicts the pods of every namespace on the node, and leaves DaemonSet pods, mirror pods and other nodes alone', async () => {
    await core.createNamespace({ body: Object.assign(new V1Namespace(), { metadata: { name: 'shop' } }) });
    await runPod('web', 'w-1', { ownerReferences: [REPLICA_SET_OWNER] });
    await runPod('scratch', 'w-1', { volumes: [{ name: 'tmp', emptyDir: {} }] });
    await runPod('cart', 'w-1', { namespace: 'shop' });
    await runPod('cilium-x7k2p', 'w-1', { ownerReferences: [DAEMON_SET_OWNER] });
    await runPod('kube-apiserver-w-1', 'w-1', { annotations: { 'kubernetes.io/config.mirror': '3f2a' } });
    await runPod('web-elsewhere', 'w-2', { ownerReferences: [REPLICA_SET_OWNER] });

    const progress = await drainNode(config, 'w-1');

    expect(progress).toEqual({ evicted: ['default/scratch', 'default/web', 'shop/cart'], blocked: [], terminating: [], remaining: 3 });
    expect(podsLeft()).toEqual(['default/cilium-x7k2p', 'default/kube-apiserver-w-1', 'default/web-elsewhere']);
    expect(cluster.mutatingRequests().map((request) => `${request.name ?? ''}/${request.subresource ?? ''}`)).toContain('web/eviction');
  });

  it('reports the node drained on the pass after the last eviction', async () => {
    await runPod('web', 'w-1', { ownerReferences: [REPLICA_SET_OWNER] });
    await runPod('cilium-x7k2p', 'w-1', { ownerReferences: [DAEMON_SET_OWNER] });
    expect((await drainNode(config, 'w-1')).remaining).toBe(1);

    expect(await drainNode(config, 'w-1')).toEqual({ evicted: [], blocked: [], terminating: [], remaining: 0 });
  });

  it('evicts a DaemonSet pod that has finished, as kubectl drain does', async () => {
    await runPod('cilium-init', 'w-1', { ownerReferences: [DAEMON_SET_OWNER], phase: 'Succeeded', ready: false });

    const progress = await drainNode(config, 'w-1');

    expect(progress.evicted).toEqual(['default/cilium-init']);
    expect(podsLeft()).toEqual([]);
  });

  it('reports a pod its disruption budget protects, and evicts it once another matching pod is Ready', async () => {
    const labels = { app: 'web' };
    await runPod('web-1', 'w-1', { labels, ownerReferences: [REPLICA_SET_OWNER] });
    await runPod('web-2', 'w-2', { labels, ownerReferences: [REPLICA_SET_OWNER] });
    await runPod('web-3', 'w-2', { labels, ownerReferences: [REPLICA_SET_OWNER], ready: false });
    await createBudget('web', { minAvailable: 2, selector: { matchLabels: labels } });

    const blocked = await drainNode(config, 'w-1');
    expect(blocked).toEqual({
      evicted: [],
      blocked: [{ pod: 'default/web-1', reason: "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web needs 2 healthy pods and has 2 currently" }],
      terminating: [],
      remaining: 1,
    });
    expect(podsLeft()).toContain('default/web-1');

    await core.patchNamespacedPodStatus(
      { name: 'web-3', namespace: 'default', body: { status: { conditions: [{ type: 'Ready', status: 'True' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const allowed = await drainNode(config, 'w-1');
    expect(allowed).toMatchObject({ evicted: ['default/web-1'], blocked: [] });
    expect(await drainNode(config, 'w-1')).toMatchObject({ remaining: 0 });
    expect(podsLeft()).toEqual(['default/web-2', 'default/web-3']);
  });

  it('waits for a terminating pod without evicting it again', async () => {
    await runPod('finishing', 'w-1', { finalizers: ['example.com/flush'] });
    await core.deleteNamespacedPod({ name: 'finishing', namespace: 'default' });
    cluster.clearRequestLog();

    expect(await drainNode(config, 'w-1')).toEqual({ evicted: [], blocked: [], terminating: ['default/finishing'], remaining: 1 });
    expect(cluster.requestLog.filter((request) => request.subresource === 'eviction')).toEqual([]);

    await core.patchNamespacedPod(
      { name: 'finishing', namespace: 'default', body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(await drainNode(config, 'w-1')).toMatchObject({ terminating: [], remaining: 0 });
  });

  it('takes a pod that vanished before its eviction as gone', async () => {
    await runPod('web', 'w-1');
    cluster.faults.failRequests({ match: (request) => request.subresource === 'eviction', code: 404, message: 'pods "web" not found' });

    expect(await drainNode(config, 'w-1')).toEqual({ evicted: [], blocked: [], terminating: [], remaining: 0 });
  });

  it('throws when an eviction fails for any other reason', async () => {
    await runPod('web', 'w-1');
    cluster.faults.failRequests({ match: (request) => request.subresource === 'eviction', code: 500 });

    await expect(drainNode(config, 'w-1')).rejects.toMatchObject({ code: 500 });
  });

  it('deletes the Node object, and answers false once it is gone', async () => {
    expect(await deleteNode(config, 'w-1')).toBe(true);

    expect(cluster.objects({ kind: 'Node' }).map((node) => (node.metadata as { name: string }).name)).toEqual(['w-2']);
    expect(await deleteNode(config, 'w-1')).toBe(false);
  });
});
