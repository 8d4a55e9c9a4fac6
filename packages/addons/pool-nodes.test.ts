import { KubeConfig, V1Node } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodePoolSpec } from '#core';
import { type SandboxCluster, startSandboxCluster } from '#sandbox';
import { poolNodePatch, reconcilePoolNodes } from './pool-nodes.ts';

const node = (labels: Record<string, string>, taints: { key: string; value?: string; effect: string }[], annotations: Record<string, string> = {}) =>
  Object.assign(new V1Node(), { metadata: { name: 'n', resourceVersion: '7', labels: { 'kiln.dev/pool': 'gpu', ...labels }, annotations }, spec: { taints } });
const NOT_READY = { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' };

describe("a pool node's labels and taints", () => {
  const pool = NodePoolSpec.parse({ name: 'gpu', size: 1, labels: { accelerator: 'nvidia', 'node-role.kubernetes.io/gpu': '' }, taints: [{ key: 'gpu', value: 'yes', effect: 'NoSchedule' }] });

  it('adds what the pool has, keeps what others set, and remembers what it set', () => {
    expect(poolNodePatch(node({ accelerator: 'nvidia', team: 'x' }, [NOT_READY]), pool)).toEqual({
      metadata: {
        resourceVersion: '7',
        labels: { 'node-role.kubernetes.io/gpu': '' },
        annotations: { 'kiln.dev/pool-labels': 'accelerator,node-role.kubernetes.io/gpu', 'kiln.dev/pool-taints': 'gpu:NoSchedule' },
      },
      spec: { taints: [NOT_READY, { key: 'gpu', value: 'yes', effect: 'NoSchedule' }] },
    });
  });

  it('changes nothing on a node that has them', () => {
    const done = node({ accelerator: 'nvidia', 'node-role.kubernetes.io/gpu': '' }, [{ key: 'gpu', value: 'yes', effect: 'NoSchedule' }], {
      'kiln.dev/pool-labels': 'accelerator,node-role.kubernetes.io/gpu',
      'kiln.dev/pool-taints': 'gpu:NoSchedule',
    });
    expect(poolNodePatch(done, pool)).toBeUndefined();
  });

  it('takes away only what it set before', () => {
    const before = node({ accelerator: 'nvidia', team: 'x' }, [NOT_READY, { key: 'gpu', value: 'yes', effect: 'NoSchedule' }, { key: 'other', effect: 'NoExecute' }], {
      'kiln.dev/pool-labels': 'accelerator',
      'kiln.dev/pool-taints': 'gpu:NoSchedule',
    });
    const plain = NodePoolSpec.parse({ name: 'gpu', size: 1 });
    expect(poolNodePatch(before, plain)).toEqual({
      metadata: { resourceVersion: '7', labels: { accelerator: null }, annotations: { 'kiln.dev/pool-labels': '', 'kiln.dev/pool-taints': '' } },
      spec: { taints: [NOT_READY, { key: 'other', effect: 'NoExecute' }] },
    });
  });
});

describe('reconciling the nodes of the pools', () => {
  let cluster: SandboxCluster;
  beforeAll(async () => {
    cluster = await startSandboxCluster({ name: 'pool-nodes' });
    cluster.registerNode({ name: 'gpu-0', role: 'worker', pool: 'gpu' });
    cluster.registerNode({ name: 'general-0', role: 'worker', pool: 'general', labels: { team: 'a' } });
    cluster.registerNode({ name: 'cp-0', role: 'control-plane' });
  });
  afterAll(async () => {
    await cluster.close();
  });

  it("gives each pool's nodes the pool's labels and taints, once", async () => {
    const config = new KubeConfig();
    config.loadFromString(cluster.kubeconfig());
    const pools = [
      NodePoolSpec.parse({ name: 'gpu', size: 1, labels: { 'node-role.kubernetes.io/gpu': '' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }] }),
      NodePoolSpec.parse({ name: 'general', size: 1, labels: { team: 'a' } }),
    ];
    expect((await reconcilePoolNodes(config, pools, 'addons')).sort()).toEqual(['general-0', 'gpu-0']);
    const [gpu] = cluster.objects({ kind: 'Node', name: 'gpu-0' }) as { metadata: { labels: Record<string, string> }; spec: { taints: unknown[] } }[];
    expect(gpu?.metadata.labels).toMatchObject({ 'node-role.kubernetes.io/gpu': '', 'kiln.dev/pool': 'gpu' });
    expect(gpu?.spec.taints).toContainEqual({ key: 'gpu', effect: 'NoSchedule' });
    // The second time there is nothing to change.
    cluster.clearRequestLog();
    expect(await reconcilePoolNodes(config, pools, 'addons')).toEqual([]);
    expect(cluster.mutatingRequests()).toEqual([]);
  });
});
