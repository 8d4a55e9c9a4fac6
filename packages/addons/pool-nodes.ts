import { ApiException, CoreV1Api, type KubeConfig, PatchStrategy, type V1Node, setHeaderOptions } from '@kubernetes/client-node';
import { type NodePoolSpec, StepError } from '#core';

/** The label every pool node carries from its kubelet's registration. */
export const POOL_LABEL = 'kiln.dev/pool';
/** The label keys and taints (`key:effect`) Kiln set on a node from its pool, so a later change knows what to take away. */
const MANAGED_LABELS = 'kiln.dev/pool-labels';
const MANAGED_TAINTS = 'kiln.dev/pool-taints';

interface Taint {
  key: string;
  value?: string;
  effect: string;
}

function taintKey(taint: { key: string; effect: string }): string {
  return `${taint.key}:${taint.effect}`;
}

function listed(annotation: string | undefined): Set<string> | undefined {
  return annotation === undefined ? undefined : new Set(annotation.split(',').filter((entry) => entry !== ''));
}

/**
 * The merge patch that gives a node its pool's labels and taints, or undefined when it has them. Only what Kiln
 * set before is taken away (the annotations remember it); labels and taints of others (the kubelet's, the node
 * lifecycle controller's, Cilium's) stay. Without the annotations (before Kiln first looked) nothing is taken away.
 */
export function poolNodePatch(node: V1Node, pool: NodePoolSpec): Record<string, unknown> | undefined {
  const labels = node.metadata?.labels ?? {};
  const annotations = node.metadata?.annotations ?? {};
  const taints: Taint[] = (node.spec?.taints ?? []).map((taint) => ({ key: taint.key, effect: taint.effect, ...(taint.value === undefined ? {} : { value: taint.value }) }));
  const wantedTaints: Taint[] = pool.taints.map((taint) => ({ key: taint.key, effect: taint.effect, ...(taint.value === undefined ? {} : { value: taint.value }) }));
  const wantedTaintKeys = new Set(wantedTaints.map(taintKey));
  const managedLabels = listed(annotations[MANAGED_LABELS]) ?? new Set<string>();
  const managedTaints = listed(annotations[MANAGED_TAINTS]) ?? new Set<string>();

  const labelChanges: Record<string, string | null> = {};
  for (const key of managedLabels) if (!(key in pool.labels)) labelChanges[key] = null;
  for (const [key, value] of Object.entries(pool.labels)) if (labels[key] !== value) labelChanges[key] = value;
  const nextTaints = [...taints.filter((taint) => !managedTaints.has(taintKey(taint)) && !wantedTaintKeys.has(taintKey(taint))), ...wantedTaints];
  const sameTaints = JSON.stringify(taints) === JSON.stringify(nextTaints);
  const labelAnnotation = Object.keys(pool.labels).sort().join(',');
  const taintAnnotation = [...wantedTaintKeys].sort().join(',');
  const sameAnnotations = annotations[MANAGED_LABELS] === labelAnnotation && annotations[MANAGED_TAINTS] === taintAnnotation;
  if (Object.keys(labelChanges).length === 0 && sameTaints && sameAnnotations) return undefined;
  return {
    // A conflict (the node changed since it was read, e.g. the lifecycle controller tainted it) is a 409: read again.
    metadata: { resourceVersion: node.metadata?.resourceVersion, labels: labelChanges, annotations: { [MANAGED_LABELS]: labelAnnotation, [MANAGED_TAINTS]: taintAnnotation } },
    ...(sameTaints ? {} : { spec: { taints: nextTaints } }),
  };
}

/**
 * Gives every node of each pool the pool's labels and taints as the order says now: nodes that join later have
 * them from their kubelet's registration (the launch template's JoinConfiguration), except labels NodeRestriction
 * keeps a kubelet from setting on itself (`node-role.kubernetes.io/…` and other kubernetes.io and k8s.io ones),
 * which only this sets; running nodes get a change here. Returns the nodes it changed.
 */
export async function reconcilePoolNodes(config: KubeConfig, pools: readonly NodePoolSpec[], step: string): Promise<string[]> {
  const core = config.makeApiClient(CoreV1Api);
  const changed: string[] = [];
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const nodes = (await core.listNode({ labelSelector: POOL_LABEL })).items;
    let conflicts = 0;
    for (const node of nodes) {
      const pool = pools.find((candidate) => candidate.name === node.metadata?.labels?.[POOL_LABEL]);
      const name = node.metadata?.name;
      const patch = pool === undefined || name === undefined ? undefined : poolNodePatch(node, pool);
      if (patch === undefined || name === undefined) continue;
      try {
        await core.patchNode({ name, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
        changed.push(name);
      } catch (error) {
        const code = error instanceof ApiException ? error.code : undefined;
        if (code === 404) continue;
        if (code !== 409) throw error;
        conflicts += 1;
      }
    }
    if (conflicts === 0) return changed;
  }
  throw new StepError(step, 'Nodes kept changing while their pool labels and taints were set; the step tries again.', true);
}
