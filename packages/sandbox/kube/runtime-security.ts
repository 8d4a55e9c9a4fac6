import type { SandboxCluster } from './cluster.ts';
import type { JsonObject } from './json.ts';
import {
  type Enforcement,
  HOST_NAMESPACE,
  type KernelCall,
  type LoadedPolicy,
  NAMESPACE_KINDS,
  type NamespaceId,
  type NamespaceKind,
  type TracedTask,
  type Unplayed,
  enforce,
  loadTracingPolicy,
  unplayedHooks,
} from './tetragon.ts';

/**
 * Container starts under the Tetragon policies a cluster holds: the kernel calls runc's init makes for every container
 * process, played against each loaded TracingPolicy. runc is Debian's (trixie runc 1.1.15+ds1-2+deb13u1, bookworm
 * 1.1.5+ds1-1+deb12u1: the runc containerd 1.7.24~ds1 and 1.6.20~ds1 depend on); the steps follow
 * opencontainers/runc@v1.1.15 (v1.1.5 makes the same calls).
 */

/** Debian's runc package installs the binary here; containerd-shim-runc-v2 runs it by name from PATH. */
export const RUNC_BINARY = '/usr/sbin/runc';
/**
 * runc's init re-executes itself from a sealed memfd copy before it enters the container (CVE-2019-5736;
 * libcontainer/nsenter/cloned_binary.c RUNC_MEMFD_COMMENT, fexecve in ensure_cloned_binary), so from then on its
 * executable is that memfd and Tetragon's process.binary is this, not RUNC_BINARY.
 */
export const RUNC_INIT_BINARY = '/memfd:runc_cloned:/proc/self/exe (deleted)';
/** Every capability (linux/capability.h): what host root, and so runc until its ApplyCaps, holds. */
const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];
/** containerd's capabilities for a container that adds or drops none (containerd/containerd oci/spec.go defaultUnixCaps, the 1.7 line). */
const CONTAINERD_DEFAULT_CAPABILITIES = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

/** One container process runc starts (`runc create`) or adds to a running container (`runc exec`, what `crictl exec` does). */
export interface ContainerProcess {
  /** The pod and container, for messages. */
  name: string;
  /** The OCI process user: the pod's runAsUser/runAsGroup, else the image's USER (root when it names none). */
  user: { uid: number; gid: number };
  /** The path runc executes in the container. */
  executable: string;
  /** hostPID: the container shares the host's PID namespace, so runc's init never enters another one. */
  hostPid?: boolean;
  hostNetwork?: boolean;
  /** hostUsers: false: the container gets its own user namespace, its root mapped to this unprivileged host uid. */
  userNamespaceRoot?: number;
}

/** kubeadm's static pods: hostNetwork, not hostPID, and root (no runAsUser unless the alpha RootlessControlPlane gate is on). */
export const STATIC_POD_CONTAINERS = {
  etcd: { name: 'kube-system/etcd', user: { uid: 0, gid: 0 }, executable: '/usr/local/bin/etcd', hostNetwork: true },
  kubeApiServer: { name: 'kube-system/kube-apiserver', user: { uid: 0, gid: 0 }, executable: '/usr/local/bin/kube-apiserver', hostNetwork: true },
  kubeControllerManager: { name: 'kube-system/kube-controller-manager', user: { uid: 0, gid: 0 }, executable: '/usr/local/bin/kube-controller-manager', hostNetwork: true },
  kubeScheduler: { name: 'kube-system/kube-scheduler', user: { uid: 0, gid: 0 }, executable: '/usr/local/bin/kube-scheduler', hostNetwork: true },
} satisfies Record<string, ContainerProcess>;

/** `etcdctl` run by `crictl exec` in the etcd container, as the control plane's etcd member script does. */
export const ETCDCTL_IN_ETCD: ContainerProcess = { ...STATIC_POD_CONTAINERS.etcd, name: 'kube-system/etcd (crictl exec etcdctl)', executable: '/usr/local/bin/etcdctl' };

/** A step of a process: the task as it is when it makes the call, and what the call is. */
export interface ProcessStep {
  task: TracedTask;
  call: KernelCall;
  /** Where in runc (or the process) the call is made, for messages. */
  where: string;
}

/** The calls the sandbox plays: every set*id call runc's init makes, and exec. Hooks on anything else cannot be judged. */
const PLAYED_SYSCALLS = ['setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setfsuid', 'setfsgid', 'setgroups', 'execve', 'execveat'];
const PLAYED_FUNCTIONS = new Set([...PLAYED_SYSCALLS.map((name) => `__sys_${name}`).filter((name) => !name.includes('exec')), 'security_bprm_committing_creds', 'security_bprm_committed_creds']);

function played(hook: { call: string; syscall: boolean }): boolean {
  return hook.syscall ? PLAYED_SYSCALLS.some((name) => hook.call === `sys_${name}`) : PLAYED_FUNCTIONS.has(hook.call);
}

/** A set*id syscall: its entry (a `syscall: true` hook) and the kernel function behind it (`__sys_setuid`, kernel/sys.c). */
function idCall(name: string, args: readonly number[]): KernelCall[] {
  return [
    { call: `sys_${name}`, syscall: true, args },
    { call: `__sys_${name}`, syscall: false, args },
  ];
}

/**
 * An execve of `path`: the syscall, then the LSM calls of the exec (fs/exec.c begin_new_exec), the first while the
 * task still has its old credentials, the second once it runs with the new ones.
 */
function execSteps(before: TracedTask, after: TracedTask, path: string, where: string, syscall: 'execve' | 'execveat' = 'execve'): ProcessStep[] {
  return [
    { task: before, call: { call: `sys_${syscall}`, syscall: true, args: [path] }, where },
    { task: before, call: { call: 'security_bprm_committing_creds', syscall: false, args: [path] }, where },
    { task: after, call: { call: 'security_bprm_committed_creds', syscall: false, args: [path] }, where },
  ];
}

function namespaces(overrides: Partial<Record<NamespaceKind, NamespaceId>>): Record<NamespaceKind, NamespaceId> {
  const host = Object.fromEntries(NAMESPACE_KINDS.map((kind) => [kind, HOST_NAMESPACE])) as Record<NamespaceKind, NamespaceId>;
  return { ...host, ...overrides };
}

const ROOT = { uid: 0, euid: 0, gid: 0, egid: 0, userNamespaceLevel: 0 };

/**
 * The kernel calls for one container process, in runc v1.1.15's order:
 * - containerd-shim-runc-v2 runs `runc create|exec`, which runs `/proc/self/exe init` (libcontainer/factory_linux.go
 *   InitPath), whose nsexec constructor re-executes the memfd copy (nsenter/cloned_binary.c), all as host root;
 * - stage 1 (nsenter/nsexec.c STAGE_CHILD) joins or unshares the namespaces; with a new user namespace it calls
 *   setresuid(0, 0, 0) to become root in it; it is still in the host's PID namespace;
 * - stage 2 (STAGE_INIT), forked into the container's PID namespace, calls setuid(0) and setgid(0) for every container;
 * - the Go init (libcontainer/init_linux.go finalizeNamespace -> setupUser) calls setgroups, setgid(gid) and
 *   setuid(uid) with the raw syscalls (libcontainer/system/syscall_linux_64.go), still holding every capability
 *   (it drops them after, ApplyCaps), then execs the container's executable (standard_init_linux.go / setns_init_linux.go).
 */
export function runcInitSteps(process: ContainerProcess, verb: 'create' | 'exec'): ProcessStep[] {
  const container = process.name;
  const inContainer: Partial<Record<NamespaceKind, NamespaceId>> = {
    Mnt: container,
    Uts: container,
    Ipc: container,
    Cgroup: container,
    ...(process.hostNetwork === true ? {} : { Net: container }),
  };
  // Until it execs, runc's init keeps the mm it was started with, so Tetragon's User namespace stays the host's even
  // once its credentials are in the container's user namespace (cred->user_ns).
  const userNamespaceLevel = process.userNamespaceRoot === undefined ? 0 : 1;
  const host: TracedTask = { binary: '/usr/bin/containerd-shim-runc-v2', namespaces: namespaces({}), cred: ROOT, capabilities: ALL_CAPABILITIES };
  const runc: TracedTask = { ...host, binary: RUNC_BINARY };
  const runcInit: TracedTask = { ...host, binary: RUNC_INIT_BINARY };
  const steps: ProcessStep[] = [
    ...execSteps(host, runc, RUNC_BINARY, `runc ${verb}`),
    ...execSteps(runc, runc, '/proc/self/exe', 'runc init (libcontainer/factory_linux.go InitPath)'),
    ...execSteps(runc, runcInit, '/dev/fd/3', 'runc init re-executing its memfd copy (nsenter/cloned_binary.c)', 'execveat'),
  ];
  // Stage 1 stays in the host's PID namespace (a task never changes its own); it may be in the container's user namespace.
  const stage1: TracedTask = { ...runcInit, namespaces: namespaces({ ...inContainer, PidForChildren: process.hostPid === true ? HOST_NAMESPACE : container }), cred: { ...ROOT, userNamespaceLevel } };
  // After setresuid(0, 0, 0) in a new user namespace the task's ids are its root's, mapped to an unprivileged host uid.
  const mappedRoot = process.userNamespaceRoot ?? 0;
  const inUserNamespace = { uid: mappedRoot, euid: mappedRoot, gid: mappedRoot, egid: mappedRoot, userNamespaceLevel };
  if (process.userNamespaceRoot !== undefined) {
    steps.push(...idCall('setresuid', [0, 0, 0]).map((call) => ({ task: stage1, call, where: 'runc init stage 1 becoming root in the new user namespace (nsenter/nsexec.c)' })));
  }
  const pid = process.hostPid === true ? HOST_NAMESPACE : container;
  const stage2: TracedTask = { ...runcInit, namespaces: namespaces({ ...inContainer, Pid: pid, PidForChildren: pid }), cred: process.userNamespaceRoot === undefined ? ROOT : inUserNamespace };
  for (const [name, args] of [['setuid', [0]], ['setgid', [0]], ['setgroups', [0]]] as const) {
    steps.push(...idCall(name, args).map((call) => ({ task: stage2, call, where: 'runc init stage 2 in the container (nsenter/nsexec.c STAGE_INIT)' })));
  }
  const { uid, gid } = process.user;
  const hostUid = process.userNamespaceRoot === undefined ? uid : mappedRoot + uid;
  const hostGid = process.userNamespaceRoot === undefined ? gid : mappedRoot + gid;
  const afterGid: TracedTask = { ...stage2, cred: { ...stage2.cred, gid: hostGid, egid: hostGid } };
  steps.push(...idCall('setgroups', [0]).map((call) => ({ task: stage2, call, where: 'runc init setupUser (libcontainer/init_linux.go)' })));
  steps.push(...idCall('setgid', [gid]).map((call) => ({ task: stage2, call, where: 'runc init setupUser (libcontainer/init_linux.go)' })));
  steps.push(...idCall('setuid', [uid]).map((call) => ({ task: afterGid, call, where: 'runc init setupUser (libcontainer/init_linux.go)' })));
  const user = { uid: hostUid, euid: hostUid, gid: hostGid, egid: hostGid, userNamespaceLevel };
  // ApplyCaps leaves the container's capabilities; the exec keeps them for root and clears them for another user
  // (no ambient or file capabilities: capabilities(7) "Transformation of capabilities during execve()").
  const asUser: TracedTask = { ...stage2, cred: user, capabilities: CONTAINERD_DEFAULT_CAPABILITIES };
  const running: TracedTask = {
    ...asUser,
    binary: process.executable,
    namespaces: { ...asUser.namespaces, ...(process.userNamespaceRoot === undefined ? {} : { User: container }) },
    capabilities: uid === 0 ? CONTAINERD_DEFAULT_CAPABILITIES : [],
  };
  steps.push(...execSteps(asUser, running, process.executable, `runc init executing ${process.executable} (standard_init_linux.go / setns_init_linux.go)`));
  return steps;
}

/** The TracingPolicies the cluster's Tetragon agents enforce: every stored one that loads (the chart runs an agent on every node). */
export function loadedPolicies(cluster: SandboxCluster): LoadedPolicy[] {
  return cluster.objects({ apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy' }).flatMap((object: JsonObject) => {
    const load = loadTracingPolicy(object);
    return 'loaded' in load ? [load.loaded] : [];
  });
}

export type ProcessOutcome = { ran: true } | { ran: false; reason: string; enforcement?: Enforcement; step?: ProcessStep };

function describeKill(enforcement: Enforcement, step: ProcessStep): string {
  const args = step.call.args.map(String).join(', ');
  const verb = enforcement.action === 'Override' ? 'failed by' : 'killed (SIGKILL) by';
  return `${step.where}: ${step.call.call}(${args}) ${verb} TracingPolicy ${enforcement.policy} (hook ${enforcement.call}, selector ${enforcement.selector})`;
}

/** Plays a process's steps under the loaded policies: the first that kills it (or fails its call) ends it. */
export function playSteps(policies: readonly LoadedPolicy[], steps: readonly ProcessStep[]): ProcessOutcome {
  const unknown: Unplayed | undefined = unplayedHooks(policies, played)[0];
  if (unknown !== undefined) return { ran: false, reason: `TracingPolicy ${unknown.policy}: ${unknown.reason}, so it cannot tell whether the process survives it` };
  for (const step of steps) {
    const outcome = enforce(policies, step.task, step.call);
    if (outcome === undefined) continue;
    if ('reason' in outcome) return { ran: false, reason: `TracingPolicy ${outcome.policy}: ${outcome.reason}` };
    // Any signal but SIGKILL is one runc's init does not handle either: it dies of it.
    return { ran: false, reason: describeKill(outcome, step), enforcement: outcome, step };
  }
  return { ran: true };
}

/**
 * Whether runc can start `process` on a machine of the cluster: undefined when it can, else why not, as containerd
 * reports a runc whose init died ("OCI runtime create failed" / "OCI runtime exec failed").
 */
export function refusedContainerStart(cluster: SandboxCluster, process: ContainerProcess, verb: 'create' | 'exec'): string | undefined {
  const policies = loadedPolicies(cluster);
  if (policies.length === 0) return undefined;
  const outcome = playSteps(policies, runcInitSteps(process, verb));
  if (outcome.ran) return undefined;
  return `OCI runtime ${verb} failed for ${process.name}: runc init did not finish: ${outcome.reason}`;
}

/**
 * Why a control plane machine's kubelet cannot bring up kubeadm's static pods through runc (etcd first, as kubeadm
 * join --control-plane waits for its member), or undefined when all of them start.
 */
export function refusedStaticPods(cluster: SandboxCluster): string | undefined {
  for (const pod of Object.values(STATIC_POD_CONTAINERS)) {
    const refused = refusedContainerStart(cluster, pod, 'create');
    if (refused !== undefined) return refused;
  }
  return undefined;
}
