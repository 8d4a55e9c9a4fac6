import { ApiException, ApisApi, CoreV1Api, KubeConfig, PatchStrategy, V1ConfigMap, V1DaemonSet, V1Deployment, V1Secret, VersionApi } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { machineOsReleaseOf } from '#core';
import { CONTROL_PLANE_LABEL, POOL_LABEL, type SandboxCluster, startSandboxCluster } from './index.ts';
import { clientsFor, failureOf, manifest, runCniAgent, statusOf, waitUntil } from './testing.ts';

describe('sandbox cluster', () => {
  let cluster: SandboxCluster;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'nodes', kubernetesVersion: '1.33' });
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('answers /version and discovery the way client-node reads them', async () => {
    const { config } = clientsFor(cluster);
    const version = await config.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe('v1.33.0');
    expect(version.minor).toBe('33');

    const groups = await config.makeApiClient(ApisApi).getAPIVersions();
    expect(groups.groups.map((group) => group.name)).toEqual(
      expect.arrayContaining(['apps', 'rbac.authorization.k8s.io', 'apiextensions.k8s.io', 'admissionregistration.k8s.io', 'policy', 'batch']),
    );

    const health = await fetch(`${cluster.url}/readyz`);
    expect(await health.text()).toBe('ok');
  });

  it('hands out a kubeconfig that client-node loads as is', async () => {
    const config = new KubeConfig();
    config.loadFromString(cluster.kubeconfig());
    const namespaces = await config.makeApiClient(CoreV1Api).listNamespace();
    expect(namespaces.items.map((namespace) => namespace.metadata?.name)).toEqual(['default', 'kube-node-lease', 'kube-public', 'kube-system']);
  });

  it('lists registered nodes with their role, pool, conditions and kubelet version', async () => {
    cluster.registerNode({ name: 'cp-1', role: 'control-plane', pool: 'control-plane' });
    cluster.registerNode({ name: 'worker-1', role: 'worker', pool: 'general', labels: { team: 'a' } });

    const nodes = await clientsFor(cluster).core.listNode();

    expect(nodes.items.map((node) => node.metadata?.name)).toEqual(['cp-1', 'worker-1']);
    const [controlPlane, worker] = nodes.items;
    expect(controlPlane?.metadata?.labels?.[CONTROL_PLANE_LABEL]).toBe('');
    expect(controlPlane?.spec?.taints).toEqual([{ key: CONTROL_PLANE_LABEL, effect: 'NoSchedule' }]);
    expect(worker?.metadata?.labels).toMatchObject({ [POOL_LABEL]: 'general', team: 'a', 'kubernetes.io/hostname': 'worker-1' });
    expect(worker?.metadata?.labels?.[CONTROL_PLANE_LABEL]).toBeUndefined();
    expect(worker?.status?.nodeInfo?.kubeletVersion).toBe('v1.33.0');
    // What a machine Kiln builds today runs: the supported Debian release and the containerd it ships.
    const os = machineOsReleaseOf(new Date());
    expect(worker?.status?.nodeInfo).toMatchObject({ osImage: os?.prettyName, containerRuntimeVersion: `containerd://${os?.containerd.version ?? ''}` });
    const conditions = worker?.status?.conditions ?? [];
    expect(conditions.map((condition) => condition.type).sort()).toEqual(['DiskPressure', 'MemoryPressure', 'NetworkUnavailable', 'PIDPressure', 'Ready']);
    const ready = conditions.find((condition) => condition.type === 'Ready');
    expect(ready?.status).toBe('True');
    expect(ready?.lastHeartbeatTime).toBeInstanceOf(Date);
    expect(ready?.lastTransitionTime).toBeInstanceOf(Date);
  });

  it('flips Ready with setNodeReady and taints the node like the node lifecycle controller', async () => {
    let now = new Date('2025-06-01T10:00:00Z');
    await cluster.close();
    cluster = await startSandboxCluster({ name: 'clock', now: () => now });
    const { core } = clientsFor(cluster);
    cluster.registerNode({ name: 'worker-1', role: 'worker' });

    now = new Date('2025-06-01T10:05:00Z');
    cluster.setNodeReady('worker-1', 'False');
    const notReady = await core.readNode({ name: 'worker-1' });
    const readyCondition = notReady.status?.conditions?.find((condition) => condition.type === 'Ready');
    expect(readyCondition?.status).toBe('False');
    expect(readyCondition?.lastTransitionTime?.toISOString()).toBe('2025-06-01T10:05:00.000Z');
    expect(notReady.spec?.taints?.map((taint) => `${taint.key}:${taint.effect}`)).toEqual(['node.kubernetes.io/not-ready:NoSchedule', 'node.kubernetes.io/not-ready:NoExecute']);

    now = new Date('2025-06-01T10:07:00Z');
    cluster.setNodeReady('worker-1', 'Unknown');
    const unknown = await core.readNode({ name: 'worker-1' });
    expect(unknown.status?.conditions?.find((condition) => condition.type === 'MemoryPressure')?.status).toBe('Unknown');
    expect(unknown.spec?.taints?.map((taint) => taint.key)).toEqual(['node.kubernetes.io/unreachable', 'node.kubernetes.io/unreachable']);

    cluster.setNodeReady('worker-1', 'True');
    const back = await core.readNode({ name: 'worker-1' });
    expect(back.status?.conditions?.find((condition) => condition.type === 'Ready')?.status).toBe('True');
    expect(back.spec?.taints).toBeUndefined();

    expect(cluster.removeNode('worker-1')).toBe(true);
    expect(statusOf(await failureOf(core.readNode({ name: 'worker-1' })))).toMatchObject({ reason: 'NotFound', code: 404 });
  });

  it('keeps DaemonSet and Deployment status in step with the nodes', async () => {
    const { objects } = clientsFor(cluster);
    const template = { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'agent', image: 'agent:1' }] } };
    const daemonSetManifest = manifest(V1DaemonSet, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent', namespace: 'kube-system' },
      spec: { selector: { matchLabels: { app: 'agent' } }, template },
    });
    const deploymentManifest = manifest(V1Deployment, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api', namespace: 'default' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'agent' } }, template },
    });
    await objects.patch(daemonSetManifest, undefined, undefined, 'kiln', true, PatchStrategy.ServerSideApply);
    await objects.patch(deploymentManifest, undefined, undefined, 'kiln', true, PatchStrategy.ServerSideApply);
    const daemonSet = async (): Promise<V1DaemonSet> =>
      objects.read<V1DaemonSet>({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent', namespace: 'kube-system' } });
    const deployment = async (): Promise<V1Deployment> =>
      objects.read<V1Deployment>({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'api', namespace: 'default' } });

    expect((await deployment()).status?.conditions?.find((condition) => condition.type === 'Available')?.status).toBe('False');

    cluster.registerNode({ name: 'cp-1', role: 'control-plane' });
    cluster.registerNode({ name: 'worker-1', role: 'worker' });
    cluster.registerNode({ name: 'worker-2', role: 'worker' });
    // The control-plane taint keeps an intolerant daemon off cp-1.
    expect((await daemonSet()).status).toMatchObject({ desiredNumberScheduled: 2, numberReady: 2, numberAvailable: 2 });
    expect((await deployment()).status).toMatchObject({ readyReplicas: 2, availableReplicas: 2 });

    // A NotReady node carries not-ready:NoSchedule, which the DaemonSet controller does not tolerate for its pods.
    cluster.setNodeReady('worker-2', 'False');
    expect((await daemonSet()).status).toMatchObject({ desiredNumberScheduled: 1, numberReady: 1 });

    cluster.removeNode('worker-2');
    expect((await daemonSet()).status).toMatchObject({ desiredNumberScheduled: 1, numberReady: 1 });
  });

  it('starts only host-network pods on a node without a CNI, and turns it Ready once a CNI agent runs there', async () => {
    const { objects } = clientsFor(cluster);
    const pod = (hostNetwork: boolean) => ({
      metadata: { labels: { app: hostNetwork ? 'host' : 'pods' } },
      spec: { hostNetwork, tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists' }], containers: [{ name: 'app', image: 'app:1' }] },
    });
    for (const [name, hostNetwork] of [['host', true], ['pods', false]] as const) {
      await objects.patch(
        manifest(V1Deployment, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'default' }, spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: pod(hostNetwork) } }),
        undefined,
        undefined,
        'kiln',
        true,
        PatchStrategy.ServerSideApply,
      );
    }
    const available = async (name: string) =>
      (await objects.read<V1Deployment>({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'default' } })).status?.conditions?.find((c) => c.type === 'Available')?.status;
    cluster.registerNode({ name: 'fresh', role: 'worker', cni: false });
    const ready = () => cluster.objects({ kind: 'Node', name: 'fresh' })[0]?.status as { conditions: { type: string; status: string }[] };
    expect(ready().conditions.find((c) => c.type === 'Ready')?.status).toBe('False');
    expect(await available('host')).toBe('True');
    expect(await available('pods')).toBe('False');

    runCniAgent(cluster);
    await waitUntil('the node to be Ready', () => ready().conditions.find((c) => c.type === 'Ready')?.status === 'True');
    expect(await available('pods')).toBe('True');
  });

  it('refuses every request while the API is down and serves again afterwards', async () => {
    const { core } = clientsFor(cluster);
    await core.listNamespace();

    cluster.faults.apiDown = true;
    const error = await failureOf(core.listNamespace());
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ApiException);
    expect(cluster.requestLog.at(-1)).toMatchObject({ verb: 'list', resource: 'namespaces', status: 0, fault: 'apiDown' });

    cluster.faults.apiDown = false;
    const namespaces = await core.listNamespace();
    expect(namespaces.items.map((namespace) => namespace.metadata?.name)).toEqual(['default', 'kube-node-lease', 'kube-public', 'kube-system']);
  });

  it('fails matching requests with an injected Status once, then serves them', async () => {
    const { core } = clientsFor(cluster);
    const fault = cluster.faults.failRequests({ match: (request) => request.verb === 'create' && request.resource === 'configmaps', code: 503 });
    const body = manifest(V1ConfigMap, { metadata: { name: 'settings' }, data: { a: '1' } });

    const status = statusOf(await failureOf(core.createNamespacedConfigMap({ namespace: 'default', body })));
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'ServiceUnavailable', code: 503 });
    expect(fault.hits).toBe(1);

    const created = await core.createNamespacedConfigMap({ namespace: 'default', body });
    expect(created.data).toEqual({ a: '1' });
    expect(cluster.objects({ kind: 'ConfigMap', namespace: 'default' })).toMatchObject([{ metadata: { name: 'settings' }, data: { a: '1' } }]);
  });

  it('fails a replace of a Secret with a 500 Status and stores nothing, then serves the retry', async () => {
    const { core } = clientsFor(cluster);
    const secret = await core.createNamespacedSecret({ namespace: 'default', body: manifest(V1Secret, { metadata: { name: 'db' }, stringData: { password: 'old' } }) });
    const fault = cluster.faults.failRequests({ match: (request) => request.method === 'PUT' && request.resource === 'secrets' });
    const changed = manifest(V1Secret, { metadata: { name: 'db', namespace: 'default' }, stringData: { password: 'new' } });

    const status = statusOf(await failureOf(core.replaceNamespacedSecret({ namespace: 'default', name: 'db', body: changed })));
    expect(status).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500 });
    expect(fault.hits).toBe(1);
    expect(cluster.requestLog.at(-1)).toMatchObject({ verb: 'update', resource: 'secrets', status: 500, mutated: false, fault: 'injected' });
    const unchanged = await core.readNamespacedSecret({ namespace: 'default', name: 'db' });
    expect(unchanged.metadata?.resourceVersion).toBe(secret.metadata?.resourceVersion);

    const replaced = await core.replaceNamespacedSecret({ namespace: 'default', name: 'db', body: changed });
    expect(Buffer.from(replaced.data?.password ?? '', 'base64').toString()).toBe('new');
    expect(fault.hits).toBe(1);
  });

  it('expires a continue token once with 410 Expired, leaving first pages and other resources alone', async () => {
    const { core } = clientsFor(cluster);
    for (const name of ['a', 'b', 'c']) {
      await core.createNamespacedSecret({ namespace: 'default', body: manifest(V1Secret, { metadata: { name }, stringData: { value: name } }) });
      await core.createNamespacedConfigMap({ namespace: 'default', body: manifest(V1ConfigMap, { metadata: { name }, data: { value: name } }) });
    }
    const fault = cluster.faults.expireContinueTokens({ resource: 'secrets' });

    const configMaps = await core.listNamespacedConfigMap({ namespace: 'default', limit: 2 });
    const moreConfigMaps = await core.listNamespacedConfigMap({ namespace: 'default', limit: 2, _continue: configMaps.metadata?._continue });
    expect(moreConfigMaps.items.map((item) => item.metadata?.name)).toEqual(['c']);
    const first = await core.listSecretForAllNamespaces({ limit: 2 });
    expect(first.items.map((item) => item.metadata?.name)).toEqual(['a', 'b']);
    const token = first.metadata?._continue;
    expect(token).toBeDefined();

    const expired = await failureOf(core.listSecretForAllNamespaces({ limit: 2, _continue: token }));
    expect(expired).toBeInstanceOf(ApiException);
    expect(statusOf(expired)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message: expect.stringContaining('continue parameter is too old') });
    expect(fault.hits).toBe(1);

    const rest = await core.listSecretForAllNamespaces({ limit: 2, _continue: token });
    expect(rest.items.map((item) => item.metadata?.name)).toEqual(['c']);
  });
});
