import type { ClusterSpec } from '#core';
import type { KubeObject } from './kubeadm.ts';

/** Stands in for key material wherever a rendered file must not carry it; the machine fills it from the secret store. */
export const SEALED_AT_BOOT = '<sealed-at-boot>';

/** Where the AWS KMS v2 plugin (aws-encryption-provider) listens on control plane machines. */
export const KMS_PLUGIN_ENDPOINT = 'unix:///var/run/kmsplugin/socket.sock';

export interface EncryptionKeyRef {
  name: string;
  /** Base64 key material; SEALED_AT_BOOT when rendering for review. */
  secret: string;
}

/**
 * The API server's EncryptionConfiguration for Secrets: the order's provider
 * first (it encrypts new writes), identity last (so Secrets written before
 * encryption was enabled stay readable until they are rewritten).
 */
export function encryptionConfiguration(spec: ClusterSpec, keys: readonly EncryptionKeyRef[] = [{ name: 'key-1', secret: SEALED_AT_BOOT }]): KubeObject {
  const provider = spec.encryption.atRest.provider;
  const first =
    provider === 'kms'
      ? { kms: { apiVersion: 'v2', name: 'aws-encryption-provider', endpoint: KMS_PLUGIN_ENDPOINT, timeout: '3s' } }
      : { [provider]: { keys: keys.map(({ name, secret }) => ({ name, secret })) } };
  return {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [{ resources: ['secrets'], providers: [first, { identity: {} }] }],
  };
}
