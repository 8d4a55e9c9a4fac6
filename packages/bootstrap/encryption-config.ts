import type { ClusterSpec } from '#core';
import type { KubeObject } from './kube-object.ts';

/** Stands in for key material wherever a rendered file must not carry it; the machine fills it from the secret store. */
export const SEALED_AT_BOOT = '<sealed-at-boot>';

/** The host directory the AWS KMS v2 plugin (aws-encryption-provider) puts its socket in, mounted into the API server. */
export const KMS_PLUGIN_DIR = '/var/run/kmsplugin';
/** Where the plugin listens on control plane machines. */
export const KMS_PLUGIN_ENDPOINT = `unix://${KMS_PLUGIN_DIR}/socket.sock`;
/** The plugin's name in the EncryptionConfiguration, which is also the name in each stored Secret's prefix. */
export const KMS_PLUGIN_NAME = 'aws-encryption-provider';
/** Filled by the machine at boot from the secret store, because the cluster's key exists only once the stack does. */
export const KMS_KEY_PLACEHOLDER = '<kms-key-arn>';
const KMS_PLUGIN_HEALTH_PORT = 8083;

/**
 * The plugin as a static pod beside each API server, started by the kubelet
 * before kube-apiserver needs it. Host network, because no CNI runs yet, with
 * its health port off 8080; a key ARN, never an alias, because an alias moved
 * to another key would make every stored Secret unreadable. The flags are the
 * ones cmd/server/main.go accepts at the pinned release
 * (kubernetes-sigs/aws-encryption-provider@d5af2ce, "v1.33.0 Release"): one
 * gRPC server on --listen serves both KMS v1 and v2, so v2 needs no flag.
 * --health-port goes to http.ListenAndServe as is: on the host network a bare
 * ":8083" would serve /healthz and /metrics (labelled with the key ARN) on the
 * machine's VPC address, so it listens on loopback, where the probe asks.
 */
export function kmsPluginManifest(spec: ClusterSpec, image: string, keyArn: string = KMS_KEY_PLACEHOLDER): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: KMS_PLUGIN_NAME, namespace: 'kube-system', labels: { component: KMS_PLUGIN_NAME, tier: 'control-plane' } },
    spec: {
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      containers: [
        {
          name: KMS_PLUGIN_NAME,
          image,
          command: [
            '/aws-encryption-provider',
            `--key=${keyArn}`,
            `--region=${spec.region}`,
            `--listen=${KMS_PLUGIN_DIR}/socket.sock`,
            `--health-port=127.0.0.1:${KMS_PLUGIN_HEALTH_PORT}`,
          ],
          ports: [{ containerPort: KMS_PLUGIN_HEALTH_PORT, protocol: 'TCP' }],
          livenessProbe: { httpGet: { host: '127.0.0.1', path: '/healthz', port: KMS_PLUGIN_HEALTH_PORT } },
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          volumeMounts: [{ name: 'kms-plugin', mountPath: KMS_PLUGIN_DIR }],
        },
      ],
      volumes: [{ name: 'kms-plugin', hostPath: { path: KMS_PLUGIN_DIR, type: 'DirectoryOrCreate' } }],
    },
  };
}

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
      ? { kms: { apiVersion: 'v2', name: KMS_PLUGIN_NAME, endpoint: KMS_PLUGIN_ENDPOINT, timeout: '3s' } }
      : { [provider]: { keys: keys.map(({ name, secret }) => ({ name, secret })) } };
  return {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [{ resources: ['secrets'], providers: [first, { identity: {} }] }],
  };
}
