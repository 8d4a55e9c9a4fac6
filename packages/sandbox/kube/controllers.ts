import { createHash } from 'node:crypto';
import type { ResourceType } from './catalog.ts';
import { type Json, type JsonObject, arrayAt, isObject, numberAt, objectAt, stringAt, stringMap, stringsAt } from './json.ts';
import { onlyNetworkNotReady } from './nodes.ts';
import { nameOf } from './store.ts';

/** What the stand-in controllers need to know about a node to decide where pods would run. */
export interface NodeView {
  name: string;
  labels: Record<string, string>;
  taints: JsonObject[];
  ready: boolean;
  /** NotReady only because no CNI is configured yet: its kubelet runs host-network pods and no others. */
  awaitingNetwork: boolean;
  unschedulable: boolean;
}

export function nodeView(node: JsonObject): NodeView {
  const spec = objectAt(node, 'spec');
  const status = objectAt(node, 'status');
  const readyCondition = arrayAt(status, 'conditions').find((condition): condition is JsonObject => isObject(condition) && condition.type === 'Ready');
  return {
    name: nameOf(node),
    labels: stringMap(objectAt(node, 'metadata')?.labels),
    taints: arrayAt(spec, 'taints').filter(isObject),
    ready: readyCondition?.status === 'True',
    awaitingNetwork: onlyNetworkNotReady(readyCondition),
    unschedulable: spec?.unschedulable === true,
  };
}

/**
 * Whether the node's kubelet starts a pod of this template: on a Ready node any pod; while the network plugin is
 * not ready, only host-network pods (kubernetes/kubernetes@v1.35.9 pkg/kubelet/kubelet.go SyncPod: "network is not
 * ready" unless `kubecontainer.IsHostNetworkPod(pod)`).
 */
function runsOn(podSpec: JsonObject | undefined, node: NodeView): boolean {
  return node.ready || (node.awaitingNetwork && podSpec?.hostNetwork === true);
}

const BLOCKING_EFFECTS = ['NoSchedule', 'NoExecute'];

function tolerates(tolerations: readonly JsonObject[], taint: JsonObject): boolean {
  return tolerations.some((toleration) => {
    const effect = stringAt(toleration, 'effect') ?? '';
    if (effect !== '' && effect !== taint.effect) return false;
    const key = stringAt(toleration, 'key') ?? '';
    if ((stringAt(toleration, 'operator') ?? 'Equal') === 'Exists') return key === '' || key === taint.key;
    return key === taint.key && (stringAt(toleration, 'value') ?? '') === (stringAt(taint, 'value') ?? '');
  });
}

function podSpecOf(workload: JsonObject): JsonObject | undefined {
  return objectAt(objectAt(objectAt(workload, 'spec') ?? {}, 'template') ?? {}, 'spec');
}

/**
 * The tolerations the DaemonSet controller adds to every daemon pod (kubernetes/kubernetes@v1.35.9
 * pkg/controller/daemon/util/daemonset_util.go AddOrUpdateDaemonPodTolerations): not `not-ready:NoSchedule`, so a
 * daemon that must run before the node is Ready (a CNI agent) has to tolerate it itself.
 */
function daemonPodTolerations(podSpec: JsonObject | undefined): JsonObject[] {
  const added: JsonObject[] = [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
  ];
  if (podSpec?.hostNetwork === true) added.push({ key: 'node.kubernetes.io/network-unavailable', operator: 'Exists', effect: 'NoSchedule' });
  return added;
}

/**
 * The tolerations the DefaultTolerationSeconds admission plugin (on by default) gives every pod that has none of its
 * own for these taints: not-ready and unreachable NoExecute for 300 s (kubernetes/kubernetes@v1.35.9
 * plugin/pkg/admission/defaulttolerationseconds/admission.go). They let a pod be placed on a NotReady node; the
 * eviction after 300 s is not played (nor is it upstream while every node is NotReady: the node lifecycle controller's
 * full-disruption mode stops it).
 */
function defaultTolerations(tolerations: readonly JsonObject[]): JsonObject[] {
  return ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']
    .filter((key) => !tolerations.some((toleration) => stringAt(toleration, 'key') === key && (stringAt(toleration, 'effect') ?? 'NoExecute') === 'NoExecute'))
    .map((key) => ({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }));
}

/** One `matchExpressions` requirement of a node selector term (In, NotIn, Exists, DoesNotExist; Gt and Lt never match here). */
function requirementHolds(requirement: JsonObject, labels: Readonly<Record<string, string>>): boolean {
  const key = stringAt(requirement, 'key') ?? '';
  const values = stringsAt(requirement, 'values');
  const value = labels[key];
  switch (stringAt(requirement, 'operator')) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    default:
      return false;
  }
}

/**
 * `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`: the terms are OR-ed, the expressions inside
 * a term AND-ed (kubernetes/kubernetes@v1.35.9 staging/src/k8s.io/component-helpers/scheduling/corev1/nodeaffinity).
 */
function affinityHolds(podSpec: JsonObject | undefined, node: NodeView): boolean {
  const required = objectAt(objectAt(objectAt(podSpec ?? {}, 'affinity') ?? {}, 'nodeAffinity') ?? {}, 'requiredDuringSchedulingIgnoredDuringExecution');
  if (required === undefined) return true;
  return arrayAt(required, 'nodeSelectorTerms')
    .filter(isObject)
    .some((term) => arrayAt(term, 'matchExpressions').filter(isObject).every((requirement) => requirementHolds(requirement, node.labels)));
}

/** Whether a pod of this template could be placed on the node: node selector, required node affinity and NoSchedule/NoExecute taints only. */
function fits(podSpec: JsonObject | undefined, node: NodeView, daemon: boolean): boolean {
  const selector = stringMap(podSpec?.nodeSelector);
  if (Object.entries(selector).some(([key, value]) => node.labels[key] !== value)) return false;
  if (!affinityHolds(podSpec, node)) return false;
  const own = [...arrayAt(podSpec, 'tolerations').filter(isObject), ...(daemon ? daemonPodTolerations(podSpec) : [])];
  const tolerations = [...own, ...defaultTolerations(own)];
  return node.taints.every((taint) => !BLOCKING_EFFECTS.includes(stringAt(taint, 'effect') ?? '') || tolerates(tolerations, taint));
}

/** The nodes on which a pod of this workload (Deployment, StatefulSet, Job) would be placed and started. */
export function schedulableFor(workload: JsonObject, nodes: readonly NodeView[]): NodeView[] {
  const podSpec = podSpecOf(workload);
  return nodes.filter((node) => runsOn(podSpec, node) && !node.unschedulable && fits(podSpec, node, false));
}

/** Whether a daemon pod of this DaemonSet runs on the node (placed there and started by its kubelet). */
export function daemonRunsOn(daemonSet: JsonObject, node: NodeView): boolean {
  const podSpec = podSpecOf(daemonSet);
  return fits(podSpec, node, true) && runsOn(podSpec, node);
}

interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** Builds a condition, keeping its timestamps when nothing about it changed, so a no-op write stays a no-op. */
function condition(previous: JsonObject | undefined, input: ConditionInput, now: string, withUpdateTime: boolean): JsonObject {
  const before = arrayAt(previous, 'conditions').find((item) => isObject(item) && item.type === input.type);
  const prior = isObject(before) ? before : undefined;
  const sameStatus = prior?.status === input.status;
  const unchanged = sameStatus && prior.reason === input.reason && prior.message === input.message;
  const result: JsonObject = { type: input.type, status: input.status, reason: input.reason, message: input.message };
  result.lastTransitionTime = sameStatus ? (stringAt(prior, 'lastTransitionTime') ?? now) : now;
  if (withUpdateTime) result.lastUpdateTime = unchanged ? (stringAt(prior, 'lastUpdateTime') ?? now) : now;
  return result;
}

/** Kubernetes omits zero counters from workload status; so does the sandbox, so callers learn to default them. */
function counters(values: Record<string, number>): JsonObject {
  const result: JsonObject = {};
  for (const [key, value] of Object.entries(values)) if (value !== 0) result[key] = value;
  return result;
}

function templateHash(workload: JsonObject): string {
  const template = objectAt(workload, 'spec')?.template ?? null;
  return createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
}

function generationOf(object: JsonObject): number {
  return numberAt(objectAt(object, 'metadata'), 'generation') ?? 1;
}

function deploymentStatus(deployment: JsonObject, nodes: readonly NodeView[], now: string): JsonObject {
  const previous = objectAt(deployment, 'status');
  const replicas = numberAt(objectAt(deployment, 'spec'), 'replicas') ?? 1;
  const ready = schedulableFor(deployment, nodes).length > 0 ? replicas : 0;
  const available = ready >= replicas;
  const replicaSet = `${nameOf(deployment)}-${templateHash(deployment)}`;
  return {
    observedGeneration: generationOf(deployment),
    ...counters({ replicas, updatedReplicas: replicas, readyReplicas: ready, availableReplicas: ready, unavailableReplicas: replicas - ready }),
    conditions: [
      condition(
        previous,
        available
          ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
          : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' },
        now,
        true,
      ),
      condition(
        previous,
        available
          ? { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${replicaSet}" has successfully progressed.` }
          : { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: `ReplicaSet "${replicaSet}" is progressing.` },
        now,
        true,
      ),
    ],
  };
}

function statefulSetStatus(statefulSet: JsonObject, nodes: readonly NodeView[]): JsonObject {
  const replicas = numberAt(objectAt(statefulSet, 'spec'), 'replicas') ?? 1;
  const ready = schedulableFor(statefulSet, nodes).length > 0 ? replicas : 0;
  const revision = `${nameOf(statefulSet)}-${templateHash(statefulSet)}`;
  return {
    observedGeneration: generationOf(statefulSet),
    ...counters({ replicas, readyReplicas: ready, currentReplicas: replicas, updatedReplicas: replicas, availableReplicas: ready }),
    currentRevision: revision,
    updateRevision: revision,
    collisionCount: 0,
  };
}

function daemonSetStatus(daemonSet: JsonObject, nodes: readonly NodeView[]): JsonObject {
  const podSpec = podSpecOf(daemonSet);
  const desired = nodes.filter((node) => fits(podSpec, node, true));
  const ready = desired.filter((node) => runsOn(podSpec, node)).length;
  return {
    observedGeneration: generationOf(daemonSet),
    currentNumberScheduled: desired.length,
    desiredNumberScheduled: desired.length,
    numberMisscheduled: 0,
    numberReady: ready,
    ...counters({ numberAvailable: ready, updatedNumberScheduled: desired.length, numberUnavailable: desired.length - ready }),
  };
}

function jobStatus(job: JsonObject, nodes: readonly NodeView[], now: string): JsonObject {
  const previous = objectAt(job, 'status');
  const spec = objectAt(job, 'spec');
  if (spec?.suspend === true) return previous ?? {};
  if (arrayAt(previous, 'conditions').some((item) => isObject(item) && item.type === 'Complete' && item.status === 'True')) return previous ?? {};
  const startTime = stringAt(previous, 'startTime') ?? now;
  if (schedulableFor(job, nodes).length === 0) {
    return { startTime, active: numberAt(spec, 'parallelism') ?? 1, ready: 0, terminating: 0, uncountedTerminatedPods: {} };
  }
  const done = (input: ConditionInput): JsonObject => ({ ...condition(previous, input, now, false), lastProbeTime: now });
  return {
    startTime,
    completionTime: now,
    succeeded: numberAt(spec, 'completions') ?? 1,
    ready: 0,
    terminating: 0,
    uncountedTerminatedPods: {},
    conditions: [
      done({ type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' }),
      done({ type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' }),
    ],
  };
}

function crdStatus(crd: JsonObject, now: string): JsonObject {
  const previous = objectAt(crd, 'status');
  const spec = objectAt(crd, 'spec');
  const storage = arrayAt(spec, 'versions').find((version) => isObject(version) && version.storage === true);
  const storedVersions = arrayAt(previous, 'storedVersions').filter((version): version is string => typeof version === 'string');
  const storageName = isObject(storage) ? stringAt(storage, 'name') : undefined;
  if (storageName !== undefined && !storedVersions.includes(storageName)) storedVersions.push(storageName);
  const names: Json = objectAt(spec ?? {}, 'names') ?? {};
  return {
    acceptedNames: names,
    conditions: [
      condition(previous, { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found' }, now, false),
      condition(previous, { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' }, now, false),
    ],
    storedVersions,
  };
}

/**
 * The status a real controller would converge to, computed synchronously on every write (and for workloads again
 * whenever nodes change) so callers never wait for a loop. Undefined means nothing manages this type's status.
 */
export function desiredStatus(type: ResourceType, object: JsonObject, nodes: readonly NodeView[], now: string): JsonObject | undefined {
  const id = `${type.group}/${type.kind}`;
  switch (id) {
    case 'apps/Deployment':
      return deploymentStatus(object, nodes, now);
    case 'apps/StatefulSet':
      return statefulSetStatus(object, nodes);
    case 'apps/DaemonSet':
      return daemonSetStatus(object, nodes);
    case 'batch/Job':
      return jobStatus(object, nodes, now);
    case 'apiextensions.k8s.io/CustomResourceDefinition':
      return crdStatus(object, now);
    case '/Namespace':
      return { phase: 'Active' };
    case '/Service':
      return { loadBalancer: {} };
    default:
      return undefined;
  }
}

/** Types whose status depends on the nodes, re-derived whenever a node changes. */
export function dependsOnNodes(type: ResourceType): boolean {
  return (type.group === 'apps' && ['Deployment', 'StatefulSet', 'DaemonSet'].includes(type.kind)) || (type.group === 'batch' && type.kind === 'Job');
}
