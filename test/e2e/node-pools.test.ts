import { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { UsagePeriod } from '#core';
import { pollNodeHealth } from '#health';
import { authenticate, listTenantEvents, reportUsage } from '#services';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

// The tests look at node health themselves, after each change.
const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0 });
const { newTenant, waitForPhase, sandboxOf } = session;
const api: typeof session.api = (...args) => session.api(...args);

interface NodeList {
  items: { name?: string; instanceId?: string; role: string; pool?: string; health: string }[];
}

interface NodeObject {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { taints?: { key: string; value?: string; effect: string }[]; unschedulable?: boolean };
}

type Pool = Record<string, unknown> & { name: string; size: number };

describe('node pools of a running cluster', () => {
  it('scales a pool 2 → 4 → 1, draining the nodes that leave, and adds and removes a pool with labels and a taint', async () => {
    const token = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('pools') });
    const id = created.body.id;
    await waitForPhase(token, id, 'Ready');
    const { sandbox, core } = sandboxOf(id);

    /** PATCHes the pools and waits for the update; returns its operation. */
    const change = async (nodePools: Pool[]): Promise<OperationBody> => {
      const patched = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token, body: { nodePools } });
      expect(patched.status).toBe(202);
      await waitForPhase(token, id, 'Ready');
      const operation = await api<OperationBody>('GET', `/v1/operations/${patched.body.status.activeOperationId ?? ''}`, { token });
      expect(operation.body.state).toBe('succeeded');
      return operation.body;
    };
    /** What the poller sees next: the Healthy nodes of each pool, as `GET /v1/clusters/{id}/nodes` lists them. */
    const healthyByPool = async (): Promise<Record<string, number>> => {
      await pollNodeHealth(session.stack.health);
      const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token });
      const counts: Record<string, number> = {};
      for (const node of nodes.body.items.filter((item) => item.role === 'worker')) {
        expect(node).toMatchObject({ health: 'Healthy' });
        counts[node.pool ?? ''] = (counts[node.pool ?? ''] ?? 0) + 1;
      }
      return counts;
    };
    const nodeObjects = () => sandbox.objects({ kind: 'Node' }) as NodeObject[];
    const poolNodes = (pool: string) => nodeObjects().filter((node) => node.metadata?.labels?.['kiln.dev/pool'] === pool);
    const runningMachines = async () => (await session.machinesOf(id)).filter((machine) => machine.state === 'running');

    expect(await healthyByPool()).toEqual({ default: 2 });

    // 2 → 4: two machines join with a fresh token (the provisioning one is for provisioning only).
    const grown = await change([{ name: 'default', size: 4 }]);
    expect(grown.steps.map((step) => step.name)).toEqual(['join-token', 'infrastructure', 'await-nodes', 'addons', 'verify']);
    expect(await healthyByPool()).toEqual({ default: 4 });

    // A pod on every node of the pool, as a workload would run: one the default namespace's restricted Pod Security level admits.
    for (const node of poolNodes('default')) {
      const nodeName = node.metadata?.name ?? '';
      const spec = {
        nodeName,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      };
      await core.createNamespacedPod({ namespace: 'default', body: Object.assign(new V1Pod(), { metadata: { name: `work-${nodeName}` }, spec }) });
    }
    sandbox.clearRequestLog();

    // 4 → 1: three machines leave; each node is cordoned and its pods evicted before its machine goes.
    const shrunk = await change([{ name: 'default', size: 1 }]);
    expect(shrunk.steps.map((step) => step.name)).toEqual(['drain-nodes', 'remove-machines', 'infrastructure', 'addons', 'verify']);
    expect(await healthyByPool()).toEqual({ default: 1 });
    const leaving = (shrunk.steps.find((step) => step.name === 'drain-nodes')?.outputs as { leaving: { nodeName: string; drained: boolean; evicted: number }[] }).leaving;
    expect(leaving).toHaveLength(3);
    const log = sandbox.requestLog;
    const at = (match: (record: (typeof log)[number]) => boolean) => log.findIndex(match);
    for (const machine of leaving) {
      expect(machine).toMatchObject({ drained: true, evicted: 1 });
      const cordoned = at((record) => record.verb === 'patch' && record.resource === 'nodes' && record.name === machine.nodeName);
      const evicted = at((record) => record.subresource === 'eviction' && record.name === `work-${machine.nodeName}` && record.status === 201);
      const deleted = at((record) => record.verb === 'delete' && record.resource === 'nodes' && record.name === machine.nodeName);
      expect(cordoned).toBeGreaterThanOrEqual(0);
      expect(evicted).toBeGreaterThan(cordoned);
      expect(deleted).toBeGreaterThan(evicted);
    }
    // The one that stays kept its pod; the Auto Scaling group runs exactly one machine.
    const [kept] = poolNodes('default');
    expect((await core.listNamespacedPod({ namespace: 'default' })).items.map((pod) => pod.metadata?.name)).toEqual([`work-${kept?.metadata?.name ?? ''}`]);
    const events = await api<{ items: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/clusters/${id}/events`, { token });
    expect(events.body.items.filter((event) => event.type === 'node.removed').map((event) => event.data)).toEqual(
      expect.arrayContaining(leaving.map((machine): unknown => expect.objectContaining({ nodeName: machine.nodeName, reason: 'ScaledIn', drained: true }))),
    );

    // Add a pool with labels (one only Kiln may set: NodeRestriction keeps kubelets off node-role) and a taint.
    const gpu: Pool = { name: 'gpu', size: 2, labels: { accelerator: 'nvidia', 'node-role.kubernetes.io/gpu': '' }, taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] };
    const machinesBefore = (await runningMachines()).map((machine) => machine.instanceId).sort();
    await change([{ name: 'default', size: 1 }, gpu]);
    expect(await healthyByPool()).toEqual({ default: 1, gpu: 2 });
    for (const node of poolNodes('gpu')) {
      expect(node.metadata?.labels).toMatchObject({ accelerator: 'nvidia', 'node-role.kubernetes.io/gpu': '' });
      expect(node.spec?.taints).toContainEqual({ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' });
    }
    // The other pool and the control plane kept their machines.
    expect((await runningMachines()).map((machine) => machine.instanceId).filter((instanceId) => machinesBefore.includes(instanceId)).sort()).toEqual(machinesBefore);

    // Relabel it in place: the running nodes follow, no machine is replaced.
    const withGpu = (await runningMachines()).map((machine) => machine.instanceId).sort();
    await change([{ name: 'default', size: 1 }, { ...gpu, labels: { accelerator: 'amd' }, taints: [] }]);
    for (const node of poolNodes('gpu')) {
      expect(node.metadata?.labels?.accelerator).toBe('amd');
      expect(node.metadata?.labels).not.toHaveProperty('node-role.kubernetes.io/gpu');
      expect(node.spec?.taints ?? []).not.toContainEqual(expect.objectContaining({ key: 'nvidia.com/gpu' }));
    }
    expect((await runningMachines()).map((machine) => machine.instanceId).sort()).toEqual(withGpu);

    // Remove it: its nodes are drained and gone, its Auto Scaling group deleted, the default pool untouched.
    const gpuNodes = poolNodes('gpu').map((node) => node.metadata?.name);
    const removed = await change([{ name: 'default', size: 1 }]);
    const drained = (removed.steps.find((step) => step.name === 'drain-nodes')?.outputs as { leaving: { nodeName: string; reason: string; drained: boolean }[] }).leaving;
    expect(drained.map((machine) => machine.nodeName).sort()).toEqual(gpuNodes.sort());
    for (const machine of drained) expect(machine).toMatchObject({ reason: 'PoolRemoved', drained: true });
    expect(poolNodes('gpu')).toEqual([]);
    expect(await healthyByPool()).toEqual({ default: 1 });
    expect((await runningMachines()).filter((machine) => machine.autoScalingGroup.includes('-pool-gpu'))).toEqual([]);
    expect(poolNodes('default').map((node) => node.metadata?.name)).toEqual([kept?.metadata?.name]);

    // Usage followed the machines the polls saw: every join opened one, every removal closed one.
    const principal = await authenticate(session.stack.services, token);
    const tenantId = principal?.kind === 'tenant' ? principal.tenantId : '';
    const usage = await session.stack.services.store.listMachineUsage(tenantId, id);
    const byGroup = (pool: string | undefined) => usage.filter((record) => record.pool === pool).map((record) => (record.endedAt === undefined ? 'open' : 'closed')).sort();
    expect(byGroup(undefined)).toEqual(['open', 'open', 'open']);
    expect(byGroup('default')).toEqual(['closed', 'closed', 'closed', 'open']);
    expect(byGroup('gpu')).toEqual(['closed', 'closed']);
    expect(new Set(usage.map((record) => record.instanceType))).toEqual(new Set(['m7i.large']));
    // Reported (here two hours early on the sandbox clock), the usage.reported events and GET /v1/usage agree to the second.
    await reportUsage(session.stack.services, new Date(Date.now() + 2 * 3600_000));
    const reported = await listTenantEvents(session.stack.services, tenantId, { types: ['usage.reported'], limit: 100 }, new Date(Date.now() + 60_000));
    const hours = reported.items.map((event) => event.data as UsagePeriod);
    expect(hours.length).toBeGreaterThan(0);
    const from = hours[0]?.from ?? '';
    const to = hours.at(-1)?.to ?? '';
    const billed = await api<{ periods: UsagePeriod[] }>('GET', `/v1/usage?from=${from}&to=${to}`, { token });
    expect(billed.status).toBe(200);
    expect(billed.body.periods.filter((period) => period.nodeSeconds > 0)).toEqual(hours);
    expect(hours.flatMap((hour) => hour.items).every((row) => row.clusterId === id)).toBe(true);
  });
});

describe('a new instance type for a pool', () => {
  it('replaces its machines one at a time, each after its replacement is a Ready node, never below the pool size', async () => {
    const token = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('rolling') });
    const id = created.body.id;
    await waitForPhase(token, id, 'Ready');
    const { sandbox } = sandboxOf(id);
    const poolMachines = async () => (await session.machinesOf(id)).filter((machine) => machine.state === 'running' && machine.autoScalingGroup.includes('-pool-default'));
    const before = await poolMachines();
    expect(before.map((machine) => machine.instanceType)).toEqual(['m7i.large', 'm7i.large']);

    // Watch the pool while it rolls: Ready nodes that take pods (not cordoned).
    const serving = () =>
      (sandbox.objects({ kind: 'Node' }) as (NodeObject & { status?: { conditions?: { type: string; status: string }[] } })[]).filter(
        (node) =>
          node.metadata?.labels?.['kiln.dev/pool'] === 'default' &&
          node.spec?.unschedulable !== true &&
          node.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true,
      ).length;
    let fewest = serving();
    const watch = setInterval(() => {
      fewest = Math.min(fewest, serving());
    }, 20);
    const patched = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token, body: { nodePools: [{ name: 'default', size: 2, instanceType: 'm7i.xlarge' }] } });
    expect(patched.status).toBe(202);
    try {
      await waitForPhase(token, id, 'Ready');
    } finally {
      clearInterval(watch);
    }
    expect(fewest).toBe(2);

    const operation = await api<OperationBody>('GET', `/v1/operations/${patched.body.status.activeOperationId ?? ''}`, { token });
    expect(operation.body.state).toBe('succeeded');
    expect(operation.body.steps.map((step) => step.name)).toEqual(['join-token', 'infrastructure', 'roll-machines', 'addons', 'verify']);
    const rolled = (operation.body.steps.find((step) => step.name === 'roll-machines')?.outputs as { machines: { instanceId: string; state: string; replacement: { instanceId: string } }[] }).machines;
    expect(rolled.map((machine) => machine.instanceId).sort()).toEqual(before.map((machine) => machine.instanceId).sort());
    for (const machine of rolled) expect(machine.state).toBe('replaced');

    const after = await poolMachines();
    expect(after.map((machine) => machine.instanceType)).toEqual(['m7i.xlarge', 'm7i.xlarge']);
    expect(after.map((machine) => machine.instanceId).sort()).toEqual(rolled.map((machine) => machine.replacement.instanceId).sort());
    await pollNodeHealth(session.stack.health);
    const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token });
    expect(nodes.body.items.filter((node) => node.pool === 'default').map((node) => [node.instanceId, node.health])).toEqual(
      expect.arrayContaining(after.map((machine) => [machine.instanceId, 'Healthy'])),
    );
    expect(nodes.body.items.filter((node) => node.pool === 'default')).toHaveLength(2);
    const events = await api<{ items: { type: string; data: { reason?: string } }[] }>('GET', `/v1/clusters/${id}/events`, { token });
    expect(events.body.items.filter((event) => event.type === 'node.replaced' && event.data.reason === 'InstanceTypeChanged')).toHaveLength(2);
  });
});
