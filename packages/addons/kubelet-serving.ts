import type { ClusterSpec } from '#core';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

/** EC2's default private DNS names: ip-10-0-1-23.ec2.internal in us-east-1, ip-10-0-1-23.<region>.compute.internal elsewhere. */
export function ec2HostnamePattern(region: string): string {
  const domain = region === 'us-east-1' ? 'ec2\\.internal' : `${region}\\.compute\\.internal`;
  return `^ip(-\\d{1,3}){4}\\.${domain}$`;
}

/**
 * Kubelets request their serving certificates from the cluster CA
 * (`serverTLSBootstrap`, CIS 4.2.11), and the API server verifies them
 * (`--kubelet-certificate-authority`, CIS 1.2.4). The controller manager never
 * approves kubelet-serving CSRs, so without an approver `kubectl logs` and
 * `exec` would fail on every node. kubelet-csr-approver approves one only when
 * it comes from `system:node:<name>`, names that node's EC2 hostname, and
 * lists addresses inside the VPC that the hostname resolves to.
 */
export function kubeletServingObjects(spec: ClusterSpec): Manifest[] {
  return [
    helmChart('kubelet-csr-approver', CHARTS.kubeletCsrApprover, {
      targetNamespace: 'kube-system',
      values: {
        providerRegex: ec2HostnamePattern(spec.region),
        providerIpPrefixes: [spec.network.vpcCidr],
        bypassDnsResolution: false,
        allowedDnsNames: 1,
        // A year and a day at most; kubelets rotate well before.
        maxExpirationSeconds: String(367 * 24 * 60 * 60),
      },
      readiness: { crds: [], workloads: [{ kind: 'Deployment', namespace: 'kube-system', name: 'kubelet-csr-approver' }] },
    }),
  ];
}
