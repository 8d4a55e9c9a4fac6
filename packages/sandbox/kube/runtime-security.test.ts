import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SandboxCluster, startSandboxCluster } from './cluster.ts';
import type { JsonObject } from './json.ts';
import { ETCDCTL_IN_ETCD, RUNC_BINARY, RUNC_INIT_BINARY, STATIC_POD_CONTAINERS, type ContainerProcess, loadedPolicies, refusedContainerStart, runcInitSteps } from './runtime-security.ts';
import { loadTracingPolicy } from './tetragon.ts';
import { TRACING_POLICY_CRD } from './testing.ts';

function tracingPolicy(name: string, kprobes: JsonObject[]): JsonObject {
  return { apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy', metadata: { name }, spec: { kprobes } };
}

/** setuid(0) killed outside the host's PID namespace: the shape of Tetragon's process.credentials.changes.at.syscalls example with Sigkill. */
const KILL_SETUID_ROOT = tracingPolicy('kill-setuid-root', [
  {
    call: 'sys_setuid',
    syscall: true,
    args: [{ index: 0, type: 'int' }],
    selectors: [{ matchArgs: [{ index: 0, operator: 'Equal', values: ['0'] }], matchNamespaces: [{ namespace: 'Pid', operator: 'NotIn', values: ['host_ns'] }], matchActions: [{ action: 'Sigkill' }] }],
  },
]);

const APP: ContainerProcess = { name: 'default/app', user: { uid: 0, gid: 0 }, executable: '/app' };

describe('runc container starts under the TracingPolicies a cluster holds', () => {
  let cluster: SandboxCluster;

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'runtime-security' });
    cluster.writeObject(TRACING_POLICY_CRD, 'helm');
  });

  afterEach(async () => {
    await cluster.close();
  });

  it('starts every container while the cluster holds no policy', () => {
    expect(refusedContainerStart(cluster, APP, 'create')).toBeUndefined();
    expect(refusedContainerStart(cluster, ETCDCTL_IN_ETCD, 'exec')).toBeUndefined();
  });

  it("kills runc's init at its setuid(0) in the container's PID namespace, for root and non-root containers, and for crictl exec", () => {
    cluster.writeObject(KILL_SETUID_ROOT, 'kubectl');
    expect(refusedContainerStart(cluster, APP, 'create')).toContain('runc init stage 2 in the container (nsenter/nsexec.c STAGE_INIT): sys_setuid(0) killed (SIGKILL) by TracingPolicy kill-setuid-root');
    expect(refusedContainerStart(cluster, { ...APP, user: { uid: 65_534, gid: 65_534 } }, 'create')).toContain('sys_setuid(0) killed (SIGKILL)');
    expect(refusedContainerStart(cluster, STATIC_POD_CONTAINERS.kubeApiServer, 'create')).toMatch(/^OCI runtime create failed for kube-system\/kube-apiserver/);
    expect(refusedContainerStart(cluster, ETCDCTL_IN_ETCD, 'exec')).toMatch(/^OCI runtime exec failed/);
    // A hostPID container: runc's init never leaves the host's PID namespace, so that selector spares it.
    expect(refusedContainerStart(cluster, { ...APP, hostPid: true }, 'create')).toBeUndefined();
  });

  it("does not spare runc's init by its binary: after the memfd re-exec Tetragon sees the memfd, not /usr/sbin/runc", () => {
    const [hook] = (KILL_SETUID_ROOT.spec as { kprobes: JsonObject[] }).kprobes;
    const selector = ((hook?.selectors ?? []) as JsonObject[])[0] ?? {};
    cluster.writeObject(tracingPolicy('spare-runc-by-path', [{ ...hook, selectors: [{ ...selector, matchBinaries: [{ operator: 'NotIn', values: [RUNC_BINARY, '/usr/bin/runc'] }] }] }]), 'kubectl');
    expect(refusedContainerStart(cluster, APP, 'create')).toContain('killed (SIGKILL) by TracingPolicy spare-runc-by-path');
    expect(runcInitSteps(APP, 'create').filter((step) => step.call.call === 'sys_setuid').map((step) => step.task.binary)).toEqual([RUNC_INIT_BINARY, RUNC_INIT_BINARY]);
  });

  it('enforces nothing of a policy the agent cannot load, as Tetragon reports it and moves on', () => {
    const [hook] = (KILL_SETUID_ROOT.spec as { kprobes: JsonObject[] }).kprobes;
    const six = Array.from({ length: 6 }, () => ((hook?.selectors ?? []) as JsonObject[])[0] ?? {});
    const tooMany = tracingPolicy('six-selectors', [{ ...hook, selectors: six }]);
    expect(loadTracingPolicy(tooMany)).toEqual({ name: 'six-selectors', error: 'sys_setuid: no more than 5 selectors supported (6 provided)' });
    cluster.writeObject(tooMany, 'kubectl');
    expect(loadedPolicies(cluster)).toEqual([]);
    expect(refusedContainerStart(cluster, APP, 'create')).toBeUndefined();
  });

  it("refuses to guess what a policy does to runc's init when it hooks a call the sandbox does not play", () => {
    cluster.writeObject(tracingPolicy('capset', [{ call: 'sys_capset', syscall: true, selectors: [{ matchActions: [{ action: 'Sigkill' }] }] }]), 'kubectl');
    expect(refusedContainerStart(cluster, APP, 'create')).toContain("TracingPolicy capset: the sandbox does not play sys_capset in runc's init");
  });
});
