import type { Manifest } from './kube.ts';

/** Every add-on Kiln installs, in the order they are installed. */
export const ADDON_NAMES = ['baseline', 'rbac', 'helm-controller', 'cilium', 'kubelet-serving', 'cert-manager', 'kyverno', 'tetragon', 'kured'] as const;
export type AddonName = (typeof ADDON_NAMES)[number];

/** Marks objects Kiln owns, so the ones an order no longer renders can be found and removed. */
export const ADDON_LABEL = 'kiln.dev/addon';

export interface Addon {
  name: AddonName;
  objects: Manifest[];
}

/** Adds the ownership label without touching the object's own labels. */
export function labelled(name: AddonName, objects: readonly Manifest[]): Addon {
  return {
    name,
    objects: objects.map((object) => ({
      ...object,
      metadata: { ...object.metadata, labels: { ...object.metadata.labels, [ADDON_LABEL]: name } },
    })),
  };
}

export function objectRef(object: Pick<Manifest, 'kind' | 'metadata'>): string {
  return [object.kind, object.metadata.namespace, object.metadata.name].filter((part) => part !== undefined && part !== '').join('/');
}

/** The restricted Pod Security profile, for every container Kiln itself defines. */
export const RESTRICTED_CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;
