import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { ApiException, type KubeConfig } from '@kubernetes/client-node';
import { type ClusterCredentials, type ClusterIdentity, KILN_CONTROLLER, KILN_HEALTH, accessCurrent, accessObjects, applyObjects, kubeConfigFor, readObject, roleOf } from '#addons';
import { type CertificateAuthority, KUBEADM_ADMINS_GROUP, type ClusterPkiPem, certificateAuthorityFromPem, issueClientCredentials } from '#bootstrap';
import { StepError } from '#core';
import type { KilnServices } from '#services';
import type { ClusterRecord } from '#store';

/** How long one of Kiln's client certificates lives. */
const CREDENTIAL_MINUTES = 60;
/**
 * Who applies Kiln's own roles and bindings (`accessObjects`) when a cluster lacks them or holds an older rendering:
 * the one identity of Kiln's in kubeadm's `kubeadm:cluster-admins`, never kubeadm's own `kubernetes-admin` or
 * `kubernetes-super-admin`, with a certificate that lives minutes and is used for that one apply.
 */
export const KILN_BOOTSTRAP_USER = 'kiln:bootstrap';
const BOOTSTRAP_MINUTES = 5;
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
  /** Whether the cluster was seen to hold this Kiln's rendering of the identity's role; checked again until it was. */
  accessChecked: boolean;
  clusterCa: CertificateAuthority;
}

/**
 * Certificates this process issued, per cluster and identity: a warm function (the health
 * poller runs every minute) unseals the cluster CA through KMS about once an
 * hour per cluster, not at every look.
 */
const issued = new Map<string, CachedCredentials>();

/**
 * A client for a cluster's API server as Kiln's steps (`kiln` in `kiln:controllers`, bound to the role
 * `accessObjects` renders): a short-lived client certificate signed by the cluster CA (unsealed only to sign it), and
 * the CA to verify the server with. The API server has anonymous access off; nothing else gets in.
 */
export async function clusterApi(services: Pick<KilnServices, 'sealer'>, cluster: ClusterRecord, step: string): Promise<KubeConfig> {
  const credentials = await credentialsFor(services, cluster, step, KILN_CONTROLLER);
  // Unchecked means the API server did not answer: a request now could reach it just as it comes up and meet a 403
  // where Kiln's roles are not applied yet. A connection error is what the steps already retry on.
  if (!credentials.accessChecked) throw new StepError(step, "The cluster's API server did not answer.", true);
  return kubeConfigFor(cluster.name, endpointOf(cluster, step), credentials.credentials);
}

/**
 * A client for the health poller: `kiln:health`, which may list Nodes and nothing else. Returned even when the API
 * server did not answer: the poll's own request then fails, and an unreachable API server is what it reports.
 */
export async function clusterObserver(services: Pick<KilnServices, 'sealer'>, cluster: ClusterRecord): Promise<KubeConfig> {
  return kubeConfigFor(cluster.name, endpointOf(cluster, 'health'), (await credentialsFor(services, cluster, 'health', KILN_HEALTH)).credentials);
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
  const { credentials } = await credentialsFor(services, cluster, step, KILN_CONTROLLER);
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

async function credentialsFor(services: Pick<KilnServices, 'sealer'>, cluster: ClusterRecord, step: string, identity: ClusterIdentity): Promise<CachedCredentials> {
  const sealedPki = sealedPkiOf(cluster, step);
  const key = `${identity.user}\n${cluster.id}`;
  let cached = issued.get(key);
  if (cached === undefined || cached.sealedPki !== sealedPki || cached.renewAt <= Date.now()) {
    const pki = await unsealClusterPki(services, cluster, step);
    const clusterCa = await certificateAuthorityFromPem(pki.clusterCa);
    const { expiresAt: _expiresAt, ...credentials } = await issueClientCredentials({ clusterCa }, { user: identity.user, groups: [identity.group], validityMinutes: CREDENTIAL_MINUTES });
    cached = { sealedPki, credentials, renewAt: Date.now() + CREDENTIAL_REUSE_MINUTES * 60_000, accessChecked: false, clusterCa };
    issued.set(key, cached);
  }
  if (!cached.accessChecked) cached.accessChecked = await ensureAccess(cluster, step, cached, identity);
  return cached;
}

/**
 * Makes sure the cluster binds `identity` to the role this Kiln renders: the identity reads its own ClusterRole, and
 * when that is refused, missing or of another rendering (a cluster from before, a Kiln that needs a new verb), the
 * bootstrap identity applies every access object once. Returns whether the roles are known current; false while the
 * API server does not answer (the caller's own request then fails as it would have), so the next call looks again.
 */
async function ensureAccess(cluster: ClusterRecord, step: string, cached: CachedCredentials, identity: ClusterIdentity): Promise<boolean> {
  const endpoint = endpointOf(cluster, step);
  const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: roleOf(identity) } };
  try {
    if (accessCurrent(await readObject(kubeConfigFor(cluster.name, endpoint, cached.credentials), role))) return true;
  } catch (error) {
    if (!(error instanceof ApiException) || (error.code !== 403 && error.code !== 404)) return false;
  }
  const { expiresAt: _expiresAt, ...bootstrap } = await issueClientCredentials(
    { clusterCa: cached.clusterCa },
    { user: KILN_BOOTSTRAP_USER, groups: [KUBEADM_ADMINS_GROUP], validityMinutes: BOOTSTRAP_MINUTES },
  );
  try {
    await applyObjects(kubeConfigFor(cluster.name, endpoint, bootstrap), accessObjects());
  } catch (error) {
    // kubeadm's cluster-admins binding removed, or an admission webhook refusing: no retry of Kiln's mends that.
    if (error instanceof ApiException) throw new StepError(step, `The cluster refused Kiln's own roles and bindings (HTTP ${error.code}); restore the kubeadm:cluster-admins ClusterRoleBinding.`, true);
    return false;
  }
  return true;
}
