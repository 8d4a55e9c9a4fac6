import type { ClusterSpec } from '#core';
import type { Manifest } from './kube.ts';

export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;
const PSA_VERSION = 'latest';

export function psaLabels(level: string, mode: 'enforce' | 'audit' | 'warn'): Record<string, string> {
  // Audit and warn always run at the level too, so violations are seen before they are enforced.
  const labels: Record<string, string> = {
    'pod-security.kubernetes.io/audit': level,
    'pod-security.kubernetes.io/audit-version': PSA_VERSION,
    'pod-security.kubernetes.io/warn': level,
    'pod-security.kubernetes.io/warn-version': PSA_VERSION,
  };
  if (mode === 'enforce') {
    labels['pod-security.kubernetes.io/enforce'] = level;
    labels['pod-security.kubernetes.io/enforce-version'] = PSA_VERSION;
  }
  return labels;
}

/**
 * The objects every cluster gets before any charted add-on: Pod Security
 * Admission labels on each namespace, and Kiln's own namespace with the
 * cluster's identity. Later add-ons extend this list.
 */
export function baselineObjects(clusterId: string, spec: ClusterSpec): Manifest[] {
  const { defaultLevel, defaultMode, namespaces } = spec.podSecurity;
  const userNamespaces = new Map<string, { level: string; mode: 'enforce' | 'audit' | 'warn' }>([
    ['default', { level: defaultLevel, mode: defaultMode }],
  ]);
  for (const [name, override] of Object.entries(namespaces)) userNamespaces.set(name, override);

  const namespaceObjects: Manifest[] = [
    // Each system namespace gets only what it needs: kube-system runs the control plane, the CNI and the runtime
    // sensor, which need host access (privileged, but audited); kube-public and kube-node-lease run no pods at all.
    ...SYSTEM_NAMESPACES.map((name) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { ...psaLabels(name === 'kube-system' ? 'privileged' : 'restricted', 'enforce'), 'kiln.dev/managed': 'true' } },
    })),
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'kiln-system', labels: { ...psaLabels('restricted', 'enforce'), 'kiln.dev/managed': 'true' } },
    },
    ...[...userNamespaces].map(([name, { level, mode }]) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: psaLabels(level, mode) },
    })),
  ];

  return [
    ...namespaceObjects,
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cluster-info', namespace: 'kiln-system', labels: { 'kiln.dev/managed': 'true' } },
      data: {
        clusterId,
        name: spec.name,
        region: spec.region,
        kubernetesVersion: spec.kubernetesVersion,
        podSecurityDefault: `${defaultMode}:${defaultLevel}`,
      },
    },
  ];
}
