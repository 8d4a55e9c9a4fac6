import { ApiException, CoreV1Api, type KubeConfig, PatchStrategy, type V1Pod, V1Eviction, setHeaderOptions } from '@kubernetes/client-node';

/** Where one drain pass left a node; `remaining === 0` means nothing is left to wait for. */
export interface DrainProgress {
  /** `namespace/name` of pods this pass evicted. */
  evicted: string[];
  /** Pods a PodDisruptionBudget keeps for now (429), with the API server's reason. */
  blocked: { pod: string; reason: string }[];
  /** `namespace/name` of pods already shutting down. */
  terminating: string[];
  /**
   * Pods still on the node: blocked, terminating and those evicted in this pass, which a real API server only marks
   * for deletion. So a pass that evicts the last pods reports them, and the next pass (once they are gone) 0.
   */
  remaining: number;
}

const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

function statusCodeOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** The Status message of a refused eviction, with its causes (which name the budget and its counts). */
function refusalReason(error: unknown): string {
  const body: unknown = error instanceof ApiException && typeof error.body === 'string' ? safeParse(error.body) : undefined;
  if (typeof body !== 'object' || body === null) return 'eviction refused (429)';
  const { message, details } = body as { message?: unknown; details?: { causes?: { message?: unknown }[] } };
  const causes = (details?.causes ?? []).map((cause) => cause.message).filter((text): text is string => typeof text === 'string');
  return [typeof message === 'string' ? message : 'eviction refused (429)', ...causes].join(' ');
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

function isFinished(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** kubectl drain's daemonSetFilter: the DaemonSet controller would put the pod straight back, so it stays (unless finished). */
function isDaemonSetPod(pod: V1Pod): boolean {
  const controller = pod.metadata?.ownerReferences?.find((reference) => reference.controller === true);
  return controller?.kind === 'DaemonSet' && controller.apiVersion === 'apps/v1' && !isFinished(pod);
}

/** kubectl drain's mirrorPodFilter: the kubelet runs static pods from files; the API object is only a mirror. */
function isMirrorPod(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined;
}

/** Marks the Node unschedulable (as `kubectl cordon`, a strategic merge patch). False when there is no such Node. */
export async function cordonNode(config: KubeConfig, nodeName: string): Promise<boolean> {
  const core = config.makeApiClient(CoreV1Api);
  try {
    await core.patchNode({ name: nodeName, body: { spec: { unschedulable: true } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    return true;
  } catch (error) {
    if (statusCodeOf(error) === 404) return false;
    throw error;
  }
}

/**
 * One pass of `kubectl drain --ignore-daemonsets --delete-emptydir-data --force`, without waiting: the caller polls.
 * Pods are evicted through the Eviction API, so PodDisruptionBudgets hold them (429) until they allow it.
 * DaemonSet and mirror pods stay, as in kubectl, except that a DaemonSet pod whose DaemonSet is gone stays too
 * (kubectl --force would delete it): nothing would recreate it elsewhere, and it ends with the machine. Pods with
 * emptyDir volumes and pods no controller owns are evicted: the machine is being replaced, so their local data and
 * the pods themselves would be lost anyway. Pods already terminating are only waited for.
 */
export async function drainNode(config: KubeConfig, nodeName: string): Promise<DrainProgress> {
  const core = config.makeApiClient(CoreV1Api);
  const pods = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` });
  const progress: DrainProgress = { evicted: [], blocked: [], terminating: [], remaining: 0 };
  for (const pod of pods.items) {
    if (isDaemonSetPod(pod) || isMirrorPod(pod)) continue;
    if (pod.metadata?.deletionTimestamp !== undefined) {
      progress.terminating.push(podKey(pod));
      continue;
    }
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    const eviction = Object.assign(new V1Eviction(), { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } });
    try {
      await core.createNamespacedPodEviction({ name, namespace, body: eviction });
      progress.evicted.push(podKey(pod));
    } catch (error) {
      const code = statusCodeOf(error);
      if (code === 404) continue;
      if (code !== 429) throw error;
      progress.blocked.push({ pod: podKey(pod), reason: refusalReason(error) });
    }
  }
  progress.remaining = progress.evicted.length + progress.blocked.length + progress.terminating.length;
  return progress;
}

/** Deletes the Node object once its machine is gone or going. False when there is no such Node. */
export async function deleteNode(config: KubeConfig, nodeName: string): Promise<boolean> {
  const core = config.makeApiClient(CoreV1Api);
  try {
    await core.deleteNode({ name: nodeName });
    return true;
  } catch (error) {
    if (statusCodeOf(error) === 404) return false;
    throw error;
  }
}
