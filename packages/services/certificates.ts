import { ConflictError, KUBERNETES_RELEASES, type Operation, WORKFLOW_STEPS, phaseChange, workflowOf } from '#core';
import type { ClusterRecord } from '#store';
import { assertIdle, findCluster, launch, newOperation } from './clusters.ts';
import type { KilnServices } from './context.ts';
import { clustersOnKubernetesMinor } from './kubernetes-versions.ts';
import { plannedMachines } from './plan.ts';
import { operationView } from './views.ts';

/**
 * Certificates that expire within this many days are renewed by the daily schedule: kubeadm issues a machine's
 * certificates for a year, so a control plane renewed this way is renewed about every eleven months, with a month
 * of daily retries before anything expires.
 */
export const CERTIFICATE_RENEWAL_DAYS = 30;

/**
 * Renews the certificates of the cluster's control plane: its machines are replaced one at a time (a new one joins,
 * with certificates kubeadm makes for a year, before an old one leaves), so etcd keeps its quorum and the API server
 * stays reachable; the verify step then records the new expiry in `status.certificates`. Kubelets renew their own
 * client certificates; the cluster CA is not rotated. Asking again while a renewal runs answers with that renewal
 * (`started: false`) rather than a second one.
 */
export async function renewCertificates(services: KilnServices, tenantId: string, clusterId: string): Promise<{ operation: Operation; started: boolean }> {
  const cluster = await findCluster(services, tenantId, clusterId);
  const active = cluster.status.activeOperationId === undefined ? undefined : await services.store.getOperation(tenantId, cluster.status.activeOperationId);
  if (active?.type === 'renew-certificates' && (active.state === 'pending' || active.state === 'running')) return { operation: operationView(active), started: false };
  assertIdle(cluster, 'renew its certificates');
  if (cluster.status.phase !== 'Ready' && cluster.status.phase !== 'Failed') {
    throw new ConflictError(`Certificates are renewed on a Ready cluster; this one is ${cluster.status.phase}.`);
  }
  if (cluster.machineGroups === undefined) throw new ConflictError('The cluster has no machines yet: its certificates are made when they join.');
  const now = new Date().toISOString();
  const steps = WORKFLOW_STEPS['renew-certificates'];
  const operation = newOperation(tenantId, clusterId, 'renew-certificates', now, [], await plannedMachines(services, cluster, cluster.spec, 'renew-certificates', steps), services.requestId);
  const renewing: ClusterRecord = { ...cluster, status: { ...cluster.status, phase: 'Updating', activeOperationId: operation.id } };
  await services.store.beginOperation(renewing, cluster.version, operation, undefined, phaseChange(clusterId, cluster.status.phase, 'Updating'));
  await launch(services, workflowOf('renew-certificates'), operation);
  return { operation: operationView(operation), started: true };
}

export interface ScheduledRenewals {
  started: string[];
  /** Due, but busy or not Ready: tried again on the next run. */
  deferred: string[];
}

/** Whether the earliest certificate Kiln saw on the cluster expires within the renewal threshold of `now`. */
export function certificatesDue(cluster: ClusterRecord, now: Date): boolean {
  const earliest = cluster.status.certificates?.earliestExpiresAt;
  return earliest !== undefined && Date.parse(earliest) - now.getTime() <= CERTIFICATE_RENEWAL_DAYS * 86_400_000;
}

/**
 * The daily check: starts a renewal for every live cluster whose earliest certificate expires within
 * CERTIFICATE_RENEWAL_DAYS of `now`, reading the live clusters a page at a time by the minor they run.
 */
export async function startDueCertificateRenewals(services: KilnServices, now = new Date()): Promise<ScheduledRenewals> {
  const report: ScheduledRenewals = { started: [], deferred: [] };
  for (const release of KUBERNETES_RELEASES) {
    for await (const cluster of clustersOnKubernetesMinor(services, release.minor)) {
      if (!certificatesDue(cluster, now)) continue;
      try {
        const { started } = await renewCertificates(services, cluster.tenantId, cluster.id);
        (started ? report.started : report.deferred).push(cluster.id);
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        report.deferred.push(cluster.id);
      }
    }
  }
  if (report.started.length + report.deferred.length > 0) services.log.info('scheduled certificate renewals', { ...report });
  return report;
}
