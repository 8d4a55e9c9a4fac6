import type { ClusterSpec } from '#core';
import { type Addon, labelled } from './addon.ts';
import { baselineObjects } from './baseline.ts';
import { type IssuerCa, certManagerObjects } from './cert-manager.ts';
import { type ApiServerAddress, ciliumObjects } from './cilium.ts';
import { helmControllerObjects } from './helm-controller.ts';
import { kubeletServingObjects } from './kubelet-serving.ts';
import { kuredObjects } from './kured.ts';
import { kyvernoObjects } from './kyverno.ts';
import { tetragonObjects } from './tetragon.ts';
import { validateObject } from './validate.ts';

export interface RenderAddonsOptions {
  issuerCa: IssuerCa;
  apiServer?: ApiServerAddress;
}

/**
 * Every add-on of the order, in install order, each object validated and
 * labelled with its add-on. Add-ons the order turns off render no objects
 * (and so are removed by `removeAddons`).
 */
export function renderAddons(clusterId: string, spec: ClusterSpec, options: RenderAddonsOptions): Addon[] {
  const addons = [
    labelled('baseline', baselineObjects(clusterId, spec)),
    labelled('helm-controller', helmControllerObjects()),
    labelled('cilium', ciliumObjects(spec, options.apiServer)),
    labelled('kubelet-serving', kubeletServingObjects(spec)),
    labelled('cert-manager', certManagerObjects(spec, options.issuerCa)),
    labelled('kyverno', kyvernoObjects(spec)),
    labelled('tetragon', tetragonObjects(spec)),
    labelled('kured', kuredObjects(spec)),
  ];
  for (const addon of addons) addon.objects.forEach(validateObject);
  return addons;
}
