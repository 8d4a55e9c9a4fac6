import { describe, expect, it } from 'vitest';
import { pollNodeHealth } from '#health';
import { eventually } from '../support/api.ts';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

// With intrusion detection on, Tetragon's policy is loaded on every machine: the sandbox plays each container start
// (the API server restarts of a rotation, crictl exec of etcdctl, a new control plane machine's static pods) through
// runc's init under it. The tests drive the health poller themselves.
const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0 });
const { newTenant, waitForPhase, sandboxOf, machinesOf } = session;
const api: typeof session.api = (...args) => session.api(...args);

/** A Ready cluster with intrusion detection on; each test has its own, so one's failure does not fail the other. */
async function watchedCluster(name: string): Promise<{ key: string; id: string }> {
  const key = await newTenant();
  const created = await api<ClusterBody>('POST', '/v1/clusters', { token: key, body: { ...order(name), extensions: { intrusionDetection: { enabled: true } } } });
  await waitForPhase(key, created.body.id, 'Ready');
  return { key, id: created.body.id };
}

describe('a cluster with intrusion detection on', () => {
  it('rotates its Secret-encryption key: every API server restarts under the Tetragon policy', async () => {
    const { key, id } = await watchedCluster('watched-rotation');
    const { sandbox } = sandboxOf(id);
    expect(sandbox.objects({ kind: 'TracingPolicy' }).map((policy) => (policy.metadata as { name: string }).name)).toEqual(['kiln-kill-privilege-gain']);
    const started = await api<OperationBody>('POST', `/v1/clusters/${id}/encryption-key-rotations`, { token: key });
    expect(started.status).toBe(202);
    const ready = await waitForPhase(key, id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${started.body.id}`, { token: key });
    expect(operation.body.state, operation.body.error?.detail).toBe('succeeded');
    const encryption = (ready as unknown as { status: { encryption: { activeKeyId: string; keys: string[] } } }).status.encryption;
    expect(encryption).toMatchObject({ activeKeyId: 'key-2', keys: ['key-2'] });
    expect(new Set(sandbox.storedSecretKeys().map((stored) => stored.key))).not.toContain('key-1');
  });

  it('replaces a dead control plane machine: etcdctl runs through crictl exec and the new machine starts its static pods', async () => {
    const { key, id } = await watchedCluster('watched-replacement');
    const victim = (await machinesOf(id)).find((machine) => machine.nodeName === 'control-plane-0' && machine.state !== 'terminated')?.instanceId ?? '';
    expect((await api('POST', `/v1/sandbox/clusters/${id}/machines/${victim}/power-off`, { token: session.stack.adminToken })).status).toBe(200);
    await pollNodeHealth(session.stack.health, new Date(Date.now() + 6 * 60_000));
    const remediation = await eventually(
      'the remediation of control-plane-0 to finish',
      async () => {
        const operations = await api<{ items: OperationBody[] }>('GET', `/v1/clusters/${id}/operations?limit=100`, { token: key });
        return operations.body.items.find((item) => item.type === 'remediate-node' && item.target?.instanceId === victim && item.state !== 'pending' && item.state !== 'running');
      },
      60_000,
    );
    expect(remediation.state, remediation.error?.detail).toBe('succeeded');
    expect(remediation.steps.find((step) => step.name === 'replace')?.outputs).toMatchObject({ etcdMemberRemoved: true, terminated: true });
    const etcd = session.stack.machines.etcdOf(id);
    expect(etcd.quorumViolations).toEqual([]);
    expect(etcd.members.sort()).toEqual(['control-plane-1', 'control-plane-2', 'control-plane-3']);
    expect(session.stack.machines.instancesOfCluster(id).flatMap((instance) => (instance.bootError === undefined ? [] : [instance.bootError]))).toEqual([]);
  });
});
