import type { Manifest } from './kube.ts';

/** Every add-on Kiln installs, in the order they are installed. */
export const ADDON_NAMES = ['baseline', 'helm-controller', 'cilium', 'kubelet-serving', 'cert-manager', 'kyverno', 'tetragon', 'kured'] as const;
export type AddonName = (typeof ADDON_NAMES)[number];

/**
 * The add-ons a node needs before it can be Ready: the CNI, and the chart controller that installs it on the host
 * network. The network step installs only these, as soon as the first API server answers.
 */
const NETWORK_ADDONS: readonly AddonName[] = ['helm-controller', 'cilium'];

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

/** The network add-ons among `addons`, in install order. */
export function networkAddons(addons: readonly Addon[]): Addon[] {
  return addons.filter((addon) => NETWORK_ADDONS.includes(addon.name));
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
