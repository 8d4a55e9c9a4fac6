import { PatchStrategy, V1Deployment } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SandboxCluster, startSandboxCluster } from './index.ts';
import type { JsonObject } from './json.ts';
import { clientsFor, failureOf, manifest, plain, statusOf } from './testing.ts';

function deployment(overrides: { replicas?: number; labels?: Record<string, string>; env?: JsonObject[] } = {}): V1Deployment {
  return manifest(V1Deployment, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', labels: overrides.labels ?? { app: 'web' } },
    spec: {
      replicas: overrides.replicas ?? 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'web', image: 'nginx:1.27', env: overrides.env ?? [] }] },
      },
    },
  });
}

function deploymentPatch(fields: JsonObject): V1Deployment {
  return manifest(V1Deployment, { apiVersion: 'apps/v1', kind: 'Deployment', ...fields });
}

describe('server-side apply', () => {
  let cluster: SandboxCluster;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'apply' });
  });

  afterEach(async () => {
    await cluster.close();
  });

  async function apply(object: V1Deployment, manager = 'kiln', force = true): Promise<V1Deployment> {
    return clientsFor(cluster).objects.patch(object, undefined, undefined, manager, force, PatchStrategy.ServerSideApply);
  }

  async function mergePatch(object: V1Deployment, manager: string): Promise<V1Deployment> {
    return clientsFor(cluster).objects.patch(object, undefined, undefined, manager, undefined, PatchStrategy.MergePatch);
  }

  it('creates on first apply and changes nothing on an identical second apply', async () => {
    const first = await apply(deployment());
    const second = await apply(deployment());

    expect(first.metadata?.resourceVersion).toBeDefined();
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    expect(second.metadata?.generation).toBe(1);
    const applies = cluster.requestLog.filter((entry) => entry.verb === 'apply');
    expect(applies.map((entry) => [entry.status, entry.mutated])).toEqual([
      [201, true],
      [200, false],
    ]);
    const [stored] = cluster.objects({ kind: 'Deployment', name: 'web' });
    expect(stored).toMatchObject({ metadata: { managedFields: [{ manager: 'kiln', operation: 'Apply', fieldsType: 'FieldsV1' }] } });
    expect(cluster.objects({ kind: 'Deployment' })).toHaveLength(1);
  });

  it('puts back a field another manager changed when the re-apply is forced, and reports the conflict when not', async () => {
    await apply(deployment({ replicas: 2 }));
    await mergePatch(deploymentPatch({ metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 5 } }), 'autoscaler');

    const conflict = statusOf(await failureOf(apply(deployment({ replicas: 2 }), 'kiln', false)));
    expect(conflict).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Conflict', code: 409 });
    expect(conflict.details).toMatchObject({ causes: [{ reason: 'FieldManagerConflict', field: '.spec.replicas', message: 'conflict with "autoscaler" using apps/v1' }] });

    const restored = await apply(deployment({ replicas: 2 }));
    expect(restored.spec?.replicas).toBe(2);
    expect(restored.metadata?.generation).toBe(3);
  });

  it('removes a field the manager stops applying, but keeps fields other managers own', async () => {
    await apply(
      deployment({
        labels: { app: 'web', tier: 'front' },
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      }),
    );
    await mergePatch(deploymentPatch({ metadata: { name: 'web', namespace: 'default', labels: { team: 'ops' } } }), 'ops-tool');

    const after = await apply(deployment({ labels: { app: 'web' }, env: [{ name: 'A', value: '1' }] }));

    expect(after.metadata?.labels).toEqual({ app: 'web', team: 'ops' });
    expect(plain(after.spec)).toMatchObject({ template: { spec: { containers: [{ name: 'web', env: [{ name: 'A', value: '1' }] }] } } });
    expect(after.spec?.template.spec?.containers[0]?.env).toHaveLength(1);
  });

  it('bumps generation for spec changes only', async () => {
    await apply(deployment({ replicas: 2 }));
    const relabelled = await apply(deployment({ replicas: 2, labels: { app: 'web', release: 'x' } }));
    expect(relabelled.metadata?.generation).toBe(1);
    const scaled = await apply(deployment({ replicas: 3, labels: { app: 'web', release: 'x' } }));
    expect(scaled.metadata?.generation).toBe(2);
  });

  it('accepts a YAML body and requires a field manager', async () => {
    const yaml = ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: settings', '  namespace: default', 'data:', '  mode: strict', ''].join('\n');
    const url = `${cluster.url}/api/v1/namespaces/default/configmaps/settings`;
    const headers = { 'Content-Type': 'application/apply-patch+yaml' };

    const missingManager = await fetch(url, { method: 'PATCH', headers, body: yaml });
    expect(missingManager.status).toBe(422);
    expect(await missingManager.json()).toMatchObject({ kind: 'Status', reason: 'Invalid' });

    const created = await fetch(`${url}?fieldManager=kiln`, { method: 'PATCH', headers, body: yaml });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ data: { mode: 'strict' }, metadata: { managedFields: [{ manager: 'kiln', operation: 'Apply' }] } });
  });

  it('keeps status out of the applied fields and reports workload status at once', async () => {
    cluster.registerNode({ name: 'worker-1', role: 'worker', pool: 'general' });
    const applied = await apply(deployment({ replicas: 3 }));

    expect(applied.status).toMatchObject({ replicas: 3, readyReplicas: 3, availableReplicas: 3, observedGeneration: 1 });
    expect(applied.status?.conditions?.find((condition) => condition.type === 'Available')?.status).toBe('True');
  });
});
