import { BlockList } from 'node:net';
import { ApiException, V1Namespace, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { pollNodeHealth } from '#health';
import { LOCAL_EGRESS_ADDRESS, type RecordedResource, userDataText } from '#sandbox';
import { MAX_UNHEALTHY_RESTARTS } from '#steps';
import { eventually, expectProblem } from '../support/api.ts';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0 });
const { newTenant, waitForPhase, sandboxOf } = session;
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

describe("narrowing the API allow-list to a range without Kiln's address", () => {
  // One cluster, narrowed once; each test is one thing Kiln still does with it afterwards, in order. Locally every
  // connection to a cluster's load balancer comes from Kiln's egress address, and its security groups are enforced.
  const customerRange = '198.51.100.0/24';
  let key: string;
  let id: string;

  it('updates the cluster to Ready: the add-ons are applied again and verified through the narrowed load balancer', async () => {
    key = await newTenant();
    // One of two workers down is 50% of the pool: remediated below, where the default 40% would hold it.
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: { ...order('narrowed'), nodeHealth: { maxUnhealthyPercent: 50 } } });
    id = created.body.id;
    await waitForPhase(key, id, 'Ready');
    // Else the test could not fail: Kiln would be admitted as one of the customer's own.
    const range = new BlockList();
    range.addSubnet('198.51.100.0', 24, 'ipv4');
    expect(range.check(LOCAL_EGRESS_ADDRESS, 'ipv4')).toBe(false);

    const patched = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token: key, body: { network: { apiAllowedCidrs: [customerRange] } } });
    expect(patched.status).toBe(202);
    await waitForPhase(key, id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${patched.body.status.activeOperationId ?? ''}`, { token: key });
    expect(operation.body.state, operation.body.error?.detail).toBe('succeeded');
    expect(operation.body.steps.map((step) => [step.name, step.state])).toEqual([
      ['infrastructure', 'succeeded'],
      ['addons', 'succeeded'],
      ['verify', 'succeeded'],
    ]);
    // The narrowing holds for everyone else: an address outside the order's range (and not Kiln's) is refused.
    expect(session.stack.apiLoadBalancers.get(id)?.admits('192.0.2.200')).toBe(false);
  });

  it('still polls its nodes: all Healthy, and remediation not held for an unreachable API server', async () => {
    await pollNodeHealth(session.stack.health);
    const nodes = await api<{ items: { health: string }[]; remediationPaused: string[] }>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(nodes.body.remediationPaused).toEqual([]);
    expect(nodes.body.items.map((node) => node.health)).toEqual(Array.from({ length: 5 }, () => 'Healthy'));
  });

  it('still rotates its Secret-encryption key', async () => {
    const started = await api<OperationBody>('POST', `/v1/clusters/${id}/encryption-key-rotations`, { token: key });
    expect(started.status).toBe(202);
    await waitForPhase(key, id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${started.body.id}`, { token: key });
    expect(operation.body.state, operation.body.error?.detail).toBe('succeeded');
  });

  it('still remediates a worker whose kubelet stopped: rebooted, and recovered once its node is Ready again', async () => {
    const worker = (await session.machinesOf(id)).find((machine) => machine.nodeName === 'default-1' && machine.state === 'running');
    expect((await api('POST', `/v1/sandbox/clusters/${id}/machines/${worker?.instanceId ?? ''}/stop-kubelet`, { token: session.stack.adminToken })).status).toBe(200);
    await pollNodeHealth(session.stack.health, new Date(Date.now() + 6 * 60_000));
    const remediation = await eventually('the remediation to finish', async () => {
      const operations = await api<{ items: OperationBody[] }>('GET', `/v1/clusters/${id}/operations`, { token: key });
      const found = operations.body.items.find((item) => item.type === 'remediate-node');
      return found !== undefined && found.state !== 'pending' && found.state !== 'running' ? found : undefined;
    });
    expect(remediation.state, remediation.error?.detail).toBe('succeeded');
    expect(remediation.steps.map((step) => [step.name, step.state])).toEqual([
      ['reboot', 'succeeded'],
      ['recover', 'succeeded'],
    ]);
  });
});

/** A pod as most charts write one, with no securityContext: baseline admits it, restricted does not. */
const plainPod = (name: string) => Object.assign(new V1Pod(), { metadata: { name }, spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] } });

/** What creating the pod in a namespace made now (without Pod Security labels of its own) gets: refused, or admitted with its warnings. */
async function podInNewNamespace(id: string, namespace: string): Promise<{ refused?: string; warnings: string[] }> {
  const { core } = sandboxOf(id);
  await core.createNamespace({ body: Object.assign(new V1Namespace(), { metadata: { name: namespace } }) });
  try {
    const created = await core.createNamespacedPodWithHttpInfo({ namespace, body: plainPod('web') });
    return { warnings: created.headers.warning === undefined ? [] : [created.headers.warning] };
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    return { refused: String((JSON.parse(String(error.body)) as { message?: string }).message), warnings: [] };
  }
}

describe('changing the Pod Security defaults of a running cluster', () => {
  /** The admission configuration the control plane's launch template writes: what a machine that joins later starts with. */
  const launchedDefaults = (id: string): string => {
    const template = session.stack.cloud.resources(id).find((resource) => resource.type === 'aws:ec2/launchTemplate:LaunchTemplate' && (resource.inputs.tags as Record<string, string> | undefined)?.['kiln:role'] === 'control-plane');
    const userData = userDataText(template?.inputs.userData);
    return /defaults:\n((?:\s+\S+: \S+\n)+)/.exec(userData)?.[1]?.replace(/\s+/g, ' ').trim() ?? '';
  };

  it('holds a namespace made after the change to the new default level, not the one the API servers started with', async () => {
    const token = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('pod-security') });
    const id = created.body.id;
    await waitForPhase(token, id, 'Ready');
    expect((await podInNewNamespace(id, 'before')).refused).toContain('violates PodSecurity "restricted:latest"');
    const machinesBefore = await runningMachines(id);

    const patched = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token, body: { podSecurity: { defaultLevel: 'baseline' } } });
    expect(patched.status).toBe(202);
    await waitForPhase(token, id, 'Ready');

    expect(await podInNewNamespace(id, 'after')).toEqual({ warnings: [] });
    // The launch template renders the new defaults for machines to come; the running ones restarted their API servers.
    const operation = await api<OperationBody>('GET', `/v1/operations/${patched.body.status.activeOperationId ?? ''}`, { token });
    expect(operation.body.steps.map((step) => [step.name, step.state])).toEqual([
      ['infrastructure', 'succeeded'],
      ['pod-security-defaults', 'succeeded'],
      ['addons', 'succeeded'],
      ['verify', 'succeeded'],
    ]);
    expect(launchedDefaults(id)).toBe('enforce: baseline enforce-version: latest audit: baseline audit-version: latest warn: baseline warn-version: latest');
    expect(await runningMachines(id)).toEqual(machinesBefore);
  });

  it('retries an API server that comes back unhealthy, and stops at it, touching no other, once it never does', async () => {
    const token = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('pod-security-unhealthy') });
    const id = created.body.id;
    await waitForPhase(token, id, 'Ready');

    // One unhealthy restart is retried after a pause; the roll goes on.
    session.stack.machines.failCommands('restart', 1);
    const retried = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token, body: { podSecurity: { enforce: 'baseline' } } });
    await waitForPhase(token, id, 'Ready');
    expect(session.stack.machines.unusedCommandFaults()).toBe(0);
    const done = await api<OperationBody>('GET', `/v1/operations/${retried.body.status.activeOperationId ?? ''}`, { token });
    expect(done.body.steps.find((step) => step.name === 'pod-security-defaults')?.outputs).toMatchObject({ written: ['control-plane-0', 'control-plane-1', 'control-plane-2'], restarted: ['control-plane-0', 'control-plane-1', 'control-plane-2'] });

    // An API server that never comes back healthy stops the roll at the first machine: no other one is touched.
    session.stack.machines.failCommands('restart', 1_000);
    const stopped = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token, body: { podSecurity: { enforce: 'privileged' } } });
    const failed = await waitForPhase(token, id, 'Failed');
    expect(failed.status.reason).toContain(`did not come back healthy in ${MAX_UNHEALTHY_RESTARTS} restarts with the new Pod Security defaults`);
    const operation = await api<OperationBody>('GET', `/v1/operations/${stopped.body.status.activeOperationId ?? ''}`, { token });
    expect(operation.body.steps.find((step) => step.name === 'pod-security-defaults')).toMatchObject({ state: 'failed', outputs: { written: ['control-plane-0'], restarted: [] } });
  });

  it('warns at a stricter level than it enforces, and audits at it', async () => {
    const token = await newTenant();
    const created = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('pod-security-warn') });
    const id = created.body.id;
    await waitForPhase(token, id, 'Ready');

    const patched = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token, body: { podSecurity: { enforce: 'baseline', warn: 'restricted' } } });
    expect(patched.status).toBe(202);
    expect(patched.body.podSecurity).toMatchObject({ defaultLevel: 'restricted', defaultMode: 'enforce', enforce: 'baseline', warn: 'restricted' });
    await waitForPhase(token, id, 'Ready');

    const { sandbox } = sandboxOf(id);
    sandbox.clearRequestLog();
    expect(await podInNewNamespace(id, 'late')).toEqual({ warnings: [expect.stringContaining('would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation != false')] });
    // audit is not set, so it follows defaultLevel (restricted): the violation is on the request's audit event.
    const audited = sandbox.requestLog.find((entry) => entry.verb === 'create' && entry.resource === 'pods');
    expect(audited?.auditAnnotations).toMatchObject({ 'pod-security.kubernetes.io/enforce-policy': 'baseline:latest', 'pod-security.kubernetes.io/audit-violations': expect.stringContaining('restricted:latest') as unknown });
    // The default namespace carries the same levels as labels.
    const labels = (sandbox.objects({ kind: 'Namespace', name: 'default' })[0]?.metadata as { labels?: Record<string, string> }).labels;
    expect(labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/audit': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' });
  });
});
