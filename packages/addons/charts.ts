import { stringify } from 'yaml';
import type { Manifest } from './kube.ts';

export interface ChartSource {
  chart: string;
  repo: string;
  version: string;
}

/**
 * Pinned chart versions; each is a reviewed upgrade, never a float. Checked
 * against the projects' release notes in November 2026: Cilium 1.20.2,
 * cert-manager v1.21.2 (jetstack tags keep the "v"), Kyverno chart 3.9.1
 * (Kyverno v1.19.1), Tetragon 1.7.1, kubelet-csr-approver 1.2.15.
 */
export const CHARTS = {
  cilium: { chart: 'cilium', repo: 'https://helm.cilium.io', version: '1.20.2' },
  certManager: { chart: 'cert-manager', repo: 'https://charts.jetstack.io', version: 'v1.21.2' },
  kyverno: { chart: 'kyverno', repo: 'https://kyverno.github.io/kyverno', version: '3.9.1' },
  tetragon: { chart: 'tetragon', repo: 'https://helm.cilium.io', version: '1.7.1' },
  kubeletCsrApprover: { chart: 'kubelet-csr-approver', repo: 'https://postfinance.github.io/kubelet-csr-approver', version: '1.2.15' },
} as const satisfies Record<string, ChartSource>;

/**
 * The image of the Job that installs each chart. helm-controller defaults to
 * `klipper-helm:latest`, a float, so every HelmChart names it.
 */
export const CHART_JOB_IMAGE = 'docker.io/rancher/klipper-helm:v0.13.3-build20260909';

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
