import {
  type KubernetesObject,
  PatchStrategy,
  V1ConfigMap,
  V1CustomResourceDefinition,
  V1Namespace,
  V1Pod,
  V1Secret,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SandboxCluster, startSandboxCluster } from './index.ts';
import type { JsonObject } from './json.ts';
import { Manifest, clientsFor, failureOf, manifest, plain, statusOf, waitUntil } from './testing.ts';

const widgetCrd = manifest(V1CustomResourceDefinition, {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.kiln.dev' },
  spec: {
    group: 'example.kiln.dev',
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
});

const configMap = (data: JsonObject): V1ConfigMap => manifest(V1ConfigMap, data);

describe('resource CRUD', () => {
  let cluster: SandboxCluster;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'crud' });
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('refuses a namespaced object in a namespace that does not exist', async () => {
    const { core } = clientsFor(cluster);
    const status = statusOf(await failureOf(core.createNamespacedConfigMap({ namespace: 'missing', body: configMap({ metadata: { name: 'settings' } }) })));

    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'namespaces "missing" not found', details: { name: 'missing', kind: 'namespaces' } });
    expect(cluster.objects({ kind: 'ConfigMap' })).toEqual([]);
  });

  it('pages a list with limit and continue without gaps or repeats', async () => {
    const { core } = clientsFor(cluster);
    await core.createNamespace({ body: manifest(V1Namespace, { metadata: { name: 'paging' } }) });
    const names = Array.from({ length: 23 }, (_, index) => `item-${String(index).padStart(2, '0')}`);
    for (const name of [...names].reverse()) {
      const parity = Number(name.slice(-2)) % 2 === 0 ? 'even' : 'odd';
      await core.createNamespacedConfigMap({ namespace: 'paging', body: configMap({ metadata: { name, labels: { parity } } }) });
    }

    const seen: string[] = [];
    const remaining: (number | undefined)[] = [];
    let token: string | undefined;
    do {
      const page = await core.listNamespacedConfigMap({ namespace: 'paging', limit: 5, _continue: token });
      expect(page.items.length).toBeLessThanOrEqual(5);
      seen.push(...page.items.map((item) => item.metadata?.name ?? ''));
      remaining.push(page.metadata?.remainingItemCount);
      token = page.metadata?._continue;
    } while (token !== undefined);

    expect(seen).toEqual(names);
    expect(remaining).toEqual([18, 13, 8, 3, undefined]);
    const even = await core.listNamespacedConfigMap({ namespace: 'paging', labelSelector: 'parity=even' });
    expect(even.items).toHaveLength(12);
    const notEven = await core.listNamespacedConfigMap({ namespace: 'paging', labelSelector: 'parity!=even,parity' });
    expect(notEven.items).toHaveLength(11);
  });

  it('answers AlreadyExists, stale-resourceVersion Conflict and Invalid with Status objects', async () => {
    const { core } = clientsFor(cluster);
    const created = await core.createNamespacedConfigMap({ namespace: 'default', body: configMap({ metadata: { name: 'settings' }, data: { a: '1' } }) });
    const staleVersion = created.metadata?.resourceVersion ?? '';

    const duplicate = statusOf(await failureOf(core.createNamespacedConfigMap({ namespace: 'default', body: configMap({ metadata: { name: 'settings' } }) })));
    expect(duplicate).toMatchObject({ reason: 'AlreadyExists', code: 409, details: { name: 'settings', kind: 'configmaps' } });

    created.data = { a: '2' };
    const updated = await core.replaceNamespacedConfigMap({ name: 'settings', namespace: 'default', body: created });
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(Number(staleVersion));
    const stale = statusOf(
      await failureOf(
        core.replaceNamespacedConfigMap({ name: 'settings', namespace: 'default', body: configMap({ metadata: { name: 'settings', resourceVersion: staleVersion }, data: { a: '3' } }) }),
      ),
    );
    expect(stale).toMatchObject({ reason: 'Conflict', code: 409 });

    const badName = statusOf(await failureOf(core.createNamespacedConfigMap({ namespace: 'default', body: configMap({ metadata: { name: 'Not_Valid' } }) })));
    expect(badName).toMatchObject({ reason: 'Invalid', code: 422, details: { causes: [{ field: 'metadata.name' }] } });
  });

  it('patches with JSON patch, merge patch and strategic merge patch', async () => {
    const { core } = clientsFor(cluster);
    await core.createNamespacedConfigMap({ namespace: 'default', body: configMap({ metadata: { name: 'settings', labels: { a: '1' } }, data: { mode: 'lax' } }) });

    const jsonPatched = await core.patchNamespacedConfigMap({ name: 'settings', namespace: 'default', body: [{ op: 'replace', path: '/data/mode', value: 'strict' }] });
    expect(jsonPatched.data).toEqual({ mode: 'strict' });

    const merged = await core.patchNamespacedConfigMap(
      { name: 'settings', namespace: 'default', body: { metadata: { labels: { a: null, b: '2' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(merged.metadata?.labels).toEqual({ b: '2' });

    const failedTest = statusOf(
      await failureOf(core.patchNamespacedConfigMap({ name: 'settings', namespace: 'default', body: [{ op: 'test', path: '/data/mode', value: 'lax' }] })),
    );
    expect(failedTest).toMatchObject({ code: 422 });

    const containers = [
      { name: 'a', image: 'a:1' },
      { name: 'b', image: 'b:1' },
    ];
    await core.createNamespacedPod({ namespace: 'default', body: manifest(V1Pod, { metadata: { name: 'p' }, spec: { containers } }) });
    const pod = await core.patchNamespacedPod(
      { name: 'p', namespace: 'default', body: { spec: { containers: [{ name: 'b', image: 'b:2' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(pod.spec?.containers.map((container) => container.image)).toEqual(['a:1', 'b:2']);
  });

  it('serves a custom resource once its CRD is established, and withdraws it with the CRD', async () => {
    const { objects } = clientsFor(cluster);
    const crd = await objects.patch(widgetCrd, undefined, undefined, 'kiln', true, PatchStrategy.ServerSideApply);
    expect(crd.status?.conditions?.find((condition) => condition.type === 'Established')?.status).toBe('True');

    const discovery = await fetch(`${cluster.url}/apis/example.kiln.dev/v1`);
    expect(await discovery.json()).toMatchObject({ kind: 'APIResourceList', resources: [{ name: 'widgets', singularName: 'widget', namespaced: true, kind: 'Widget' }, { name: 'widgets/status' }] });

    const widget = (size: number): Manifest => manifest(Manifest, { apiVersion: 'example.kiln.dev/v1', kind: 'Widget', metadata: { name: 'w1', namespace: 'default' }, spec: { size } });
    await objects.create(widget(3));
    await objects.patch(widget(4), undefined, undefined, 'kiln', true, PatchStrategy.ServerSideApply);
    const listed = await objects.list('example.kiln.dev/v1', 'Widget', 'default');
    expect(plain(listed)).toMatchObject({ kind: 'WidgetList', items: [{ metadata: { name: 'w1' }, spec: { size: 4 } }] });

    const strategic = statusOf(await failureOf(objects.patch(widget(5))));
    expect(strategic).toMatchObject({ reason: 'UnsupportedMediaType', code: 415 });

    await objects.delete(crd);
    const gone = await fetch(`${cluster.url}/apis/example.kiln.dev/v1/namespaces/default/widgets/w1`);
    expect(gone.status).toBe(404);
    expect(cluster.objects({ kind: 'Widget' })).toEqual([]);
  });

  it('deletes a namespace with its contents but refuses to delete default', async () => {
    const { core } = clientsFor(cluster);
    await core.createNamespace({ body: manifest(V1Namespace, { metadata: { name: 'team-a' } }) });
    await core.createNamespacedSecret({ namespace: 'team-a', body: manifest(V1Secret, { metadata: { name: 'token' }, stringData: { token: 'abc' } }) });
    expect(cluster.objects({ kind: 'Secret', namespace: 'team-a' })[0]).toMatchObject({ data: { token: 'YWJj' }, type: 'Opaque' });

    await core.deleteNamespace({ name: 'team-a' });
    expect(cluster.objects({ namespace: 'team-a' })).toEqual([]);
    expect(cluster.objects({ kind: 'Namespace', name: 'team-a' })).toEqual([]);

    const refused = statusOf(await failureOf(core.deleteNamespace({ name: 'default' })));
    expect(refused).toMatchObject({ reason: 'Forbidden', code: 403 });
  });

  it('holds an object with finalizers until they are removed', async () => {
    const { core } = clientsFor(cluster);
    await core.createNamespacedConfigMap({ namespace: 'default', body: configMap({ metadata: { name: 'held', finalizers: ['kiln.dev/cleanup'] } }) });

    await core.deleteNamespacedConfigMap({ name: 'held', namespace: 'default' });
    const marked = await core.readNamespacedConfigMap({ name: 'held', namespace: 'default' });
    expect(marked.metadata?.deletionTimestamp).toBeInstanceOf(Date);

    await core.patchNamespacedConfigMap({ name: 'held', namespace: 'default', body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    expect(cluster.objects({ kind: 'ConfigMap', name: 'held' })).toEqual([]);
  });

  it('streams watch events that client-node Watch understands', async () => {
    const { core, config } = clientsFor(cluster);
    const events: string[] = [];
    const ended: unknown[] = [];
    const list = await core.listNamespacedConfigMap({ namespace: 'default' });
    const controller = await new Watch(config).watch(
      '/api/v1/namespaces/default/configmaps',
      { resourceVersion: list.metadata?.resourceVersion, labelSelector: 'watched=yes' },
      (phase, object: KubernetesObject) => events.push(`${phase} ${object.metadata?.name ?? ''}`),
      (error: unknown) => ended.push(error),
    );

    await core.createNamespacedConfigMap({ namespace: 'default', body: configMap({ metadata: { name: 'ignored' } }) });
    await core.createNamespacedConfigMap({ namespace: 'default', body: configMap({ metadata: { name: 'seen', labels: { watched: 'yes' } } }) });
    await core.patchNamespacedConfigMap({ name: 'seen', namespace: 'default', body: [{ op: 'add', path: '/data', value: { a: '1' } }] });
    await core.deleteNamespacedConfigMap({ name: 'seen', namespace: 'default' });
    await waitUntil('the watch to deliver three events', () => events.length >= 3);

    expect(events).toEqual(['ADDED seen', 'MODIFIED seen', 'DELETED seen']);
    controller.abort();
  });
});
