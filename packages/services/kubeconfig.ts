import type { ClusterPkiPem } from '#bootstrap';
import { KilnError, clusterEvent } from '#core';
import { findCluster } from './clusters.ts';
import type { KilnServices } from './context.ts';

export interface IssuedKubeconfig {
  kubeconfig: string;
  expiresAt: string;
}

/**
 * A short-lived administrator kubeconfig: a fresh client certificate signed
 * by the cluster CA (unsealed only for this), valid for `validityMinutes`.
 * Every issue is logged as an audit event without the credential.
 */
export async function issueKubeconfig(services: KilnServices, tenantId: string, clusterId: string, validityMinutes: number): Promise<IssuedKubeconfig> {
  const cluster = await findCluster(services, tenantId, clusterId);
  const endpoint = cluster.status.endpoint;
  const sealedPki = cluster.sealed?.pki;
  if ((cluster.status.phase !== 'Ready' && cluster.status.phase !== 'Updating') || endpoint === undefined || sealedPki === undefined) {
    throw new KilnError('conflict', `A kubeconfig is available once the cluster is Ready; it is ${cluster.status.phase}.`);
  }
  const pki = JSON.parse(
    Buffer.from(await services.sealer.unseal(sealedPki, { tenantId, clusterId, purpose: 'pki' })).toString('utf8'),
  ) as ClusterPkiPem;
  // Signing needs an X.509 library and a YAML writer: loaded by the first kubeconfig a process issues, not at every cold start.
  const { ADMIN_GROUP, certificateAuthorityFromPem, issueAdminKubeconfig } = await import('./kubeconfig-signing.ts');
  const now = new Date();
  const kubeconfig = await issueAdminKubeconfig(
    { clusterCa: await certificateAuthorityFromPem(pki.clusterCa) },
    { endpoint, validityMinutes, clusterName: cluster.name, now },
  );
  const expiresAt = new Date(now.getTime() + validityMinutes * 60_000).toISOString();
  await services.store.appendEvents(tenantId, [clusterEvent('cluster.kubeconfig_issued', clusterId, { validUntil: expiresAt, group: ADMIN_GROUP })]);
  services.log.info('admin kubeconfig issued', { tenantId, clusterId, validUntil: expiresAt });
  return { kubeconfig, expiresAt };
}
