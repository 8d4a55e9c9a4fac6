import type { ClusterPkiPem } from '#bootstrap';
import { KUBECONFIG_GROUPS, KUBECONFIG_MAX_MINUTES, KilnError, type KubeconfigAccess, clusterEvent, kubeconfigUser } from '#core';
import { findCluster } from './clusters.ts';
import type { KilnServices } from './context.ts';

export interface IssuedKubeconfig {
  kubeconfig: string;
  expiresAt: string;
}

export interface KubeconfigRequest {
  access: KubeconfigAccess;
  validityMinutes: number;
  /** The API key that asked: the certificate's user, so the cluster's audit log names it. */
  keyId?: string;
}

/**
 * A short-lived kubeconfig: a fresh client certificate signed by the cluster CA (unsealed only for this), in the
 * group of the access asked for, naming the key that asked. Every issue is an event without the credential.
 */
export async function issueKubeconfig(services: KilnServices, tenantId: string, clusterId: string, request: KubeconfigRequest): Promise<IssuedKubeconfig> {
  const { access, validityMinutes } = request;
  if (validityMinutes > KUBECONFIG_MAX_MINUTES[access]) throw new KilnError('validation_failed', `A ${access} kubeconfig lives at most ${KUBECONFIG_MAX_MINUTES[access]} minutes.`);
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
  const { certificateAuthorityFromPem, issueKubeconfig: signKubeconfig } = await import('./kubeconfig-signing.ts');
  const now = new Date();
  const user = kubeconfigUser(request.keyId);
  const group = KUBECONFIG_GROUPS[access];
  const kubeconfig = await signKubeconfig({ clusterCa: await certificateAuthorityFromPem(pki.clusterCa) }, { endpoint, validityMinutes, user, groups: [group], clusterName: cluster.name, now });
  const expiresAt = new Date(now.getTime() + validityMinutes * 60_000).toISOString();
  await services.store.appendEvents(tenantId, [clusterEvent('cluster.kubeconfig_issued', clusterId, { validUntil: expiresAt, group, user })]);
  services.log.info('kubeconfig issued', { tenantId, clusterId, user, group, validUntil: expiresAt });
  return { kubeconfig, expiresAt };
}
