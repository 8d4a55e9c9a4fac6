import type { ResourceCatalog, ResourceType } from './catalog.ts';
import { type JsonObject, arrayAt, isObject, objectAt, stringAt, stringMap } from './json.ts';
import type { ApiRegistry } from './registry.ts';
import { matchesLabelSelectorObject } from './selectors.ts';
import { KubeApiError, badRequest } from './status.ts';
import { nameOf } from './store.ts';

/** What the eviction subresource answers: a Status, with the HTTP code it carries. */
export interface EvictionOutcome {
  code: number;
  status: JsonObject;
  /** Whether the pod was deleted (false for refusals and dry runs). */
  mutated: boolean;
}

/** A PodDisruptionBudget's status as the disruption controller would have written it just now. */
interface BudgetStatus {
  desiredHealthy: number;
  currentHealthy: number;
  disruptionsAllowed: number;
}

const EVICTION_VERSIONS = ['policy/v1', 'policy/v1beta1'];
const MORE_THAN_ONE_BUDGET = 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.';
const WOULD_VIOLATE_BUDGET = "Cannot evict pod as it would violate the pod's disruption budget.";

function phaseOf(pod: JsonObject): string | undefined {
  return stringAt(objectAt(pod, 'status'), 'phase');
}

/** podutil.IsPodReady: the Ready condition is True. */
function isReady(pod: JsonObject): boolean {
  return arrayAt(objectAt(pod, 'status'), 'conditions').some((condition) => isObject(condition) && condition.type === 'Ready' && condition.status === 'True');
}

function isTerminating(pod: JsonObject): boolean {
  return objectAt(pod, 'metadata')?.deletionTimestamp !== undefined;
}

/**
 * canIgnorePDB upstream: pods that are pending, finished or already terminating are deleted without consulting any
 * budget. Only an explicit phase counts: the sandbox does not default a new pod's phase to Pending as upstream does.
 */
function budgetDoesNotApply(pod: JsonObject): boolean {
  const phase = phaseOf(pod);
  return phase === 'Pending' || phase === 'Succeeded' || phase === 'Failed' || isTerminating(pod);
}

/** The budget's selector, or undefined when it matches nothing: upstream eviction ignores nil and empty selectors. */
function selectorOf(budget: JsonObject): JsonObject | undefined {
  const selector = objectAt(objectAt(budget, 'spec') ?? {}, 'selector');
  if (selector === undefined) return undefined;
  const empty = Object.keys(stringMap(selector.matchLabels)).length === 0 && arrayAt(selector, 'matchExpressions').length === 0;
  return empty ? undefined : selector;
}

function selects(budget: JsonObject, pod: JsonObject): boolean {
  const selector = selectorOf(budget);
  return selector !== undefined && matchesLabelSelectorObject(selector, stringMap(objectAt(pod, 'metadata')?.labels));
}

/** intstr.GetScaledValueFromIntOrPercent with roundUp, as the disruption controller calls it for both fields. */
function scaled(value: unknown, total: number): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  const percent = typeof value === 'string' ? /^(\d+)%$/.exec(value) : null;
  if (percent === null) return undefined;
  return Math.ceil((Number(percent[1]) * total) / 100);
}

/**
 * What the disruption controller computes for one budget (getExpectedPodCount, countHealthyPods, updatePdbStatus).
 * The expected count is the number of matching pods: upstream takes the controllers' scale for maxUnavailable and
 * percentage minAvailable, but the sandbox runs no pods for workloads, so the pods that exist are the expectation.
 * A spec the controller cannot compute leaves it failing safe: no disruptions allowed, healthy counts still zero.
 */
function budgetStatus(budget: JsonObject, pods: readonly JsonObject[]): BudgetStatus {
  const spec = objectAt(budget, 'spec') ?? {};
  const expected = pods.length;
  let desiredHealthy = 0;
  if (spec.maxUnavailable !== undefined) {
    const maxUnavailable = scaled(spec.maxUnavailable, expected);
    if (maxUnavailable === undefined) return { desiredHealthy: 0, currentHealthy: 0, disruptionsAllowed: 0 };
    desiredHealthy = Math.max(expected - maxUnavailable, 0);
  } else if (spec.minAvailable !== undefined) {
    const minAvailable = scaled(spec.minAvailable, expected);
    if (minAvailable === undefined) return { desiredHealthy: 0, currentHealthy: 0, disruptionsAllowed: 0 };
    desiredHealthy = minAvailable;
  }
  const currentHealthy = pods.filter((pod) => !isTerminating(pod) && isReady(pod)).length;
  const disruptionsAllowed = expected <= 0 ? 0 : Math.max(currentHealthy - desiredHealthy, 0);
  return { desiredHealthy, currentHealthy, disruptionsAllowed };
}

function success(): EvictionOutcome {
  return { code: 201, status: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 }, mutated: false };
}

function checkEvictionBody(body: JsonObject, namespace: string, name: string): void {
  const { apiVersion, kind } = body;
  const versionAccepted = apiVersion === undefined || (typeof apiVersion === 'string' && EVICTION_VERSIONS.includes(apiVersion));
  if (!versionAccepted || (kind !== undefined && kind !== 'Eviction')) {
    throw badRequest(`the pods/eviction subresource accepts a policy/v1 or policy/v1beta1 Eviction, not ${JSON.stringify(apiVersion)} ${JSON.stringify(kind)}`);
  }
  const metadata = objectAt(body, 'metadata') ?? {};
  if (stringAt(metadata, 'name') !== name) throw badRequest('name in URL does not match name in Eviction object');
  const declaredNamespace = stringAt(metadata, 'namespace') ?? '';
  if (declaredNamespace !== '' && declaredNamespace !== namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
}

/**
 * POST pods/{name}/eviction, after pkg/registry/core/pod/storage/eviction.go: a pod one budget guards is deleted only
 * while that budget allows a disruption; an unready pod also while the application is otherwise healthy
 * (IfHealthyBudget, the default) or always (AlwaysAllow). The budget's status is computed on the spot, as the
 * sandbox runs no disruption controller, so nothing records the disruption in it either.
 */
export function evictPod(registry: ApiRegistry, catalog: ResourceCatalog, namespace: string, name: string, body: JsonObject, dryRunQuery: boolean): EvictionOutcome {
  const podType = catalog.find('', 'v1', 'pods');
  const budgetType = catalog.find('policy', 'v1', 'poddisruptionbudgets');
  if (podType === undefined || budgetType === undefined) throw new Error('the sandbox catalog lacks pods or poddisruptionbudgets');
  checkEvictionBody(body, namespace, name);
  const deleteOptions = objectAt(body, 'deleteOptions') ?? {};
  const dryRun = dryRunQuery || arrayAt(deleteOptions, 'dryRun').includes('All');
  const pod = registry.get(podType, namespace, name);
  const evict = (): EvictionOutcome => ({ ...success(), mutated: registry.delete(podType, namespace, name, deleteOptions, dryRun).mutated });

  if (budgetDoesNotApply(pod)) return evict();
  const budgets = itemsOf(registry, budgetType, namespace).filter((budget) => selects(budget, pod));
  if (budgets.length > 1) {
    return { code: 500, status: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: MORE_THAN_ONE_BUDGET, code: 500 }, mutated: false };
  }
  const [budget] = budgets;
  if (budget === undefined) return evict();

  const status = budgetStatus(budget, itemsOf(registry, podType, namespace).filter((candidate) => selects(budget, candidate)));
  if (!isReady(pod)) {
    if (objectAt(budget, 'spec')?.unhealthyPodEvictionPolicy === 'AlwaysAllow') return evict();
    // IfHealthyBudget: an unready pod may go while the rest of the application is as healthy as the budget asks.
    if (status.currentHealthy >= status.desiredHealthy && status.desiredHealthy > 0) return evict();
  }
  if (status.disruptionsAllowed === 0) {
    throw new KubeApiError(429, 'TooManyRequests', WOULD_VIOLATE_BUDGET, {
      causes: [
        {
          reason: 'DisruptionBudget',
          message: `The disruption budget ${nameOf(budget)} needs ${status.desiredHealthy} healthy pods and has ${status.currentHealthy} currently`,
        },
      ],
    });
  }
  return evict();
}

function itemsOf(registry: ApiRegistry, type: ResourceType, namespace: string): JsonObject[] {
  return arrayAt(registry.list(type, namespace, {}), 'items').filter(isObject);
}
