import { describe, expect, it } from 'vitest';
import type { RecordedResource } from '#sandbox';
import { expectProblem } from '../support/api.ts';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0 });
const { newTenant, waitForPhase } = session;
const api: typeof session.api = (...args) => session.api(...args);

/** Security group rules that carry an allow-list: the API load balancer's (not the NAT addresses') and SSH's. */
const isAllowListRule = (resource: RecordedResource): boolean => /-api-lb-in-\d+$/.test(resource.name) || /-in-ssh-\d+$/.test(resource.name);
const key = (resource: RecordedResource) => `${resource.type} ${resource.name}`;

async function runningMachines(id: string): Promise<string[]> {
  return (await session.machinesOf(id)).filter((machine) => machine.state === 'running').map((machine) => machine.instanceId).sort();
}

describe('changing the allow-lists of a running cluster', () => {
  it('updates only the security group rules, through the infrastructure step, and replaces no machine', async () => {
    const token = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('allow-lists') });
    const id = created.body.id;
    await waitForPhase(token, id, 'Ready');
    const before = session.stack.cloud.resources(id);
    const machinesBefore = await runningMachines(id);

    const patched = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, {
      token,
      body: { network: { apiAllowedCidrs: ['203.0.113.0/24', '198.51.100.0/24'] }, ssh: { allowedCidrs: ['192.0.2.0/24'] } },
    });
    expect(patched.status).toBe(202);
    await waitForPhase(token, id, 'Ready');
    const ready = await api<{ spec: unknown }>('GET', `/v1/clusters/${id}`, { token });
    expect(ready.body).toMatchObject({ network: { apiAllowedCidrs: ['203.0.113.0/24', '198.51.100.0/24'] }, ssh: { allowedCidrs: ['192.0.2.0/24'] } });
    const operation = await api<OperationBody>('GET', `/v1/operations/${patched.body.status.activeOperationId ?? ''}`, { token });
    expect(operation.body.steps.map((step) => [step.name, step.state])).toEqual([
      ['infrastructure', 'succeeded'],
      ['addons', 'succeeded'],
      ['verify', 'succeeded'],
    ]);

    const after = session.stack.cloud.resources(id);
    const cidrs = (resources: RecordedResource[], pattern: RegExp) => resources.filter((resource) => pattern.test(resource.name)).map((resource) => resource.inputs.cidrIpv4);
    expect(cidrs(before, /-api-lb-in-\d+$/)).toEqual(['0.0.0.0/0']);
    expect(cidrs(after, /-api-lb-in-\d+$/)).toEqual(['203.0.113.0/24', '198.51.100.0/24']);
    expect(cidrs(after, /-cp-in-ssh-\d+$/)).toEqual(['192.0.2.0/24']);
    expect(cidrs(after, /-workers-in-ssh-\d+$/)).toEqual(['192.0.2.0/24']);
    // Everything else is declared exactly as before: the same resources with the same inputs, nothing to replace.
    const others = (resources: RecordedResource[]) => resources.filter((resource) => !isAllowListRule(resource)).sort((a, b) => key(a).localeCompare(key(b)));
    expect(others(after)).toEqual(others(before));
    expect(await runningMachines(id)).toEqual(machinesBefore);
  });

  it('answers a change of a member fixed at creation beside them with 422 naming it', async () => {
    const token = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('allow-lists-fixed') });
    await waitForPhase(token, created.body.id, 'Ready');
    const response = await api<{ errors: { pointer: string }[] }>('PATCH', `/v1/clusters/${created.body.id}`, {
      token,
      body: { network: { apiAllowedCidrs: ['203.0.113.0/24'], vpcCidr: '10.1.0.0/16' } },
    });
    expectProblem(response, 422, 'unprocessable');
    expect(response.body.errors.map((error) => error.pointer)).toEqual(['/network/vpcCidr']);
  });
});
