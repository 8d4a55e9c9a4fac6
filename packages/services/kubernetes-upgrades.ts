import { type ClusterSpec, ConflictError, KUBERNETES_RELEASES, WEEKDAYS, clusterEvent, kubernetesUpgradeProblem, nextKubernetesMinor } from '#core';
import type { ClusterRecord } from '#store';
import type { KilnServices } from './context.ts';
import { clustersOnKubernetesMinor } from './kubernetes-versions.ts';
import { updateClusterSpec } from './updates.ts';

type MaintenanceWindow = ClusterSpec['maintenance']['window'];

/**
 * Whether `now` is inside the maintenance window: it opens at `start` (UTC) on each of its days and stays open for
 * durationMinutes, past midnight too (that time belongs to the day it opened).
 */
export function insideMaintenanceWindow(window: MaintenanceWindow, now: Date): boolean {
  const [hours = 0, minutes = 0] = window.start.split(':').map(Number);
  return [0, 1].some((daysBack) => {
    const opened = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - daysBack, hours, minutes);
    const day = WEEKDAYS[(new Date(opened).getUTCDay() + 6) % 7];
    return day !== undefined && window.days.includes(day) && now.getTime() >= opened && now.getTime() < opened + window.durationMinutes * 60_000;
  });
}

export interface ScheduledUpgrades {
  started: string[];
  /** Due, but busy or outside Ready: tried again on the next run inside the window. */
  deferred: string[];
  /** Past end of life with autoUpdate on, but the next minor cannot be taken today, and why. */
  blocked: { clusterId: string; reason: string }[];
}

function busy(cluster: ClusterRecord): boolean {
  return cluster.status.phase !== 'Ready' || cluster.status.activeOperationId !== undefined || (cluster.status.remediations?.length ?? 0) > 0;
}

/**
 * The scheduled check (every 15 minutes, so no window of 30 minutes or more is missed): a cluster whose minor is past
 * its end of life, with maintenance.autoUpdate on, is upgraded to the next minor once its maintenance window is open.
 * A `cluster.kubernetes_upgrade_starting` event says so before the update starts; the update is the one a PATCH of
 * kubernetesVersion starts. A next minor Kiln does not offer today blocks it (the report says why, and the cluster's
 * KubernetesVersionUnsupported condition already tells its owner).
 */
export async function startDueKubernetesUpgrades(services: KilnServices, now = new Date()): Promise<ScheduledUpgrades> {
  const report: ScheduledUpgrades = { started: [], deferred: [], blocked: [] };
  const today = now.toISOString().slice(0, 10);
  for (const release of KUBERNETES_RELEASES.filter((candidate) => today > candidate.endOfLife)) {
    const to = nextKubernetesMinor(release.minor);
    const problem = kubernetesUpgradeProblem(release.minor, to, now);
    for await (const cluster of clustersOnKubernetesMinor(services, release.minor)) {
      if (!cluster.spec.maintenance.autoUpdate || !insideMaintenanceWindow(cluster.spec.maintenance.window, now)) continue;
      if (problem !== undefined) {
        report.blocked.push({ clusterId: cluster.id, reason: problem });
        continue;
      }
      if (busy(cluster)) {
        report.deferred.push(cluster.id);
        continue;
      }
      await services.store.appendEvents(cluster.tenantId, [
        clusterEvent('cluster.kubernetes_upgrade_starting', cluster.id, { from: release.minor, to, reason: 'EndOfLife', endOfLife: release.endOfLife, window: cluster.spec.maintenance.window }, now),
      ]);
      try {
        await updateClusterSpec(services, cluster.tenantId, cluster.id, { kubernetesVersion: to });
        report.started.push(cluster.id);
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        report.deferred.push(cluster.id);
      }
    }
  }
  if (report.started.length + report.deferred.length + report.blocked.length > 0) services.log.info('scheduled kubernetes upgrades', { ...report });
  return report;
}
