import { createHash } from 'node:crypto';
import { KilnError, clusterEvent } from '#core';
import { VersionConflictError } from '#store';
import type { KilnServices } from './context.ts';

/** The KMS encryption-context purpose the managed private key is sealed under. */
export const SSH_KEY_PURPOSE = 'ssh-private-key';

/** The OpenSSH SHA-256 fingerprint of a public key line. */
export function fingerprintOf(publicKey: string): string {
  const blob = Buffer.from(publicKey.split(' ')[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export interface SshKeyDownload {
  privateKey: string;
  publicKey: string;
  fingerprint: string;
}

/**
 * Hands the managed private key out exactly once: the sealed copy is
 * removed in the same versioned write, so two racing downloads cannot both
 * succeed.
 */
export async function downloadSshKey(services: KilnServices, tenantId: string, clusterId: string): Promise<SshKeyDownload> {
  const cluster = await services.store.getCluster(tenantId, clusterId);
  if (cluster === undefined) throw new KilnError('not_found', `No cluster with id '${clusterId}' exists.`);
  if (cluster.spec.ssh.mode === 'self-managed') {
    throw new KilnError('conflict', 'This cluster uses a self-managed SSH key; Kiln never held its private half.');
  }
  const ssh = cluster.status.ssh;
  const sealed = cluster.sealed?.sshPrivateKey;
  if (ssh === undefined) throw new KilnError('conflict', 'The SSH key is generated when provisioning starts; try again shortly.');
  if (sealed === undefined) throw new KilnError('gone', 'The private SSH key was already downloaded; Kiln keeps no copy.');

  const privateKey = Buffer.from(
    await services.sealer.unseal(sealed, { tenantId, clusterId, purpose: SSH_KEY_PURPOSE }),
  ).toString('utf8');
  const { sshPrivateKey: _handedOut, ...remaining } = cluster.sealed ?? {};
  try {
    await services.store.saveCluster(
      { ...cluster, sealed: remaining, status: { ...cluster.status, ssh: { ...ssh, privateKeyDownloadable: false } } },
      cluster.version,
      new Date(),
      [clusterEvent('cluster.ssh_key_downloaded', clusterId, { fingerprint: ssh.fingerprint })],
    );
  } catch (error) {
    // Another write came first (perhaps another download): never hand the key out on a stale read.
    if (error instanceof VersionConflictError) throw new KilnError('conflict', 'The cluster changed while the key was read; retry.');
    throw error;
  }
  services.log.info('ssh private key handed out', { tenantId, clusterId });
  return { privateKey, publicKey: ssh.publicKey, fingerprint: ssh.fingerprint };
}
