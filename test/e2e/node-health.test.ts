import { afterEach, describe, expect, it, vi } from 'vitest';
import { pollNodeHealth } from '#health';
import type { SandboxCluster } from '#sandbox';
import { eventually, expectProblem } from '../support/api.ts';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

// The tests drive the health poller themselves, with the clock they need.
const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0 });
const { newTenant, waitForPhase, sandboxOf, machinesOf } = session;
const api: typeof session.api = (...args) => session.api(...args);

const HOUR = 60 * 60_000;

interface NodeList {
  items: { name?: string; instanceId?: string; role: string; pool?: string; zone?: string; kubeletVersion?: string; health: string; reason?: string; since?: string; lastRemediation?: { operationId: string; state: string; lastStep?: string } }[];
  remediationPaused: string[];
}
interface EventList {
  items: { type: string; occurredAt: string; data: Record<string, unknown> }[];
}

const minutesFromNow = (minutes: number) => new Date(Date.now() + minutes * 60_000);

async function readyCluster(name: string, overrides: Record<string, unknown> = {}): Promise<{ key: string; id: string; sandbox: SandboxCluster }> {
  const key = await newTenant();
  const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: { ...order(name), ...overrides } });
  await waitForPhase(key, created.body.id, 'Ready');
  return { key, id: created.body.id, sandbox: sandboxOf(created.body.id).sandbox };
}


async function instanceOf(id: string, nodeName: string): Promise<string> {
  const machine = (await machinesOf(id)).find((candidate) => candidate.nodeName === nodeName && candidate.state !== 'terminated');
  if (machine === undefined) throw new Error(`no machine runs ${nodeName}`);
  return machine.instanceId;
}

async function chaos(id: string, instanceId: string, action: string): Promise<void> {
  expect((await api('POST', `/v1/sandbox/clusters/${id}/machines/${instanceId}/${action}`, { token: session.stack.adminToken })).status).toBe(200);
}

async function remediations(key: string, id: string): Promise<OperationBody[]> {
  const operations = await api<{ items: OperationBody[] }>('GET', `/v1/clusters/${id}/operations?limit=100`, { token: key });
  return operations.body.items.filter((item) => item.type === 'remediate-node');
}

/** Waits for the remediation of an instance to end, and returns it. */
async function finished(key: string, id: string, instanceId: string): Promise<OperationBody> {
  return eventually(
    `the remediation of ${instanceId} to finish`,
    async () => (await remediations(key, id)).find((item) => item.target?.instanceId === instanceId && item.state !== 'pending' && item.state !== 'running'),
    60_000,
  );
}

async function nodeEvents(key: string, id: string): Promise<EventList['items']> {
  const events = await api<EventList>('GET', `/v1/clusters/${id}/events?limit=100`, { token: key });
  return events.body.items.filter((event) => event.type.startsWith('node.')).reverse();
}

afterEach(() => {
  vi.useRealTimers();
});

describe('node health', () => {
  it('lists every machine of a Ready cluster with its instance, zone and kubelet, all Healthy', async () => {
    const { key, id } = await readyCluster('health-ok');
    await pollNodeHealth(session.stack.health);
    const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(nodes.status).toBe(200);
    expect(nodes.body.items).toHaveLength(5);
    expect(nodes.body.items.filter((node) => node.role === 'control-plane').map((node) => node.zone).sort()).toEqual(['eu-central-1a', 'eu-central-1b', 'eu-central-1c']);
    for (const node of nodes.body.items) {
      expect(node).toMatchObject({ health: 'Healthy', instanceId: expect.stringMatching(/^i-/), kubeletVersion: expect.stringMatching(/^v1\./) });
    }
    expect(nodes.body.remediationPaused).toEqual([]);
  });

  it('watches a worker whose kubelet stopped, then calls it unhealthy after unhealthyTimeoutMinutes, with an event', async () => {
    const { key, id, sandbox } = await readyCluster('health-down');
    await pollNodeHealth(session.stack.health);
    sandbox.setNodeReady('default-0', 'False');
    await pollNodeHealth(session.stack.health);
    const watching = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(watching.body.items.find((node) => node.name === 'default-0')).toMatchObject({ health: 'Watching', reason: 'NotReady' });

    await pollNodeHealth(session.stack.health, minutesFromNow(6));
    const unhealthy = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(unhealthy.body.items.find((node) => node.name === 'default-0')).toMatchObject({ health: 'Unhealthy', reason: 'NotReady' });
    const events = await api<{ items: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/clusters/${id}/events`, { token: key });
    expect(events.body.items.filter((event) => event.type === 'node.unhealthy').map((event) => event.data.name)).toEqual(['default-0']);

    // Nothing changed since: the next poll writes nothing and emits nothing.
    await pollNodeHealth(session.stack.health, minutesFromNow(7));
    const again = await api<{ items: { type: string }[] }>('GET', `/v1/clusters/${id}/events`, { token: key });
    expect(again.body.items.filter((event) => event.type === 'node.unhealthy')).toHaveLength(1);
  });

  it('pauses remediation, visibly, with 3 of 5 workers down and maxUnhealthyPercent 40, and resumes when two come back', async () => {
    const { key, id, sandbox } = await readyCluster('health-many', { nodePools: [{ name: 'default', size: 5 }], nodeHealth: { maxUnhealthyPercent: 40 } });
    for (const name of ['default-0', 'default-1', 'default-2']) sandbox.setNodeReady(name, 'False');
    await pollNodeHealth(session.stack.health, minutesFromNow(6));
    const paused = await api<ClusterBody & { status: { conditions: { type: string; status: string; reason: string; message: string }[] } }>('GET', `/v1/clusters/${id}`, { token: key });
    expect(paused.body.status.conditions).toContainEqual(expect.objectContaining({ type: 'RemediationPaused', status: 'True', reason: 'TooManyUnhealthy' }));
    const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(nodes.body.remediationPaused).toEqual([expect.stringContaining('3 of 5 machines of pool/default are unhealthy')]);

    for (const name of ['default-0', 'default-1']) sandbox.setNodeReady(name, 'True');
    await pollNodeHealth(session.stack.health, minutesFromNow(7));
    const resumed = await api<ClusterBody & { status: { conditions: { type: string; status: string }[] } }>('GET', `/v1/clusters/${id}`, { token: key });
    expect(resumed.body.status.conditions).toContainEqual(expect.objectContaining({ type: 'RemediationPaused', status: 'False' }));
    const events = await api<{ items: { type: string }[] }>('GET', `/v1/clusters/${id}/events?limit=100`, { token: key });
    expect(events.body.items.map((event) => event.type)).toEqual(expect.arrayContaining(['remediation.paused', 'remediation.resumed']));
  });

  it('reboots a worker whose kubelet stopped, once, and keeps the machine when its node comes back', async () => {
    // One of two workers is 50% of the pool: allowed here, held at the default 40%.
    const { key, id } = await readyCluster('health-reboot', { nodeHealth: { maxUnhealthyPercent: 50 } });
    await pollNodeHealth(session.stack.health);
    const machines = await api<{ items: { instanceId: string; nodeName?: string }[] }>('GET', `/v1/sandbox/clusters/${id}/machines`, { token: session.stack.adminToken });
    const instanceId = machines.body.items.find((machine) => machine.nodeName === 'default-1')?.instanceId ?? '';
    expect((await api('POST', `/v1/sandbox/clusters/${id}/machines/${instanceId}/stop-kubelet`, { token: session.stack.adminToken })).status).toBe(200);
    await pollNodeHealth(session.stack.health, minutesFromNow(6));

    const remediation = await eventually('the remediation to finish', async () => {
      const operations = await api<{ items: OperationBody[] }>('GET', `/v1/clusters/${id}/operations`, { token: key });
      const found = operations.body.items.find((item) => item.type === 'remediate-node');
      return found !== undefined && found.state !== 'pending' && found.state !== 'running' ? found : undefined;
    });
    expect(remediation).toMatchObject({ state: 'succeeded', target: { instanceId, nodeName: 'default-1', reason: 'NotReady' } });
    expect(remediation.steps.map((step) => [step.name, step.state])).toEqual([
      ['reboot', 'succeeded'],
      ['recover', 'succeeded'],
    ]);
    const events = await api<{ items: { type: string; data: Record<string, unknown> }[] }>('GET', `/v1/clusters/${id}/events?limit=100`, { token: key });
    const nodeEvents = events.body.items.filter((event) => event.type.startsWith('node.')).reverse();
    expect(nodeEvents.map((event) => event.type)).toEqual(['node.unhealthy', 'node.rebooted', 'node.recovered']);
    expect(nodeEvents.every((event) => event.data.instanceId === instanceId)).toBe(true);

    // The same machine is back: no replacement, and the cluster is free for other changes.
    await pollNodeHealth(session.stack.health, minutesFromNow(8));
    const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(nodes.body.items.find((node) => node.instanceId === instanceId)).toMatchObject({
      name: 'default-1',
      health: 'Healthy',
      lastRemediation: { operationId: remediation.id, state: 'succeeded', lastStep: 'recover', finishedAt: remediation.finishedAt },
    });
    expect(nodes.body.items.filter((node) => node.lastRemediation !== undefined)).toHaveLength(1);
    const cluster = await api<ClusterBody & { status: { remediations?: string[] } }>('GET', `/v1/clusters/${id}`, { token: key });
    expect(cluster.body.status.remediations).toBeUndefined();
    expect(cluster.body.status.phase).toBe('Ready');
  });

  it('holds every remediation while the API server is unreachable', async () => {
    const { key, id } = await readyCluster('health-api-down');
    await pollNodeHealth(session.stack.health);
    expect((await api('POST', `/v1/sandbox/clusters/${id}/api-server/unreachable`, { token: session.stack.adminToken })).status).toBe(200);
    try {
      await pollNodeHealth(session.stack.health, minutesFromNow(10));
      const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
      expect(nodes.body.remediationPaused).toEqual([expect.stringContaining('The API server does not answer')]);
      // The last view of the nodes is kept while nothing new is known of them.
      expect(nodes.body.items.every((node) => node.health === 'Healthy')).toBe(true);
    } finally {
      await api('POST', `/v1/sandbox/clusters/${id}/api-server/reachable`, { token: session.stack.adminToken });
    }
    await pollNodeHealth(session.stack.health, minutesFromNow(11));
    expect((await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key })).body.remediationPaused).toEqual([]);
  });

  it('takes chaos only from the admin, and only for machines that exist', async () => {
    const { key, id } = await readyCluster('health-chaos');
    expectProblem(await api('POST', `/v1/sandbox/clusters/${id}/api-server/unreachable`, { token: key }), 401, 'unauthorized');
    expectProblem(await api('POST', `/v1/sandbox/clusters/${id}/machines/i-00000000000000000/power-off`, { token: session.stack.adminToken }), 404, 'not_found');
    expectProblem(await api('POST', '/v1/sandbox/clusters/cls_missing/api-server/unreachable', { token: session.stack.adminToken }), 404, 'not_found');
  });
});

describe('machine replacement', () => {
  it('replaces a worker that stays down after its reboot, hours after provisioning, with a join token minted for it', async () => {
    const { key, id, sandbox } = await readyCluster('heal-worker', { nodeHealth: { maxUnhealthyPercent: 50 } });
    const createdAt = Date.parse((await api<{ createdAt: string }>('GET', `/v1/clusters/${id}`, { token: key })).body.createdAt);
    // Three hours on: the join token of the provisioning expired an hour ago.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + 3 * HOUR);
    const victim = await instanceOf(id, 'default-1');
    await chaos(id, victim, 'break');
    await pollNodeHealth(session.stack.health, minutesFromNow(6));

    await eventually('the reboot', async () => ((await remediations(key, id))[0]?.steps.find((step) => step.name === 'reboot')?.state === 'succeeded' ? true : undefined));
    // The machine stays down past unhealthyTimeoutMinutes after its reboot.
    vi.setSystemTime(Date.now() + 6 * 60_000);
    const remediation = await finished(key, id, victim);
    expect(remediation.state).toBe('succeeded');
    expect(remediation.steps.map((step) => [step.name, step.state])).toEqual([
      ['reboot', 'succeeded'],
      ['recover', 'succeeded'],
      ['drain', 'succeeded'],
      ['replace', 'succeeded'],
      ['await-replacement', 'succeeded'],
      ['retire', 'succeeded'],
    ]);

    const replacement = remediation.steps.find((step) => step.name === 'await-replacement')?.outputs as { instanceId: string; nodeName: string };
    expect(replacement.instanceId).not.toBe(victim);
    expect(sandbox.objects({ kind: 'Node', name: 'default-1' })).toEqual([]);
    const [joined] = sandbox.objects({ kind: 'Node', name: replacement.nodeName });
    const joinedAt = Date.parse((joined?.metadata as { creationTimestamp: string }).creationTimestamp);
    expect(joinedAt - createdAt).toBeGreaterThan(2 * HOUR);
    // The pool keeps its size: the group launched one machine for the one it lost.
    const pool = (await machinesOf(id)).filter((machine) => machine.nodeName?.startsWith('default-') === true && machine.state === 'running');
    expect(pool.map((machine) => machine.instanceId).sort()).toEqual([await instanceOf(id, 'default-0'), replacement.instanceId].sort());

    await pollNodeHealth(session.stack.health, minutesFromNow(1));
    const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(nodes.body.items.filter((node) => node.role === 'worker').map((node) => [node.name, node.health]).sort()).toEqual([
      ['default-0', 'Healthy'],
      [replacement.nodeName, 'Healthy'],
    ]);
    const events = await nodeEvents(key, id);
    expect(events.map((event) => event.type)).toEqual(['node.unhealthy', 'node.rebooted', 'node.replaced']);
    expect(events[2]?.data).toMatchObject({ instanceId: victim, nodeName: 'default-1', replacement });

    // A fresh token was minted for the replacement (by id in the outputs, never whole in what Kiln shows), and once the
    // remediation ended it was revoked in the cluster: what a machine read from the secret store is worthless now.
    const tokenId = (remediation.steps.find((step) => step.name === 'replace')?.outputs as { joinTokenId: string }).joinTokenId;
    expect(tokenId).toMatch(/^[a-z0-9]{6}$/);
    expect(JSON.stringify([remediation, events])).not.toMatch(/[a-z0-9]{6}\.[a-z0-9]{16}/);
    // The finish step records the outcome, then withdraws the join material.
    await eventually('the replacement token to be revoked', () =>
      Promise.resolve(sandbox.objects({ kind: 'Secret', namespace: 'kube-system', name: `bootstrap-token-${tokenId}` }).length === 0 ? true : undefined),
    );
  });

  it('replaces a dead control plane machine of three, and etcd keeps quorum at every member change', async () => {
    const { key, id, sandbox } = await readyCluster('heal-cp');
    const victim = await instanceOf(id, 'control-plane-0');
    await chaos(id, victim, 'power-off');
    await pollNodeHealth(session.stack.health, minutesFromNow(6));

    const remediation = await finished(key, id, victim);
    expect(remediation.state).toBe('succeeded');
    // EC2 does not reboot a stopped machine: it is replaced at once.
    expect(remediation.steps.find((step) => step.name === 'reboot')?.outputs).toMatchObject({ rebooted: false, skipped: expect.stringContaining('EC2 did not reboot it') });
    expect(remediation.steps.find((step) => step.name === 'replace')?.outputs).toMatchObject({ etcdMemberRemoved: true, terminated: true });

    const etcd = session.stack.machines.etcdOf(id);
    expect(etcd.quorumViolations).toEqual([]);
    const changes = etcd.history.slice(3);
    expect(changes.map((change) => `${change.change} ${change.member}`)).toEqual(['remove control-plane-0', 'add control-plane-3']);
    expect(Math.min(...etcd.history.slice(2).map((change) => change.members.length))).toBeGreaterThanOrEqual(2);
    expect(etcd.members.sort()).toEqual(['control-plane-1', 'control-plane-2', 'control-plane-3']);
    expect(sandbox.objects({ kind: 'Node', name: 'control-plane-0' })).toEqual([]);
    await pollNodeHealth(session.stack.health, minutesFromNow(7));
    const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(nodes.body.items.filter((node) => node.role === 'control-plane').map((node) => node.health)).toEqual(['Healthy', 'Healthy', 'Healthy']);
  });

  /**
   * A cluster whose control-plane-0 loses power and whose replacement loses power too, right after kubeadm adds its
   * etcd learner and before the learner's etcd starts: the learner it leaves, and the machines involved.
   */
  async function replacementDiedMidJoin(name: string) {
    const { key, id } = await readyCluster(name, { nodeHealth: { nodeStartupTimeoutMinutes: 5 } });
    const { machines, health } = session.stack;
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const victim = await instanceOf(id, 'control-plane-0');
    machines.powerOffAfterLearnerAdded(1);
    await chaos(id, victim, 'power-off');
    await pollNodeHealth(health, minutesFromNow(6));
    const learner = await eventually('the replacement to add its learner and die', () => {
      const pending = machines.etcdOf(id).learner;
      return Promise.resolve(machines.instancesOfCluster(id).some((instance) => instance.instanceId === pending?.instanceId && instance.state === 'stopped') ? pending : undefined);
    });
    const dead = machines.instancesOfCluster(id).find((instance) => instance.instanceId === learner.instanceId);
    if (dead === undefined) throw new Error('no dead replacement');
    return { key, id, machines, health, victim, learner, dead };
  }

  it('removes the etcd learner a control plane replacement left when it died mid-join, so the next replacement joins', async () => {
    const { key, id, machines, health, victim, learner, dead } = await replacementDiedMidJoin('heal-cp-learner');
    expect(learner).toEqual({ instanceId: dead.instanceId, peerUrl: `https://${dead.privateIp}:2380` });

    // It never registers a Node: the remediation waits out nodeStartupTimeoutMinutes and fails.
    vi.setSystemTime(Date.now() + 6 * 60_000);
    expect((await finished(key, id, victim)).state).toBe('failed');
    // The old machine's Node (its machine is gone) goes first, while the dead replacement is within its startup time.
    const launchedAt = dead.launchedAt.getTime();
    await pollNodeHealth(health, new Date(launchedAt + 2 * 60_000));
    const orphan = await eventually('the old Node to be retired', async () =>
      (await remediations(key, id)).find((item) => item.target?.reason === 'MachineGone' && item.state !== 'pending' && item.state !== 'running'),
    );
    expect(orphan.state).toBe('succeeded');

    // Past its startup time the dead replacement, with no Node and no name in etcd, is replaced in turn.
    await pollNodeHealth(health, new Date(launchedAt + 6 * 60_000));
    await eventually('the dead replacement to be replaced', async () =>
      (await remediations(key, id)).find((item) => item.target?.instanceId === dead.instanceId)?.steps.find((step) => step.name === 'replace' && step.state === 'succeeded'),
    );
    // Its learner went with it: left, it would refuse every later control plane join ("too many learner members").
    expect(machines.etcdOf(id).learner).toBeUndefined();
    const remediation = await finished(key, id, dead.instanceId);
    expect(remediation).toMatchObject({ state: 'succeeded', target: { reason: 'NoNode' } });
    expect(remediation.target?.nodeName).toBeUndefined();
    expect(remediation.steps.find((step) => step.name === 'replace')?.outputs).toMatchObject({ etcdMemberRemoved: true, terminated: true });
    const replacement = remediation.steps.find((step) => step.name === 'await-replacement')?.outputs as { nodeName: string };
    const etcd = machines.etcdOf(id);
    expect(etcd.members.sort()).toEqual(['control-plane-1', 'control-plane-2', replacement.nodeName].sort());
    expect(etcd.quorumViolations).toEqual([]);
  });

  it('removes the learner a dead control plane machine left after its group replaced it, when the next one cannot join', async () => {
    const { key, id, machines, health, victim, dead } = await replacementDiedMidJoin('heal-cp-lost-learner');
    // EC2 calls the stopped machine unhealthy and its Auto Scaling group (healthCheckType EC2) replaces it at once:
    // Kiln never sees it, and its learner stays, at an address no machine has any more.
    machines.terminateInGroup(dead.scope, dead.instanceId, false);
    const next = await eventually('the group to launch another machine', () =>
      Promise.resolve(machines.instancesOfCluster(id).find((instance) => ![victim, dead.instanceId].includes(instance.instanceId) && instance.autoScalingGroup === dead.autoScalingGroup && instance.nodeName === undefined && instance.state === 'running')),
    );

    // That machine cannot join either ("too many learner members"): the remediation waits out its timeout and fails.
    vi.setSystemTime(Date.now() + 6 * 60_000);
    expect((await finished(key, id, victim)).state).toBe('failed');
    const launchedAt = next.launchedAt.getTime();
    await pollNodeHealth(health, new Date(launchedAt + 2 * 60_000));
    await eventually('the old Node to be retired', async () =>
      (await remediations(key, id)).find((item) => item.target?.reason === 'MachineGone' && item.state === 'succeeded'),
    );
    // Past its startup time the machine that could not join is replaced, and the learner that blocked it goes first.
    await pollNodeHealth(health, new Date(launchedAt + 6 * 60_000));
    await eventually('the blocked machine to be replaced', async () =>
      (await remediations(key, id)).find((item) => item.target?.instanceId === next.instanceId)?.steps.find((step) => step.name === 'replace' && step.state === 'succeeded'),
    );
    expect(machines.etcdOf(id).learner).toBeUndefined();
    const remediation = await finished(key, id, next.instanceId);
    expect(remediation).toMatchObject({ state: 'succeeded', target: { reason: 'NoNode' } });
    const replacement = remediation.steps.find((step) => step.name === 'await-replacement')?.outputs as { nodeName: string };
    expect(machines.etcdOf(id).members.sort()).toEqual(['control-plane-1', 'control-plane-2', replacement.nodeName].sort());
    expect(machines.etcdOf(id).quorumViolations).toEqual([]);
  });

  it('touches nothing with two dead control plane machines of three, and says why', async () => {
    const { key, id } = await readyCluster('heal-cp-quorum');
    await chaos(id, await instanceOf(id, 'control-plane-0'), 'power-off');
    await chaos(id, await instanceOf(id, 'control-plane-1'), 'power-off');
    await pollNodeHealth(session.stack.health, minutesFromNow(6));

    const cluster = await api<ClusterBody>('GET', `/v1/clusters/${id}`, { token: key });
    expect(cluster.body.status.conditions).toContainEqual(expect.objectContaining({ type: 'RemediationPaused', status: 'True', reason: 'EtcdQuorumAtRisk' }));
    const nodes = await api<NodeList>('GET', `/v1/clusters/${id}/nodes`, { token: key });
    expect(nodes.body.remediationPaused).toEqual([expect.stringContaining('2 of 3 control plane machines are unhealthy')]);
    expect(await remediations(key, id)).toEqual([]);
    expect(session.stack.machines.etcdOf(id).members).toHaveLength(3);
  });

  it('with maxInFlight 1, remediates two unhealthy workers one after the other', async () => {
    const { key, id } = await readyCluster('heal-in-flight', { nodePools: [{ name: 'default', size: 5 }], nodeHealth: { maxInFlight: 1 } });
    const first = await instanceOf(id, 'default-0');
    const second = await instanceOf(id, 'default-1');
    await chaos(id, first, 'stop-kubelet');
    await chaos(id, second, 'stop-kubelet');
    await pollNodeHealth(session.stack.health, minutesFromNow(6));
    expect((await remediations(key, id)).map((operation) => operation.target?.instanceId)).toHaveLength(1);

    const one = await finished(key, id, (await remediations(key, id))[0]?.target?.instanceId ?? '');
    await pollNodeHealth(session.stack.health, minutesFromNow(7));
    const other = await finished(key, id, one.target?.instanceId === first ? second : first);
    expect([one.state, other.state]).toEqual(['succeeded', 'succeeded']);
    expect(Date.parse(other.createdAt)).toBeGreaterThanOrEqual(Date.parse(one.finishedAt ?? ''));
    expect((await nodeEvents(key, id)).filter((event) => event.type === 'node.rebooted')).toHaveLength(2);
  });

  it('stops replacing a pool whose machines keep failing at its retry budget, visibly', async () => {
    const { key, id } = await readyCluster('heal-budget', { nodeHealth: { maxUnhealthyPercent: 50, rebootBeforeReplace: false } });
    let nodeName = 'default-1';
    for (let round = 1; round <= 3; round += 1) {
      const instanceId = await instanceOf(id, nodeName);
      await chaos(id, instanceId, 'break');
      await pollNodeHealth(session.stack.health, minutesFromNow(6));
      const remediation = await finished(key, id, instanceId);
      expect(remediation.state).toBe('succeeded');
      nodeName = (remediation.steps.find((step) => step.name === 'await-replacement')?.outputs as { nodeName: string }).nodeName;
    }
    await chaos(id, await instanceOf(id, nodeName), 'break');
    await pollNodeHealth(session.stack.health, minutesFromNow(6));

    expect(await remediations(key, id)).toHaveLength(3);
    const cluster = await api<ClusterBody>('GET', `/v1/clusters/${id}`, { token: key });
    expect(cluster.body.status.conditions).toContainEqual(expect.objectContaining({ type: 'RemediationPaused', status: 'True', reason: 'RetryBudgetSpent' }));
    const events = await api<EventList>('GET', `/v1/clusters/${id}/events?limit=100`, { token: key });
    expect(events.body.items.find((event) => event.type === 'remediation.paused')?.data).toMatchObject({ reasons: expect.arrayContaining([expect.stringContaining('used its 3 remediations')]) });
  });
});
