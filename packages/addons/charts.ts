import { stringify } from 'yaml';
import { ADDON_RELEASES } from '#core';
import type { Manifest } from './kube.ts';

export interface ChartSource {
  chart: string;
  repo: string;
  version: string;
}

/**
 * The charts Kiln installs. Versions and the Kubernetes minors each supports,
 * with their upstream sources, live in Kiln's version table (#core
 * ADDON_RELEASES), so the API refuses a minor an add-on does not support.
 */
export const CHARTS = {
  cilium: { chart: 'cilium', repo: 'https://helm.cilium.io', version: ADDON_RELEASES.cilium.version },
  certManager: { chart: 'cert-manager', repo: 'https://charts.jetstack.io', version: ADDON_RELEASES.certManager.version },
  kyverno: { chart: 'kyverno', repo: 'https://kyverno.github.io/kyverno', version: ADDON_RELEASES.kyverno.version },
  tetragon: { chart: 'tetragon', repo: 'https://helm.cilium.io', version: ADDON_RELEASES.tetragon.version },
  kubeletCsrApprover: { chart: 'kubelet-csr-approver', repo: 'https://postfinance.github.io/kubelet-csr-approver', version: ADDON_RELEASES.kubeletCsrApprover.version },
  kured: { chart: 'kured', repo: 'https://kubereboot.github.io/charts', version: ADDON_RELEASES.kured.version },
} as const satisfies Record<string, ChartSource>;

/**
 * The image of the Job that installs each chart. helm-controller defaults to
 * `klipper-helm:latest`, a float, so every HelmChart names it.
 */
export const CHART_JOB_IMAGE = `docker.io/rancher/klipper-helm:${ADDON_RELEASES.klipperHelm.version}`;

/** The workloads and CRDs a chart must bring up before Kiln counts it as installed (see install.ts). */
export interface ChartReadiness {
  workloads: { kind: 'Deployment' | 'DaemonSet'; namespace: string; name: string }[];
  crds: string[];
}

export const CHART_READINESS_ANNOTATION = 'kiln.dev/ready-when';

/**
 * A helm.cattle.io HelmChart. HelmCharts live in kube-system, where the
 * controller's install Jobs run; `targetNamespace` is where the release goes.
 */
export function helmChart(
  name: string,
  source: ChartSource,
  options: { targetNamespace: string; values: Record<string, unknown>; bootstrap?: boolean; readiness: ChartReadiness },
): Manifest {
  return {
    apiVersion: 'helm.cattle.io/v1',
    kind: 'HelmChart',
    metadata: { name, namespace: 'kube-system', annotations: { [CHART_READINESS_ANNOTATION]: JSON.stringify(options.readiness) } },
    spec: {
      chart: source.chart,
      repo: source.repo,
      version: source.version,
      targetNamespace: options.targetNamespace,
      jobImage: CHART_JOB_IMAGE,
      ...(options.bootstrap === true ? { bootstrap: true } : {}),
      valuesContent: stringify(options.values),
    },
  };
}
