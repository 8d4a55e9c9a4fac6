import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../../openapi/kiln.ts';
import { ClusterSpec, FIXED_AT_CREATION, IMMUTABLE_ORDER_FIELDS, MUTABLE_ORDER_FIELDS, MUTABLE_ORDER_MEMBERS, immutableMembersOf, newId, type Problem } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';
import { newApp, openApiDocument } from '../index.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** A Ready cluster as the provision workflow leaves it (the harness runs no workflows). */
async function readyCluster(): Promise<{ apiKey: string; id: string }> {
  const { id: tenantId, apiKey } = await api.newTenant();
  const id = newId('cluster');
  const now = new Date().toISOString();
  const spec = ClusterSpec.parse({ name: 'patched', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }] });
  await api.services.store.createCluster(
    { tenantId, id, name: spec.name, spec, status: { phase: 'Ready', conditions: [] }, createdAt: now, updatedAt: now, version: 1 },
    { tenantId, id: newId('operation'), type: 'provision', clusterId: id, state: 'succeeded', steps: {}, createdAt: now, updatedAt: now, version: 1 },
  );
  return { apiKey, id };
}

type ClusterBody = components['schemas']['Cluster'];

describe('PATCH /v1/clusters/{id}', () => {
  it.each([
    [{ region: 'eu-west-1' }, ['/region']],
    [{ network: { vpcCidr: '10.1.0.0/16' } }, ['/network/vpcCidr']],
    [{ controlPlane: { replicas: 5 }, ssh: { mode: 'self-managed' } }, ['/controlPlane/replicas', '/ssh/mode']],
    [{ network: { apiAllowedCidrs: ['10.0.0.0/8'], podCidr: '10.250.0.0/16' } }, ['/network/podCidr']],
  ])('refuses %j, fixed at creation, with 422 naming each member, and changes nothing', async (patch, pointers) => {
    const { apiKey, id } = await readyCluster();
    const before = await api.call<ClusterBody>('GET', `/v1/clusters/${id}`, { token: apiKey });
    const response = await api.call<Problem>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: patch });

    expectProblem(response, 422, 'unprocessable');
    expect(response.body.detail).toBe(FIXED_AT_CREATION);
    expect(response.body.detail).toContain('network.apiAllowedCidrs');
    expect(response.body.errors).toEqual(pointers.map((pointer) => ({ pointer, detail: 'cannot change after the cluster is created' })));
    const after = await api.call<ClusterBody>('GET', `/v1/clusters/${id}`, { token: apiKey });
    expect(after.headers.get('etag')).toBe(before.headers.get('etag'));
  });

  it.each([
    ['1.37', 'Kubernetes upgrades one minor at a time (kubeadm and the version skew policy allow no skipped minor): upgrade from 1.35 to 1.36 first, then to 1.37.'],
    ['1.34', 'Kubernetes cannot go back from 1.35 to 1.34: the API servers have stored objects as 1.35 writes them, and kubeadm does not downgrade. Order a new cluster on 1.34 instead.'],
  ])('refuses kubernetesVersion %s with 422 saying why, and changes nothing', async (kubernetesVersion, detail) => {
    const { apiKey, id } = await readyCluster();
    const before = await api.call<ClusterBody>('GET', `/v1/clusters/${id}`, { token: apiKey });
    const response = await api.call<Problem>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { kubernetesVersion } });
    expectProblem(response, 422, 'unprocessable');
    expect(response.body.detail).toBe(detail);
    expect(response.body.errors).toEqual([{ pointer: '/kubernetesVersion', detail }]);
    const after = await api.call<ClusterBody>('GET', `/v1/clusters/${id}`, { token: apiKey });
    expect(after.headers.get('etag')).toBe(before.headers.get('etag'));
  });

  it('refuses the next minor while Kiln does not offer it, naming what holds it back, and takes the same minor as a no-op', async () => {
    const { apiKey, id } = await readyCluster();
    const next = await api.call<Problem>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { kubernetesVersion: '1.36' } });
    expectProblem(next, 422, 'unprocessable');
    // What holds 1.36 back today is the add-on pins (see kubernetes-versions.ts); the detail names them.
    expect(next.body.detail).toMatch(/^This cluster cannot upgrade from 1\.35 to 1\.36 today\. Kubernetes 1\.36 is not supported by .*Kyverno/);
    const same = await api.call<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { kubernetesVersion: '1.35' } });
    expect(same.status).toBe(200);
    expect(same.body.status.phase).toBe('Ready');
  });

  it('answers a misspelled field with 400 naming it, even beside a field fixed at creation', async () => {
    const { apiKey, id } = await readyCluster();
    const response = await api.call<Problem>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { region: 'eu-west-1', maintenanse: {} } });
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors?.map((error) => error.pointer)).toContain('/maintenanse');
  });

  it('checks the members of a mutable part as an order does: unknown, out of range, repeated', async () => {
    const { apiKey, id } = await readyCluster();
    const pointers = async (body: unknown) => {
      const response = await api.call<Problem>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body });
      expectProblem(response, 400, 'validation_failed');
      return response.body.errors?.map((error) => [error.pointer, error.detail]);
    };
    expect(await pointers({ maintenance: { windw: {} } })).toEqual([['/maintenance/windw', 'is not a known field']]);
    expect(await pointers({ nodeHealth: { maxInFlight: 0 } })).toEqual([['/nodeHealth/maxInFlight', expect.any(String)]]);
    expect(await pointers({ maintenance: { window: { days: ['sun', 'sun'] } } })).toEqual([['/maintenance/window/days', 'must not repeat an item']]);
  });

  it.each([
    ['grows a pool', [{ name: 'default', size: 4 }], ['join-token', 'infrastructure', 'await-nodes', 'addons', 'verify']],
    ['shrinks a pool', [{ name: 'default', size: 1, min: 1 }], ['drain-nodes', 'remove-machines', 'infrastructure', 'addons', 'verify']],
    [
      'adds a pool and removes one',
      [{ name: 'gpu', size: 1, labels: { accelerator: 'gpu' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }] }],
      ['drain-nodes', 'remove-machines', 'join-token', 'infrastructure', 'await-nodes', 'addons', 'verify'],
    ],
    ['relabels a pool', [{ name: 'default', size: 2, labels: { team: 'a' } }], ['infrastructure', 'addons', 'verify']],
    ['changes the instance type of a pool', [{ name: 'default', size: 2, instanceType: 'm7i.xlarge' }], ['join-token', 'infrastructure', 'roll-machines', 'addons', 'verify']],
  ])('%s: answers 202 with an operation listing the steps the change takes', async (_change, nodePools, steps) => {
    const { apiKey, id } = await readyCluster();
    const response = await api.call<ClusterBody & { status: { activeOperationId?: string } }>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { nodePools } });
    expect(response.status).toBe(202);
    expect(response.body.status.phase).toBe('Updating');
    expect(response.body.nodePools.map((pool) => pool.name)).toEqual(nodePools.map((pool) => pool.name));
    const operation = await api.call<{ steps: { name: string; state: string }[] }>('GET', `/v1/operations/${response.body.status.activeOperationId ?? ''}`, { token: apiKey });
    expect(operation.body.steps.map((step) => step.name)).toEqual(steps);
  });

  it.each([
    ['changes the enforce level', { enforce: 'baseline' }, ['infrastructure', 'pod-security-defaults', 'addons', 'verify']],
    ['sets a stricter warn level under a looser shorthand', { defaultLevel: 'baseline', warn: 'restricted' }, ['infrastructure', 'pod-security-defaults', 'addons', 'verify']],
    ['names a mode at the level it already has', { warn: 'restricted' }, ['addons', 'verify']],
    ['changes only a namespace', { namespaces: { legacy: { enforce: 'baseline', warn: 'restricted' } } }, ['addons', 'verify']],
  ])('Pod Security: %s, and the operation lists the steps that takes', async (_change, podSecurity, steps) => {
    const { apiKey, id } = await readyCluster();
    const response = await api.call<ClusterBody & { status: { activeOperationId?: string } }>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { podSecurity } });
    expect(response.status).toBe(202);
    expect(response.body.podSecurity).toMatchObject(podSecurity);
    const operation = await api.call<{ steps: { name: string }[] }>('GET', `/v1/operations/${response.body.status.activeOperationId ?? ''}`, { token: apiKey });
    expect(operation.body.steps.map((step) => step.name)).toEqual(steps);
  });

  it('refuses a namespace override that sets no level, or a mode without its level, with 422 naming them', async () => {
    const { apiKey, id } = await readyCluster();
    const response = await api.call<Problem>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { podSecurity: { namespaces: { legacy: { mode: 'audit' } } } } });
    expectProblem(response, 422, 'unprocessable');
    expect(response.body.errors?.map((error) => error.pointer)).toEqual(['/podSecurity/namespaces/legacy', '/podSecurity/namespaces/legacy/mode']);
  });

  it('checks the pools of a patch as an order does', async () => {
    const { apiKey, id } = await readyCluster();
    const response = await api.call<Problem>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { nodePools: [{ name: 'default', size: 0 }] } });
    expectProblem(response, 422, 'unprocessable');
    expect(response.body.errors?.map((error) => error.pointer)).toEqual(['/nodePools']);
  });

  it('puts a member back to its default with null, and answers 200 when the patch changes nothing', async () => {
    const { apiKey, id } = await readyCluster();
    const unchanged = await api.call<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token: apiKey, body: { nodeHealth: { maxInFlight: null }, maintenance: { autoUpdate: true } } });
    expect(unchanged.status).toBe(200);
    expect(unchanged.body.nodeHealth.maxInFlight).toBe(1);
    expect(unchanged.body.status.phase).toBe('Ready');
  });
});

describe('the PATCH contract in the OpenAPI document', () => {
  type Schemas = Record<string, { properties: Record<string, Record<string, unknown>>; additionalProperties?: boolean }>;
  type Document = { components: { schemas: Schemas }; paths: Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }> };
  let document: Document;
  let schemas: Schemas;
  beforeAll(() => {
    document = openApiDocument(newApp(api.services)) as unknown as Document;
    schemas = document.components.schemas;
  });

  it('takes exactly the mutable order fields, and nothing else', () => {
    expect(Object.keys(schemas.ClusterPatch?.properties ?? {}).sort()).toEqual([...MUTABLE_ORDER_FIELDS, ...Object.keys(MUTABLE_ORDER_MEMBERS)].sort());
    expect(Object.keys(schemas.NetworkPatch?.properties ?? {})).toEqual(['apiAllowedCidrs']);
    expect(Object.keys(schemas.SshPatch?.properties ?? {})).toEqual(['allowedCidrs']);
    expect(schemas.ClusterPatch?.additionalProperties).toBe(false);
    expect(schemas.ClusterPatch?.properties.nodePools).toMatchObject({ type: 'array', items: { $ref: '#/components/schemas/NodePoolSpec' } });
  });

  it('marks nothing of a node pool x-kiln-immutable: every member changes in place', () => {
    for (const member of ['instanceType', 'size', 'min', 'max', 'labels', 'taints']) expect(schemas.NodePoolSpec?.properties[member]?.['x-kiln-immutable']).toBeUndefined();
  });

  it('marks every other order field x-kiln-immutable and says so, in the order sent and the order shown', () => {
    const sent = (document.paths['/v1/clusters']?.post.requestBody.content['application/json']?.schema as { properties: Record<string, Record<string, unknown>> }).properties;
    const shown = Object.fromEntries(Object.entries(schemas.Cluster?.properties ?? {}).filter(([field]) => !['id', 'status', 'createdAt', 'updatedAt'].includes(field)));
    for (const spec of [sent, shown]) {
      expect(Object.keys(spec).sort()).toEqual([...MUTABLE_ORDER_FIELDS, ...Object.keys(MUTABLE_ORDER_MEMBERS), ...IMMUTABLE_ORDER_FIELDS].sort());
      for (const field of IMMUTABLE_ORDER_FIELDS) {
        expect(spec[field]).toMatchObject({ 'x-kiln-immutable': true, description: expect.stringContaining('Fixed at creation') });
      }
      for (const field of [...MUTABLE_ORDER_FIELDS, ...Object.keys(MUTABLE_ORDER_MEMBERS)]) expect(spec[field]?.['x-kiln-immutable']).toBeUndefined();
    }
    // Of the parts that change only in part, each member fixed at creation is marked, the allow-lists are not.
    for (const [name, part] of [['NetworkSpec', 'network'], ['SshSpec', 'ssh']] as const) {
      const members = schemas[name]?.properties ?? {};
      for (const member of immutableMembersOf(part)) expect(members[member]).toMatchObject({ 'x-kiln-immutable': true });
      for (const member of MUTABLE_ORDER_MEMBERS[part]) expect(members[member]?.['x-kiln-immutable']).toBeUndefined();
    }
  });

  it('marks server-set fields readOnly, secrets writeOnly passwords, and set-like lists uniqueItems', () => {
    for (const field of ['id', 'status', 'createdAt', 'updatedAt']) expect(schemas.Cluster?.properties[field]).toMatchObject({ readOnly: true });
    expect(schemas.AtRestEncryptionSpec?.properties.key).toMatchObject({ writeOnly: true, format: 'password' });
    expect(schemas.NetworkSpec?.properties.apiAllowedCidrs).toMatchObject({ uniqueItems: true });
    expect(schemas.SshSpec?.properties.allowedCidrs).toMatchObject({ uniqueItems: true });
    expect((schemas.MaintenanceSpec?.properties.window as { properties: Record<string, unknown> }).properties.days).toMatchObject({ uniqueItems: true });
  });
});
