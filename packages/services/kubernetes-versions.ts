import {
  type ClusterEvent,
  DEFAULT_KUBERNETES_VERSION,
  KUBERNETES_RELEASES,
  type KubernetesVersionList,
  type VersionSupportCondition,
  clusterEvent,
  offeredKubernetesReleases,
  versionSupportConditions,
} from '#core';
import { type ClusterRecord, VersionConflictError } from '#store';
import { withCondition } from './mutations.ts';
import type { KilnServices } from './context.ts';

/** What GET /v1/kubernetes-versions answers: the minors a new cluster may run today. */
export function listKubernetesVersions(now = new Date()): KubernetesVersionList {
  return {
    items: offeredKubernetesReleases(now).map((release) => ({
      version: release.minor,
      patchRelease: release.patch,
      releaseDate: release.released,
      maintenanceModeDate: release.maintenanceModeFrom,
      endOfLifeDate: release.endOfLife,
      default: release.minor === DEFAULT_KUBERNETES_VERSION,
    })),
  };
}

const EVENT_WHEN_TRUE: Record<VersionSupportCondition['type'], ClusterEvent['type']> = {
  KubernetesVersionEndOfLifeSoon: 'cluster.kubernetes_version_end_of_life_soon',
  KubernetesVersionUnsupported: 'cluster.kubernetes_version_unsupported',
};

/**
 * The cluster with its Kubernetes version conditions as of `now`; undefined
 * when they are already so, so callers write only on change.
 */
export function withVersionSupport(cluster: ClusterRecord, now: Date): ClusterRecord | undefined {
  const changed = versionSupportConditions(cluster.spec.kubernetesVersion, now).filter((next) => {
    const current = cluster.status.conditions.find((condition) => condition.type === next.type);
    return current === undefined || current.status !== next.status || current.reason !== next.reason || current.message !== next.message;
  });
  if (changed.length === 0) return undefined;
  const conditions = changed.reduce((all, next) => withCondition(all, next, now.toISOString()), cluster.status.conditions);
  return { ...cluster, status: { ...cluster.status, conditions } };
}

/** An event for each Kubernetes version condition that turned True between two states of a cluster. */
export function versionSupportEvents(before: ClusterRecord, after: ClusterRecord, now: Date): ClusterEvent[] {
  const statusOf = (cluster: ClusterRecord, type: string) => cluster.status.conditions.find((condition) => condition.type === type);
  return Object.entries(EVENT_WHEN_TRUE).flatMap(([type, eventType]) => {
    const turned = statusOf(after, type);
    if (turned?.status !== 'True' || statusOf(before, type)?.status === 'True') return [];
    return [clusterEvent(eventType, after.id, { kubernetesVersion: after.spec.kubernetesVersion, reason: turned.reason, message: turned.message }, now)];
  });
}

export interface VersionSupportReport {
  /** Clusters whose conditions changed. */
  updated: string[];
  /** Clusters busy with an operation (or changed under the check): the next run sees them again. */
  deferred: string[];
}

const PAGE_SIZE = 100;

/**
 * Every live cluster on a minor, across tenants, read a page at a time from the `KUBERNETES#<minor>` index: for the
 * scheduled checks (end of life, certificate renewal, upgrades), never for a request.
 */
export async function* clustersOnKubernetesMinor(services: KilnServices, minor: string): AsyncGenerator<ClusterRecord> {
  let after: string | undefined;
  do {
    const page = await services.store.listClustersOnKubernetesMinor(minor, { limit: PAGE_SIZE, ...(after === undefined ? {} : { after }) });
    yield* page.items;
    after = page.next;
  } while (after !== undefined);
}

/**
 * The scheduled end-of-life check: for each minor within its notice period
 * or past its end of life, every live cluster on it gets the conditions (and
 * events) that say so. Reads one index partition per such minor, writes only
 * clusters whose conditions change, and leaves busy clusters to their
 * operation (which sets the conditions when it finishes) or the next run.
 */
export async function checkKubernetesVersionSupport(services: KilnServices, now = new Date()): Promise<VersionSupportReport> {
  const report: VersionSupportReport = { updated: [], deferred: [] };
  const nearEnd = KUBERNETES_RELEASES.filter((release) => versionSupportConditions(release.minor, now).some((condition) => condition.status === 'True'));
  for (const release of nearEnd) {
    for await (const cluster of clustersOnKubernetesMinor(services, release.minor)) {
      const next = withVersionSupport(cluster, now);
      if (next === undefined) continue;
      if (cluster.status.activeOperationId !== undefined || (cluster.status.remediations?.length ?? 0) > 0 || (cluster.status.phase !== 'Ready' && cluster.status.phase !== 'Failed')) {
        report.deferred.push(cluster.id);
        continue;
      }
      try {
        await services.store.saveCluster(next, cluster.version, now, versionSupportEvents(cluster, next, now));
        report.updated.push(cluster.id);
      } catch (error) {
        if (!(error instanceof VersionConflictError)) throw error;
        report.deferred.push(cluster.id);
      }
    }
  }
  if (report.updated.length + report.deferred.length > 0) services.log.info('kubernetes version support checked', { ...report });
  return report;
}
