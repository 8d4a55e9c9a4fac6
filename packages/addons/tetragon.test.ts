import { describe, expect, it } from 'vitest';
import { type ContainerProcess, ETCDCTL_IN_ETCD, HOST_NAMESPACE, type KubeObject, type LoadedPolicy, NAMESPACE_KINDS, type NamespaceKind, STATIC_POD_CONTAINERS, type TracedTask, loadTracingPolicy, playSteps, runcInitSteps } from '#sandbox';
import { privilegeGainPolicy } from './tetragon.ts';

/** Kiln's policy as the Tetragon agent loads it (the sandbox's stand-in plays Tetragon v1.7's loader and selectors). */
function loaded(): LoadedPolicy[] {
  const load = loadTracingPolicy(privilegeGainPolicy() as unknown as KubeObject);
  if (!('loaded' in load)) throw new Error(`Tetragon would not load Kiln's policy: ${load.error}`);
  return [load.loaded];
}

const ROOT_APP: ContainerProcess = { name: 'default/app', user: { uid: 0, gid: 0 }, executable: '/app' };

/** A process in a container, as Tetragon sees it: not root, nothing shared with the host. */
function containerProcess(task: Partial<TracedTask> = {}): TracedTask {
  const namespaces = Object.fromEntries(NAMESPACE_KINDS.map((kind) => [kind, kind === 'User' ? HOST_NAMESPACE : 'default/app'])) as Record<NamespaceKind, string>;
  return { binary: '/usr/bin/python3', namespaces, cred: { uid: 1000, euid: 1000, gid: 1000, egid: 1000, userNamespaceLevel: 0 }, capabilities: [], ...task };
}

describe("Kiln's intrusion-detection policy", () => {
  it('loads within Tetragon 1.7 limits', () => {
    expect(loaded().map((policy) => policy.name)).toEqual(['kiln-kill-privilege-gain']);
  });

  it("lets runc start root and non-root containers, kubeadm's static pods and crictl exec", () => {
    const policies = loaded();
    const containers: ContainerProcess[] = [ROOT_APP, { ...ROOT_APP, user: { uid: 1000, gid: 1000 } }, { ...ROOT_APP, userNamespaceRoot: 65_536 }, ...Object.values(STATIC_POD_CONTAINERS)];
    for (const container of containers) expect(playSteps(policies, runcInitSteps(container, 'create')), container.name).toEqual({ ran: true });
    expect(playSteps(policies, runcInitSteps(ETCDCTL_IN_ETCD, 'exec'))).toEqual({ ran: true });
  });

  it('kills a process in a container that is not root and asks for uid 0', () => {
    for (const [call, args] of [['sys_setuid', [0]], ['sys_setreuid', [-1, 0]], ['sys_setresuid', [0, 0, 0]], ['sys_setfsuid', [0]]] as const) {
      const outcome = playSteps(loaded(), [{ task: containerProcess(), call: { call, syscall: true, args }, where: 'app' }]);
      expect(outcome, call).toMatchObject({ ran: false, enforcement: { policy: 'kiln-kill-privilege-gain', call, action: 'Sigkill' } });
    }
  });

  it('kills a user that is not root executing a set-user-ID-root file', () => {
    const su = containerProcess({ binary: '/usr/bin/su', cred: { uid: 1000, euid: 0, gid: 1000, egid: 1000, userNamespaceLevel: 0 } });
    const outcome = playSteps(loaded(), [{ task: su, call: { call: 'security_bprm_committed_creds', syscall: false, args: ['/usr/bin/su'] }, where: 'app' }]);
    expect(outcome).toMatchObject({ ran: false, enforcement: { call: 'security_bprm_committed_creds', action: 'Sigkill' } });
  });

  it('leaves alone root dropping to a user, and the host', () => {
    const root = containerProcess({ cred: { uid: 0, euid: 0, gid: 0, egid: 0, userNamespaceLevel: 0 } });
    expect(playSteps(loaded(), [{ task: root, call: { call: 'sys_setuid', syscall: true, args: [1000] }, where: 'app' }])).toEqual({ ran: true });
    const onHost = containerProcess({ namespaces: Object.fromEntries(NAMESPACE_KINDS.map((kind) => [kind, HOST_NAMESPACE])) as Record<NamespaceKind, string> });
    expect(playSteps(loaded(), [{ task: onHost, call: { call: 'sys_setuid', syscall: true, args: [0] }, where: 'sudo on the host' }])).toEqual({ ran: true });
  });
});
