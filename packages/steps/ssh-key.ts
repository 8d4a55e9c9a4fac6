import { generateSshKeyPair } from '#bootstrap';
import type { ClusterSpec } from '#core';
import { SSH_KEY_PURPOSE, fingerprintOf, updateCluster } from '#services';
import type { ClusterRecord } from '#store';
import type { StepServices } from './context.ts';

/**
 * The cluster's SSH key: the tenant's own public key when self-managed;
 * otherwise a fresh ed25519 pair whose private half is kept only sealed,
 * until the tenant downloads it once. Idempotent: an existing key is kept.
 */
export async function ensureSshKey(services: StepServices, cluster: ClusterRecord): Promise<ClusterRecord> {
  if (cluster.status.ssh !== undefined) return cluster;
  const spec: ClusterSpec = cluster.spec;
  const context = { tenantId: cluster.tenantId, clusterId: cluster.id, purpose: SSH_KEY_PURPOSE };
  let publicKey: string;
  let sealedPrivateKey: string | undefined;
  if (spec.ssh.mode === 'self-managed' && spec.ssh.publicKey !== undefined) {
    publicKey = spec.ssh.publicKey;
  } else {
    const pair = generateSshKeyPair(`kiln-${cluster.id}`);
    publicKey = pair.publicKey;
    sealedPrivateKey = await services.sealer.seal(Buffer.from(pair.privateKey), context);
  }
  return updateCluster(services, cluster.tenantId, cluster.id, (current) =>
    current.status.ssh !== undefined
      ? current
      : {
          ...current,
          ...(sealedPrivateKey === undefined ? {} : { sealed: { ...current.sealed, sshPrivateKey: sealedPrivateKey } }),
          status: {
            ...current.status,
            ssh: { publicKey, fingerprint: fingerprintOf(publicKey), privateKeyDownloadable: sealedPrivateKey !== undefined },
          },
        },
  );
}
