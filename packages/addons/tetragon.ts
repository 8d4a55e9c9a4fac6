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

/**
 * Kills a process that asks for uid 0 from inside a container. The selector
 * matches on the PID namespace: `NotIn host_ns` (Tetragon's name for the host's
 * namespace) means "not a host process", so host daemons and hostPID pods
 * (which are privileged and confined to kube-system by Pod Security) are left
 * alone. One selector per uid argument, because selectors are OR-ed while the
 * conditions inside one are AND-ed.
 */
export function privilegeGainPolicy(): Manifest {
  return {
    apiVersion: 'cilium.io/v1alpha1',
    kind: 'TracingPolicy',
    metadata: { name: 'kiln-kill-privilege-gain' },
    spec: {
      kprobes: UID_SYSCALLS.map(({ call, uidArgs }) => ({
        call,
        syscall: true,
        args: uidArgs.map((index) => ({ index, type: 'int' })),
        selectors: uidArgs.map((index) => ({
          matchArgs: [{ index, operator: 'Equal', values: ['0'] }],
          matchNamespaces: [{ namespace: 'Pid', operator: 'NotIn', values: ['host_ns'] }],
          matchActions: [{ action: 'Sigkill' }],
        })),
      })),
    },
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
