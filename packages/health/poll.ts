import { type NodeSummary, listNodes } from '#addons';
import { clusterObserver } from '#steps';
import { instanceIdOf } from '#bootstrap';
import { type ClusterEvent, type NodeObservation, KUBERNETES_RELEASES, clusterEvent } from '#core';
import { meterCluster, updateCluster, withCondition } from '#services';
import { type ClusterRecord, type KilnStore, VersionConflictError } from '#store';
import { type HealthDecision, type HoldReason, type MachineHealth, type ObservedMachine, type ObservedNode, type RemediationRecord, decide, groupKey } from './evaluate.ts';
import type { HealthPollServices } from './services.ts';
import { startRemediation } from './remediate.ts';

/** What polling needs: the store, and each cluster's machines in its own account and region. */

export interface HealthPollReport {
  polled: number;
  /** Clusters whose node health changed, and so were written. */
  changed: string[];
  failed: string[];
}

/** A poll gives up on an API server that has not answered by then, and counts it unreachable. */
const API_TIMEOUT_MS = 5_000;
const PAGE_SIZE = 100;
const CONCURRENCY = 8;

/** Phases whose machines the poller looks after (all are metered); a cluster being built or deleted has its own workflow watching it. */
const POLLED_PHASES: ReadonlySet<string> = new Set(['Ready', 'Updating']);

function holdSentence(hold: HoldReason): string {
  switch (hold.kind) {
    case 'ApiServerUnreachable':
      return 'The API server does not answer: no node is remediated until it does.';
    case 'TooManyUnhealthy':
      return `${hold.unhealthy} of ${hold.total} machines of ${groupKey(hold.group)} are unhealthy, more than maxUnhealthyPercent (${hold.maxUnhealthyPercent}%): nothing there is remediated until fewer are.`;
    case 'EtcdQuorumAtRisk':
      return `${hold.unhealthy} of ${hold.total} control plane machines are unhealthy: replacing one would need etcd quorum, which is lost, so none is touched.`;
    case 'RetryBudgetSpent':
      return `${groupKey(hold.group)} used its ${hold.budget} remediations of the last 24 hours: its machines keep failing and need a person.`;
  }
}

function nodeView(machine: MachineHealth): NodeObservation {
  const verdict = machine.verdict;
  return {
    ...(machine.nodeName === undefined ? {} : { name: machine.nodeName }),
    ...(machine.instanceId === undefined ? {} : { instanceId: machine.instanceId }),
    role: machine.group.role,
    ...(machine.group.role === 'worker' ? { pool: machine.group.pool } : {}),
    ...(machine.zone === undefined ? {} : { zone: machine.zone }),
    ...(machine.kubeletVersion === undefined ? {} : { kubeletVersion: machine.kubeletVersion }),
    health: verdict.state === 'healthy' ? 'Healthy' : verdict.state === 'watching' ? 'Watching' : 'Unhealthy',
    ...(verdict.state === 'healthy' ? {} : { reason: verdict.reason, since: verdict.since }),
  };
}

function observed(nodes: readonly NodeSummary[], now: Date): ObservedNode[] {
  return nodes.map((node) => {
    const instanceId = instanceIdOf(node.providerID);
    return {
      name: node.name,
      ...(instanceId === undefined ? {} : { instanceId }),
      ready: node.readyStatus,
      readySince: node.readySince ?? now.toISOString(),
      kubeletVersion: node.kubeletVersion,
      group: node.role === 'control-plane' ? { role: 'control-plane' } : { role: 'worker', pool: node.pool ?? 'unknown' },
    };
  });
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The remediations of the last day, from the cluster's operations of type remediate-node. */
async function remediationsOf(store: KilnStore, cluster: ClusterRecord, now: Date): Promise<RemediationRecord[]> {
  const page = await store.listClusterOperations(cluster.tenantId, cluster.id, { limit: 50 });
  const since = now.getTime() - 24 * 60 * 60 * 1000;
  return page.items
    .filter((operation) => operation.type === 'remediate-node' && Date.parse(operation.createdAt) >= since)
    .flatMap((operation) =>
      operation.target === undefined
        ? []
        : [{ instanceId: operation.target.instanceId, group: operation.target.group, startedAt: operation.createdAt, inFlight: operation.state === 'pending' || operation.state === 'running' }],
    );
}

/** Events for what changed: machines that turned unhealthy, and remediation pausing or resuming. */
function changes(clusterId: string, before: { nodes: readonly NodeObservation[]; holds: readonly string[] }, after: { nodes: readonly NodeObservation[]; holds: readonly string[] }, now: Date): ClusterEvent[] {
  const wasUnhealthy = new Set(before.nodes.filter((node) => node.health === 'Unhealthy').map((node) => node.instanceId ?? node.name));
  const events = after.nodes
    .filter((node) => node.health === 'Unhealthy' && !wasUnhealthy.has(node.instanceId ?? node.name))
    .map((node) => clusterEvent('node.unhealthy', clusterId, { ...node }, now));
  const newHolds = after.holds.filter((hold) => !before.holds.includes(hold));
  if (newHolds.length > 0) events.push(clusterEvent('remediation.paused', clusterId, { reasons: newHolds }, now));
  if (before.holds.length > 0 && after.holds.length === 0) events.push(clusterEvent('remediation.resumed', clusterId, {}, now));
  return events;
}

/** Starts a remediation for each machine the decision picked, each against the cluster as it is now. */
async function remediate(services: HealthPollServices, cluster: ClusterRecord, decision: HealthDecision, now: Date): Promise<void> {
  for (const machine of decision.remediate) {
    const current = await services.store.getCluster(cluster.tenantId, cluster.id);
    if (current === undefined) return;
    try {
      await startRemediation(services, current, machine, now);
    } catch (error) {
      // The cluster changed under us (another operation started): the next poll decides again.
      if (!(error instanceof VersionConflictError)) throw error;
    }
  }
}

/**
 * One look at one cluster: its Nodes from its API server, its machines from
 * Auto Scaling and EC2, the verdicts and holds of `decide`. Writes (with the
 * events) only when what it saw changed, and sets the cluster's
 * RemediationPaused condition when holds start or end.
 */
export async function pollCluster(services: HealthPollServices, cluster: ClusterRecord, now: Date, machines: readonly ObservedMachine[]): Promise<{ changed: boolean; decision: HealthDecision }> {
  if (cluster.status.endpoint === undefined) throw new Error(`cluster ${cluster.id} has no endpoint yet`);
  // Kiln's credentials first: a failure to make them (KMS) is Kiln's problem, not the API server's.
  const api = await clusterObserver(services, cluster);
  let nodes: ObservedNode[] = [];
  let apiReachable = true;
  try {
    nodes = observed(await withTimeout(listNodes(api), API_TIMEOUT_MS), now);
  } catch {
    apiReachable = false;
  }
  const decision = decide({ policy: cluster.spec.nodeHealth, apiReachable, nodes, machines, remediations: await remediationsOf(services.store, cluster, now), now });

  await remediate(services, cluster, decision, now);
  const previous = await services.store.getNodeHealth(cluster.tenantId, cluster.id);
  // While the API server is unreachable the nodes are unknown: keep the last view, add the hold.
  const view = { nodes: apiReachable ? decision.machines.map(nodeView) : (previous?.nodes ?? []), holds: decision.holds.map(holdSentence) };
  const before = { nodes: previous?.nodes ?? [], holds: previous?.holds ?? [] };
  if (JSON.stringify(before) === JSON.stringify(view)) return { changed: false, decision };

  try {
    await services.store.saveNodeHealth({ tenantId: cluster.tenantId, clusterId: cluster.id, ...view, observedAt: now.toISOString() }, previous?.version ?? 0, changes(cluster.id, before, view, now));
  } catch (error) {
    // Another poll wrote first; the next one sees what it wrote.
    if (error instanceof VersionConflictError) return { changed: false, decision };
    throw error;
  }
  if (JSON.stringify(before.holds) !== JSON.stringify(view.holds)) {
    const at = now.toISOString();
    await updateCluster(services, cluster.tenantId, cluster.id, (current) => ({
      ...current,
      status: {
        ...current.status,
        conditions: withCondition(
          current.status.conditions,
          view.holds.length > 0
            ? { type: 'RemediationPaused', status: 'True', reason: decision.holds[0]?.kind ?? 'Paused', message: view.holds.join(' ') }
            : { type: 'RemediationPaused', status: 'False', reason: 'Remediating', message: 'Unhealthy machines are remediated.' },
          at,
        ),
      },
    }));
  }
  return { changed: true, decision };
}

/**
 * The scheduled health poll: every live cluster, a page at a time through
 * its minor's index partition (no scan), a few clusters at once. A cluster
 * that fails to poll is logged and tried again next time.
 */
export async function pollNodeHealth(services: HealthPollServices, now = new Date()): Promise<HealthPollReport> {
  const report: HealthPollReport = { polled: 0, changed: [], failed: [] };
  for (const release of KUBERNETES_RELEASES) {
    let after: string | undefined;
    do {
      const page = await services.store.listClustersOnKubernetesMinor(release.minor, { limit: PAGE_SIZE, ...(after === undefined ? {} : { after }) });
      // Every cluster with machines is metered; those Ready or Updating are looked after too.
      const due = page.items.filter((cluster) => cluster.machineGroups !== undefined && cluster.status.phase !== 'Deleted');
      for (let start = 0; start < due.length; start += CONCURRENCY) {
        await Promise.all(
          due.slice(start, start + CONCURRENCY).map(async (cluster) => {
            report.polled += 1;
            try {
              const machines = await services.inCluster(cluster).fleet.machines(cluster.machineGroups ?? { controlPlane: '', pools: {} });
              await meterCluster(services, cluster, machines, now).catch((error: unknown) => {
                // Another poll metered the cluster meanwhile; the next one sees what it wrote.
                if (!(error instanceof VersionConflictError)) throw error;
              });
              if (POLLED_PHASES.has(cluster.status.phase) && cluster.status.endpoint !== undefined && (await pollCluster(services, cluster, now, machines)).changed) report.changed.push(cluster.id);
            } catch (error) {
              report.failed.push(cluster.id);
              services.log.warn('node health poll failed', { tenantId: cluster.tenantId, clusterId: cluster.id, error });
            }
          }),
        );
      }
      after = page.next;
    } while (after !== undefined);
  }
  if (report.changed.length + report.failed.length > 0) services.log.info('node health polled', { ...report });
  return report;
}
