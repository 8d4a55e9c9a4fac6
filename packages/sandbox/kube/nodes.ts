import { randomBytes } from 'node:crypto';
import { MACHINE_OS_RELEASES, type MachineOsRelease, machineOsReleaseOf } from '#core';
import type { ResourceType } from './catalog.ts';
import { type JsonObject, arrayAt, ensureObject, isObject, stringAt } from './json.ts';
import type { Scope } from './fields.ts';

export type NodeRole = 'control-plane' | 'worker';
export type NodeConditionStatus = 'True' | 'False' | 'Unknown';

export interface NodeTaint {
  key: string;
  value?: string;
  effect: string;
}

/** What a kubelet knows when it joins: its name and the labels and taints kubeadm's join configuration gave it. */
export interface NodeRegistration {
  name: string;
  role: NodeRole;
  /** Becomes the `kiln.dev/pool` label. */
  pool?: string;
  labels?: Record<string, string>;
  /** Defaults to the kubeadm control-plane taint for control-plane nodes and to none for workers. */
  taints?: NodeTaint[];
  /** Whether the kubelet reports itself healthy at once (default true); false starts the node NotReady. */
  ready?: boolean;
  /**
   * Whether a CNI configuration is already on the machine (default true, for tests that register networked nodes).
   * Without one the kubelet reports NotReady however healthy it is, until `installCni` (see KubeletSimulator).
   */
  cni?: boolean;
  /** Defaults to the cluster's Kubernetes version. */
  kubeletVersion?: string;
  internalIP?: string;
  providerID?: string;
}

/**
 * The cloud kernel each release's images boot (`uname -r` of linux-image-cloud-amd64: trixie's Packages index, 13.8,
 * has 6.12.117-1 depending on linux-image-6.12.117+deb13-cloud-amd64).
 */
const CLOUD_KERNELS: Readonly<Record<string, string>> = { bookworm: '6.1.0-28-cloud-amd64', trixie: '6.12.117+deb13-cloud-amd64' };

/**
 * What a machine built on a given day runs: the release the infrastructure step gives machines that day (the
 * supported-versions table), the containerd it ships as the CRI Version call reports it, the kernel its image boots.
 */
function machineOsOn(now: string): { os: MachineOsRelease; kernel: string } {
  // No machine is built on a day without one; a node registered then (a test's clock) runs the newest there is.
  const os = machineOsReleaseOf(new Date(now)) ?? MACHINE_OS_RELEASES.at(-1);
  if (os === undefined) throw new Error('the supported-versions table names no machine OS release');
  return { os, kernel: CLOUD_KERNELS[os.codename] ?? 'unknown' };
}

export const POOL_LABEL = 'kiln.dev/pool';
export const CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane';
const CONTROL_PLANE_TAINT: NodeTaint = { key: CONTROL_PLANE_LABEL, effect: 'NoSchedule' };
const NOT_READY_TAINT = 'node.kubernetes.io/not-ready';
const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';

interface ConditionSpec {
  reason: string;
  message: string;
}

/** The kubelet's own wording for each condition when all is well, and for Ready going False. */
const HEALTHY: Record<string, ConditionSpec & { status: NodeConditionStatus }> = {
  NetworkUnavailable: { status: 'False', reason: 'CiliumIsUp', message: 'Cilium is running on this node' },
  MemoryPressure: { status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' },
  DiskPressure: { status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
  PIDPressure: { status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
  Ready: { status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
};
/**
 * What a kubelet reports while no CNI configuration is on its machine: kubernetes/kubernetes@v1.35.9
 * pkg/kubelet/kubelet.go (`runtimeState.networkErrors` -> "container runtime network not ready: NetworkReady=false
 * reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized", from containerd's
 * CRI status) and pkg/kubelet/nodestatus/setters.go ReadyCondition.
 */
const NETWORK_NOT_READY: ConditionSpec = {
  reason: 'KubeletNotReady',
  message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized',
};
/** What it reports when its container runtime is not healthy (the sandbox's chaos "kubelet stopped"). */
const RUNTIME_NOT_READY: ConditionSpec = {
  reason: 'KubeletNotReady',
  message: 'container runtime is down',
};

/** Whether a Ready condition says only that the network plugin is not ready: the kubelet runs, and starts host-network pods. */
export function onlyNetworkNotReady(condition: JsonObject | undefined): boolean {
  return condition?.status === 'False' && condition.message === NETWORK_NOT_READY.message;
}

/** What the kubelet itself would report, and why: its own health, then its network. */
type Reported = { status: NodeConditionStatus; notReady?: ConditionSpec };
const UNKNOWN: ConditionSpec = { reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' };

function conditionsFor(previous: JsonObject[], reported: Reported, now: string): JsonObject[] {
  const ready = reported.status;
  return Object.entries(HEALTHY).map(([type, healthy]) => {
    const before = previous.find((condition) => condition.type === type);
    let status: NodeConditionStatus = healthy.status;
    let spec: ConditionSpec = healthy;
    if (type === 'Ready' && ready === 'False') {
      status = 'False';
      spec = reported.notReady ?? RUNTIME_NOT_READY;
    }
    // The node lifecycle controller marks every kubelet-owned condition Unknown once heartbeats stop.
    if (ready === 'Unknown' && type !== 'NetworkUnavailable') {
      status = 'Unknown';
      spec = UNKNOWN;
    }
    const unchanged = before?.status === status;
    const heartbeat = ready === 'Unknown' ? (stringAt(before, 'lastHeartbeatTime') ?? now) : now;
    return {
      type,
      status,
      lastHeartbeatTime: heartbeat,
      lastTransitionTime: unchanged ? (stringAt(before, 'lastTransitionTime') ?? now) : now,
      reason: spec.reason,
      message: spec.message,
    };
  });
}

/** The taints the node lifecycle controller keeps in step with the Ready condition. */
function lifecycleTaints(ready: NodeConditionStatus, previous: JsonObject[], now: string): JsonObject[] {
  const key = ready === 'False' ? NOT_READY_TAINT : ready === 'Unknown' ? UNREACHABLE_TAINT : undefined;
  if (key === undefined) return [];
  return ['NoSchedule', 'NoExecute'].map((effect) => {
    const taint: JsonObject = { key, effect };
    if (effect === 'NoExecute') {
      const before = previous.find((item) => item.key === key && item.effect === effect);
      taint.timeAdded = stringAt(before, 'timeAdded') ?? now;
    }
    return taint;
  });
}

function isLifecycleTaint(taint: JsonObject): boolean {
  return taint.key === NOT_READY_TAINT || taint.key === UNREACHABLE_TAINT;
}

/**
 * What the kubelets and the lifecycle controller do to the API server's objects: the ApiRegistry, named by what it
 * does here because the registry runs the controllers that read Nodes (controllers.ts imports this module).
 */
export interface NodeObjects {
  now(): string;
  get(type: ResourceType, namespace: string, name: string): JsonObject;
  writeInternal(type: ResourceType, namespace: string, name: string, manager: string, scope: Scope, change: (current: JsonObject | undefined) => JsonObject): { object: JsonObject };
  removeInternal(type: ResourceType, namespace: string, name: string): boolean;
}

/** Plays the kubelets and the node lifecycle controller of one sandbox cluster. */
export class KubeletSimulator {
  private readonly registry: NodeObjects;
  private readonly nodeType: ResourceType;
  private readonly clusterVersion: () => string;
  private nextAddress = 10;
  /** Per node: what its kubelet last said of its own health, and whether a CNI configuration is on its machine. */
  private readonly machines = new Map<string, { kubelet: NodeConditionStatus; cni: boolean }>();

  constructor(registry: NodeObjects, nodeType: ResourceType, clusterVersion: () => string) {
    this.registry = registry;
    this.nodeType = nodeType;
    this.clusterVersion = clusterVersion;
  }

  /** What a kubelet does on joining: create (or, for a known name, refresh) its Node, then report status. */
  register(registration: NodeRegistration): JsonObject {
    const now = this.registry.now();
    this.machines.set(registration.name, { kubelet: registration.ready === false ? 'False' : 'True', cni: registration.cni ?? true });
    const reported = this.reported(registration.name);
    const ready = reported.status;
    const labels: Record<string, string> = {
      'beta.kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/hostname': registration.name,
      'kubernetes.io/os': 'linux',
    };
    if (registration.role === 'control-plane') {
      labels[CONTROL_PLANE_LABEL] = '';
      labels['node.kubernetes.io/exclude-from-external-load-balancers'] = '';
    }
    if (registration.pool !== undefined) labels[POOL_LABEL] = registration.pool;
    Object.assign(labels, registration.labels ?? {});
    const taints = (registration.taints ?? (registration.role === 'control-plane' ? [CONTROL_PLANE_TAINT] : [])).map((taint) => {
      const rendered: JsonObject = { key: taint.key, effect: taint.effect };
      if (taint.value !== undefined) rendered.value = taint.value;
      return rendered;
    });
    const address = registration.internalIP ?? `10.0.${Math.floor(this.nextAddress / 250)}.${(this.nextAddress % 250) + 4}`;
    this.nextAddress++;
    const kubeletVersion = registration.kubeletVersion ?? this.clusterVersion();
    const machine = machineOsOn(now);

    this.registry.writeInternal(this.nodeType, '', registration.name, 'kubelet', 'main', (current) => {
      const node: JsonObject = current ?? { apiVersion: 'v1', kind: 'Node', metadata: { name: registration.name } };
      const metadata = ensureObject(node, 'metadata');
      metadata.labels = { ...(isObject(metadata.labels) ? metadata.labels : {}), ...labels };
      metadata.annotations = {
        ...(isObject(metadata.annotations) ? metadata.annotations : {}),
        'kubeadm.alpha.kubernetes.io/cri-socket': 'unix:///var/run/containerd/containerd.sock',
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
      };
      const spec = ensureObject(node, 'spec');
      spec.taints = [...taints, ...lifecycleTaints(ready, [], now)];
      if (registration.providerID !== undefined) spec.providerID = registration.providerID;
      return node;
    });
    return this.reportStatus(registration.name, reported, (status) => {
      status.addresses = [
        { type: 'InternalIP', address },
        { type: 'Hostname', address: registration.name },
      ];
      const resources = { cpu: '2', 'ephemeral-storage': '20959212Ki', 'hugepages-2Mi': '0', memory: '8129020Ki', pods: '110' };
      status.capacity = resources;
      status.allocatable = { ...resources, memory: '8026620Ki', 'ephemeral-storage': '19316009748' };
      status.daemonEndpoints = { kubeletEndpoint: { Port: 10250 } };
      status.nodeInfo = {
        machineID: randomBytes(16).toString('hex'),
        systemUUID: randomBytes(16).toString('hex'),
        bootID: randomBytes(16).toString('hex'),
        kernelVersion: machine.kernel,
        osImage: machine.os.prettyName,
        containerRuntimeVersion: `containerd://${machine.os.containerd.version}`,
        kubeletVersion,
        kubeProxyVersion: kubeletVersion,
        operatingSystem: 'linux',
        architecture: 'amd64',
      };
    });
  }

  /**
   * The kubelet's own health (True, False) or the node lifecycle controller's verdict when it stops posting (Unknown).
   * A healthy kubelet still reports NotReady while its machine has no CNI configuration.
   */
  setReady(name: string, kubelet: NodeConditionStatus): JsonObject {
    if (this.find(name) === undefined) throw new Error(`sandbox node ${name} is not registered`);
    const machine = this.machines.get(name) ?? { kubelet, cni: true };
    this.machines.set(name, { ...machine, kubelet });
    return this.report(name);
  }

  /**
   * A CNI plugin wrote its configuration into the machine's /etc/cni/net.d: the kubelet's next status sync finds
   * the network ready (kubernetes/kubernetes@v1.35.9 pkg/kubelet/kubelet.go updateRuntimeUp, from containerd's CRI
   * status). The file stays on disk across reboots.
   */
  installCni(name: string): JsonObject | undefined {
    const machine = this.machines.get(name);
    if (machine === undefined || machine.cni || this.find(name) === undefined) return undefined;
    machine.cni = true;
    return this.report(name);
  }

  /** Nodes whose kubelet runs (it posts status) on a machine without a CNI configuration yet. */
  awaitingCni(): string[] {
    return [...this.machines].filter(([name, machine]) => !machine.cni && machine.kubelet !== 'Unknown' && this.find(name) !== undefined).map(([name]) => name);
  }

  private reported(name: string): Reported {
    const machine = this.machines.get(name);
    if (machine === undefined) return { status: 'True' };
    if (machine.kubelet === 'True' && !machine.cni) return { status: 'False', notReady: NETWORK_NOT_READY };
    return { status: machine.kubelet };
  }

  private report(name: string): JsonObject {
    const reported = this.reported(name);
    const ready = reported.status;
    const now = this.registry.now();
    this.registry.writeInternal(this.nodeType, '', name, 'kube-controller-manager', 'main', (current) => {
      const node = current ?? {};
      const spec = ensureObject(node, 'spec');
      const previous = arrayAt(spec, 'taints').filter(isObject);
      const taints = [...previous.filter((taint) => !isLifecycleTaint(taint)), ...lifecycleTaints(ready, previous, now)];
      if (taints.length === 0) delete spec.taints;
      else spec.taints = taints;
      return node;
    });
    return this.reportStatus(name, reported, () => undefined);
  }

  remove(name: string): boolean {
    this.machines.delete(name);
    return this.registry.removeInternal(this.nodeType, '', name);
  }

  find(name: string): JsonObject | undefined {
    try {
      return this.registry.get(this.nodeType, '', name);
    } catch {
      return undefined;
    }
  }

  private reportStatus(name: string, reported: Reported, fill: (status: JsonObject) => void): JsonObject {
    const now = this.registry.now();
    const manager = reported.status === 'Unknown' ? 'kube-controller-manager' : 'kubelet';
    return this.registry.writeInternal(this.nodeType, '', name, manager, 'status', (current) => {
      const node = current ?? {};
      const status = ensureObject(node, 'status');
      status.conditions = conditionsFor(arrayAt(status, 'conditions').filter(isObject), reported, now);
      fill(status);
      return node;
    }).object;
  }
}
