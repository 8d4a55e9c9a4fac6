import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { type ClusterCredentials, kubeConfigFor } from '#addons';
import { ADMIN_GROUP, type ClusterPkiPem, certificateAuthorityFromPem, issueClientCredentials } from '#bootstrap';
import { StepError } from '#core';
import type { KilnServices } from '#services';
import type { ClusterRecord } from '#store';

/** The user Kiln's client certificates name; its group is kubeadm's cluster-admins (add-ons install CRDs and RBAC). */
export const KILN_CLUSTER_USER = 'kiln';
/** How long one of Kiln's client certificates lives. */
const CREDENTIAL_MINUTES = 60;
/**
 * How long a process reuses one: a cached certificate is replaced with a quarter of its life left, so no request
 * goes out with one about to expire. Each replacement unseals the CA once (one KMS Decrypt).
 */
export const CREDENTIAL_REUSE_MINUTES = 45;

interface CachedCredentials {
  /** The sealed PKI the certificate was signed from: a cluster rebuilt under the same id gets a new one. */
  sealedPki: string;
  credentials: ClusterCredentials;
  renewAt: number;
}

/**
 * Certificates this process issued, per cluster: a warm function (the health
 * poller runs every minute) unseals the cluster CA through KMS about once an
 * hour per cluster, not at every look.
 */
const issued = new Map<string, CachedCredentials>();

/**
 * A client for a cluster's API server as Kiln: a short-lived client certificate
 * signed by the cluster CA (unsealed only to sign it), and the CA to verify the
 * server with. The API server has anonymous access off; nothing else gets in.
 */
export async function clusterApi(services: Pick<KilnServices, 'sealer'>, cluster: ClusterRecord, step: string): Promise<KubeConfig> {
  return kubeConfigFor(cluster.name, endpointOf(cluster, step), await credentialsFor(services, cluster, step));
}

/** The cluster's API endpoint, which the infrastructure step records. */
function endpointOf(cluster: ClusterRecord, step: string): string {
  if (cluster.status.endpoint === undefined) throw new StepError(step, 'The cluster has no API endpoint yet.', false);
  return cluster.status.endpoint;
}

/**
 * The certificates the API server stands on, as a client sees them: the cluster CA, and the serving certificate the
 * API server presents in the TLS handshake (verified against that CA).
 */
export async function apiServerCertificates(services: Pick<KilnServices, 'sealer'>, cluster: ClusterRecord, step: string): Promise<{ authority: X509Certificate; apiServer: X509Certificate }> {
  const url = new URL(endpointOf(cluster, step));
  const credentials = await credentialsFor(services, cluster, step);
  const apiServer = await new Promise<X509Certificate>((resolve, reject) => {
    const socket = connect(
      { host: url.hostname, port: Number(url.port || 443), ca: credentials.caPem, cert: credentials.certificatePem, key: credentials.privateKeyPem, ...(isIP(url.hostname) === 0 ? { servername: url.hostname } : {}) },
      () => {
        const peer = socket.getPeerX509Certificate();
        socket.end();
        if (peer === undefined) reject(new StepError(step, 'The API server presented no certificate.', true));
        else resolve(peer);
      },
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
    socket.once('error', (error: Error) => {
      reject(new StepError(step, `Could not read the API server's certificate: ${error.message}`, true));
    });
  });
  return { authority: new X509Certificate(credentials.caPem), apiServer };
}

function sealedPkiOf(cluster: ClusterRecord, step: string): string {
  const sealedPki = cluster.sealed?.pki;
  if (sealedPki === undefined) throw new StepError(step, 'The cluster has no certificate authority yet: its bootstrap step has not run.', false);
  return sealedPki;
}

/** The cluster's PKI, unsealed with Kiln's key: only for the moment it is needed (signing, publishing for a join). */
export async function unsealClusterPki(services: Pick<KilnServices, 'sealer'>, cluster: ClusterRecord, step: string): Promise<ClusterPkiPem> {
  const sealed = await services.sealer.unseal(sealedPkiOf(cluster, step), { tenantId: cluster.tenantId, clusterId: cluster.id, purpose: 'pki' });
  return JSON.parse(Buffer.from(sealed).toString('utf8')) as ClusterPkiPem;
}

async function credentialsFor(services: Pick<KilnServices, 'sealer'>, cluster: ClusterRecord, step: string): Promise<ClusterCredentials> {
  const sealedPki = sealedPkiOf(cluster, step);
  const cached = issued.get(cluster.id);
  if (cached !== undefined && cached.sealedPki === sealedPki && cached.renewAt > Date.now()) return cached.credentials;

  const pki = await unsealClusterPki(services, cluster, step);
  const { expiresAt, ...credentials } = await issueClientCredentials(
    { clusterCa: await certificateAuthorityFromPem(pki.clusterCa) },
    { user: KILN_CLUSTER_USER, groups: [ADMIN_GROUP], validityMinutes: CREDENTIAL_MINUTES },
  );
  issued.set(cluster.id, { sealedPki, credentials, renewAt: Date.now() + CREDENTIAL_REUSE_MINUTES * 60_000 });
  return credentials;
}
