import { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type ClusterBody, type OperationBody, localSession, order } from '../support/local-session.ts';

const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0 });
const { newTenant, waitForPhase, sandboxOf } = session;
const api: typeof session.api = (...args) => session.api(...args);

/**
 * Two tenants' clusters in one account (Kiln's, as orders without `account` are). A cluster-admin of the first writes
 * a Node naming a machine of the second: Kiln's Run Command must still reach only the first cluster's own machines.
 */
describe("Run Command reaches only the cluster's own machines", () => {
  let key: string;
  let id: string;
  let foreignInstance: string;

  it('builds two clusters of two tenants in the same account, and a Node in the first naming a machine of the second', async () => {
    key = await newTenant();
    const otherKey = await newTenant();
    const [mine, theirs] = await Promise.all([
      api<ClusterBody>('POST', '/v1/clusters', { token: key, body: order('run-command-mine') }),
      api<ClusterBody>('POST', '/v1/clusters', { token: otherKey, body: order('run-command-theirs') }),
    ]);
    id = mine.body.id;
    // One after the other: each wait has its own deadline, while both clusters build meanwhile.
    await waitForPhase(key, id, 'Ready');
    await waitForPhase(otherKey, theirs.body.id, 'Ready');
    const theirControlPlane = (await session.machinesOf(theirs.body.id)).find((machine) => machine.nodeName === 'control-plane-0' && machine.state === 'running');
    expect(theirControlPlane).toBeDefined();
    foreignInstance = theirControlPlane?.instanceId ?? '';

    // What anyone with cluster-admin may write: a Node of any name, labelled a control plane, with any providerID, and
    // Ready with the kubelet the others run (so the update's verify step counts it as one of them).
    const { core } = sandboxOf(id);
    const own = await core.readNode({ name: 'control-plane-0' });
    const planted = Object.assign(new V1Node(), {
      metadata: { name: 'control-plane-00', labels: { 'node-role.kubernetes.io/control-plane': '' } },
      spec: { providerID: `aws:///${theirControlPlane?.zone ?? ''}/${foreignInstance}` },
    });
    const created = await core.createNode({ body: planted });
    created.status = { conditions: own.status?.conditions, nodeInfo: own.status?.nodeInfo };
    await core.replaceNodeStatus({ name: 'control-plane-00', body: created });
  });

  it('rotates the Secret-encryption key without a command to the other cluster’s machine', async () => {
    const started = await api<OperationBody>('POST', `/v1/clusters/${id}/encryption-key-rotations`, { token: key });
    expect(started.status).toBe(202);
    await waitForPhase(key, id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${started.body.id}`, { token: key });
    expect(operation.body.state, operation.body.error?.detail).toBe('succeeded');
    expect(session.stack.ssm.sentCommands().map((sent) => sent.instanceId)).not.toContain(foreignInstance);
  });

  it('rolls new Pod Security defaults without a command to the other cluster’s machine', async () => {
    const patched = await api<ClusterBody>('PATCH', `/v1/clusters/${id}`, { token: key, body: { podSecurity: { enforce: 'baseline' } } });
    expect(patched.status).toBe(202);
    await waitForPhase(key, id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${patched.body.status.activeOperationId ?? ''}`, { token: key });
    expect(operation.body.state, operation.body.error?.detail).toBe('succeeded');
    expect(operation.body.steps.find((step) => step.name === 'pod-security-defaults')?.outputs).toMatchObject({ machines: ['control-plane-0', 'control-plane-1', 'control-plane-2'] });
    expect(session.stack.ssm.sentCommands().map((sent) => sent.instanceId)).not.toContain(foreignInstance);
  });

  it('renews the control plane, removing each old etcd member through one of its own machines, without a command to the other cluster’s', async () => {
    const started = await api<OperationBody>('POST', `/v1/clusters/${id}/certificate-renewals`, { token: key });
    expect(started.status).toBe(202);
    await waitForPhase(key, id, 'Ready');
    const operation = await api<OperationBody>('GET', `/v1/operations/${started.body.id}`, { token: key });
    expect(operation.body.state, operation.body.error?.detail).toBe('succeeded');
    expect(session.stack.ssm.sentCommands().map((sent) => sent.instanceId)).not.toContain(foreignInstance);
  });
});
