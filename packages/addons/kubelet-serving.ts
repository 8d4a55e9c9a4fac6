import type { ClusterSpec } from '#core';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

/**
 * The hostname of a Debian machine on EC2: the short IP name `ip-10-0-1-23` in every region, since cloud-init on Debian
 * writes the short part of EC2's `ip-10-0-1-23.<region>.compute.internal` (or `.ec2.internal` in us-east-1). The
 * kubelet registers under it and asks for it as its only DNS name; the VPC's DNS resolves it through the machine's
 * search domain, which kubelet-csr-approver checks against the VPC's range.
 */
export const EC2_HOSTNAME_PATTERN = '^ip(-\\d{1,3}){4}$';

/**
 * Kubelets request their serving certificates from the cluster CA
 * (`serverTLSBootstrap`, CIS 4.2.11), and the API server verifies them
 * (`--kubelet-certificate-authority`, CIS 1.2.4). The controller manager never
 * approves kubelet-serving CSRs, so without an approver `kubectl logs` and
 * `exec` would fail on every node. kubelet-csr-approver approves one only when
 * it comes from `system:node:<name>`, names that node's EC2 hostname, and
 * lists addresses inside the VPC that the hostname resolves to (through the
 * VPC's DNS, so the name is the region's instance there).
 */
export function kubeletServingObjects(spec: ClusterSpec): Manifest[] {
  return [
    helmChart('kubelet-csr-approver', CHARTS.kubeletCsrApprover, {
      targetNamespace: 'kube-system',
      values: {
        providerRegex: EC2_HOSTNAME_PATTERN,
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
