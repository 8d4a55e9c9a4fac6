import type { ClusterSpec } from '#core';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

/** setuid-family syscalls and the argument positions that carry a uid. */
const UID_SYSCALLS: { call: string; uidArgs: number[] }[] = [
  { call: 'sys_setuid', uidArgs: [0] },
  { call: 'sys_setreuid', uidArgs: [0, 1] },
  { call: 'sys_setresuid', uidArgs: [0, 1, 2] },
  { call: 'sys_setfsuid', uidArgs: [0] },
];

/** The caller's credentials, read from the current task at the hook (Tetragon's `data` with `source: current_task`). */
const CALLER_EUID = { index: 0, type: 'int', source: 'current_task', resolve: 'cred.euid.val' };
const CALLER_USER_NAMESPACE_LEVEL = { index: 1, type: 'int', source: 'current_task', resolve: 'cred.user_ns.level' };
const CALLER_UID = { index: 0, type: 'int', source: 'current_task', resolve: 'cred.uid.val' };
const OUTSIDE_HOST_PIDS = { namespace: 'Pid', operator: 'NotIn', values: ['host_ns'] };

/**
 * Kills a process in a container that makes itself root: a setuid-family call asking for uid 0 from a caller whose
 * effective uid is not 0, in the host's user namespace (where uid 0 is the host's root), and the exec of a
 * set-user-ID-root file by a user that is not root (the kernel makes its euid 0, Tetragon's
 * PRIVILEGES_RAISED_EXEC_FILE_SETUID). Processes in the host's PID namespace (host daemons, hostPID pods) are left alone.
 *
 * It never kills the container runtime: runc's init calls setuid(0) in the container's PID namespace for every
 * container, and setuid(<the container's user>) after it (opencontainers/runc@v1.1.15 nsenter/nsexec.c STAGE_INIT,
 * libcontainer/init_linux.go setupUser), but as host root (euid 0), or, in a container with its own user namespace,
 * with credentials in that namespace (user_ns level 1). Matching runc by binary would not work: its init runs from a
 * memfd copy of itself (nsenter/cloned_binary.c), not /usr/sbin/runc.
 *
 * One selector per uid argument (selectors are OR-ed, the filters inside one AND-ed), at most 3 of Tetragon's 5 per
 * hook, with at most 5 args and data per hook (cilium/tetragon@v1.7.0 docs/content/en/docs/concepts/tracing-policy/
 * selectors.md, pkg/sensors/tracing/generickprobe.go EventConfigMaxArgs).
 */
export function privilegeGainPolicy(): Manifest {
  const setuidToRoot = UID_SYSCALLS.map(({ call, uidArgs }) => ({
    call,
    syscall: true,
    args: uidArgs.map((index) => ({ index, type: 'int' })),
    data: [CALLER_EUID, CALLER_USER_NAMESPACE_LEVEL],
    selectors: uidArgs.map((index) => ({
      matchArgs: [{ index, operator: 'Equal', values: ['0'] }],
      matchData: [
        { index: CALLER_EUID.index, operator: 'NotEqual', values: ['0'] },
        { index: CALLER_USER_NAMESPACE_LEVEL.index, operator: 'Equal', values: ['0'] },
      ],
      matchNamespaces: [OUTSIDE_HOST_PIDS],
      matchActions: [{ action: 'Sigkill' }],
    })),
  }));
  // After the exec's new credentials are installed the current task's are the new ones (Tetragon's own
  // pkg/sensors/tracing/kprobe_process_credentials_test.go matches on them at this hook).
  const setuidRootExec = {
    call: 'security_bprm_committed_creds',
    syscall: false,
    args: [{ index: 0, type: 'linux_binprm' }],
    data: [CALLER_UID, { ...CALLER_EUID, index: 1 }],
    selectors: [
      {
        matchData: [
          { index: 0, operator: 'NotEqual', values: ['0'] },
          { index: 1, operator: 'Equal', values: ['0'] },
        ],
        matchNamespaces: [OUTSIDE_HOST_PIDS],
        matchActions: [{ action: 'Sigkill' }],
      },
    ],
  };
  return {
    apiVersion: 'cilium.io/v1alpha1',
    kind: 'TracingPolicy',
    metadata: { name: 'kiln-kill-privilege-gain' },
    spec: { kprobes: [...setuidToRoot, setuidRootExec] },
  };
}

export function tetragonObjects(spec: ClusterSpec): Manifest[] {
  if (!spec.extensions.intrusionDetection.enabled) return [];
  return [
    helmChart('tetragon', CHARTS.tetragon, {
      targetNamespace: 'kube-system',
      // Namespace and credential data on events are what the policy's selectors and the audit trail need.
      values: { tetragon: { enableProcessCred: true, enableProcessNs: true }, tetragonOperator: { enabled: true } },
      readiness: {
        crds: ['tracingpolicies.cilium.io'],
        workloads: [{ kind: 'DaemonSet', namespace: 'kube-system', name: 'tetragon' }],
      },
    }),
    privilegeGainPolicy(),
  ];
}
