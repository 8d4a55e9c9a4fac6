import { type ClusterSpec, type PodSecurityLevel, type PodSecurityLevels, PSA_MODES, namespacePodSecurityLevels, podSecurityLevels } from '#core';
import type { Manifest } from './kube.ts';

export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;
const PSA_VERSION = 'latest';

/** A namespace's Pod Security labels, one level (and version) per mode it sets; a mode left out follows the cluster-wide default. */
export function psaLabels(levels: Partial<PodSecurityLevels>): Record<string, string> {
  return Object.fromEntries(
    PSA_MODES.flatMap((mode) => {
      const level = levels[mode];
      return level === undefined ? [] : [[`pod-security.kubernetes.io/${mode}`, level], [`pod-security.kubernetes.io/${mode}-version`, PSA_VERSION]];
    }),
  );
}

/** Every mode at one level, as Kiln's own namespaces and the system ones get it. */
export function psaLabelsAt(level: PodSecurityLevel): Record<string, string> {
  return psaLabels({ enforce: level, audit: level, warn: level });
}

/**
 * The objects every cluster gets before any charted add-on: Pod Security
 * Admission labels on each namespace, and Kiln's own namespace with the
 * cluster's identity. Later add-ons extend this list.
 */
export function baselineObjects(clusterId: string, spec: ClusterSpec): Manifest[] {
  const defaults = podSecurityLevels(spec.podSecurity);
  // The default namespace carries the cluster-wide levels as labels; an override names only the modes it changes.
  const userNamespaces = new Map<string, Partial<PodSecurityLevels>>([['default', defaults]]);
  for (const [name, override] of Object.entries(spec.podSecurity.namespaces)) userNamespaces.set(name, namespacePodSecurityLevels(override));

  const namespaceObjects: Manifest[] = [
    // Each system namespace gets only what it needs: kube-system runs the control plane, the CNI and the runtime
    // sensor, which need host access (privileged, but audited); kube-public and kube-node-lease run no pods at all.
    ...SYSTEM_NAMESPACES.map((name) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { ...psaLabelsAt(name === 'kube-system' ? 'privileged' : 'restricted'), 'kiln.dev/managed': 'true' } },
    })),
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'kiln-system', labels: { ...psaLabelsAt('restricted'), 'kiln.dev/managed': 'true' } },
    },
    ...[...userNamespaces].map(([name, levels]) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: psaLabels(levels) },
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
        podSecurityDefault: PSA_MODES.map((mode) => `${mode}:${defaults[mode]}`).join(','),
      },
    },
  ];
}
