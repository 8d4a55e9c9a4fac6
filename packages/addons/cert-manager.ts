import type { ClusterSpec } from '#core';
import { psaLabelsAt } from './baseline.ts';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

export const CERT_MANAGER_NAMESPACE = 'cert-manager';
export const CA_ISSUER_NAME = 'kiln-cluster-issuer';
export const CA_ISSUER_SECRET = 'kiln-cluster-issuer-ca';

/** The CA the in-cluster issuer signs with. It must not be the Kubernetes CA: the API server would trust what it signs. */
export interface IssuerCa {
  certificatePem: string;
  privateKeyPem: string;
}

export const PLACEHOLDER_ISSUER_CA: IssuerCa = {
  certificatePem: '<issuer CA certificate: generated per cluster at provisioning>\n',
  privateKeyPem: '<issuer CA private key: generated per cluster, sealed with KMS>\n',
};

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

export function certManagerObjects(spec: ClusterSpec, issuerCa: IssuerCa): Manifest[] {
  const { certManager } = spec;
  if (!certManager.enabled) return [];
  const objects: Manifest[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: CERT_MANAGER_NAMESPACE, labels: psaLabelsAt('restricted') } },
    helmChart('cert-manager', CHARTS.certManager, {
      targetNamespace: CERT_MANAGER_NAMESPACE,
      values: {
        crds: { enabled: true, keep: true },
        replicaCount: 2,
        webhook: { replicaCount: 2 },
        cainjector: { replicaCount: 2 },
        podDisruptionBudget: { enabled: true },
      },
      readiness: {
        crds: ['clusterissuers.cert-manager.io', 'certificates.cert-manager.io'],
        workloads: [
          { kind: 'Deployment', namespace: CERT_MANAGER_NAMESPACE, name: 'cert-manager' },
          { kind: 'Deployment', namespace: CERT_MANAGER_NAMESPACE, name: 'cert-manager-webhook' },
        ],
      },
    }),
  ];
  if (certManager.caIssuer) {
    objects.push(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: CA_ISSUER_SECRET, namespace: CERT_MANAGER_NAMESPACE },
        type: 'kubernetes.io/tls',
        // `data` rather than `stringData`: the server rewrites stringData, which would make every apply a change.
        data: { 'tls.crt': base64(issuerCa.certificatePem), 'tls.key': base64(issuerCa.privateKeyPem) },
      },
      { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: CA_ISSUER_NAME }, spec: { ca: { secretName: CA_ISSUER_SECRET } } },
    );
  }
  for (const issuer of certManager.acmeIssuers) {
    objects.push({
      apiVersion: 'cert-manager.io/v1',
      kind: 'ClusterIssuer',
      metadata: { name: issuer.name },
      spec: {
        acme: {
          server: issuer.server,
          email: issuer.email,
          // cert-manager creates the account key in its own namespace on first registration.
          privateKeySecretRef: { name: `${issuer.name}-account-key` },
          solvers: [{ http01: { ingress: { ingressClassName: issuer.ingressClass } } }],
        },
      },
    });
  }
  return objects;
}
