import { ADMIN_GROUP, apiServerSubjectAltNames, certificateAuthorityFromPem, type IssuedCertificate, issueCertificate, issueClientCredentials } from '#bootstrap';
import type { ApiServerTls } from './kube/index.ts';

const YEAR_MINUTES = 365 * 24 * 60;

/**
 * kubeadm init's certificate phase, from the cluster CA it finds in /etc/kubernetes/pki: the API server's serving
 * certificate (the API host, the in-cluster names and the machine's own address: in the sandbox every machine answers
 * on the loopback address) and admin.conf's client certificate, both for a year as kubeadm makes them.
 */
export async function kubeadmApiServerTls(clusterCa: IssuedCertificate, options: { apiHost: string; serviceCidr: string; nodeName?: string }): Promise<ApiServerTls> {
  const ca = await certificateAuthorityFromPem(clusterCa);
  const now = Date.now();
  const names = apiServerSubjectAltNames(options.apiHost, options.serviceCidr);
  const serving = await issueCertificate(ca, {
    commonName: 'kube-apiserver',
    dnsNames: [...names.dnsNames, ...(options.nodeName === undefined ? [] : [options.nodeName])],
    ipAddresses: [...names.ipAddresses, '127.0.0.1'],
    usages: 'server',
    validity: { notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + YEAR_MINUTES * 60_000) },
  });
  const admin = await issueClientCredentials({ clusterCa: ca }, { user: 'kubernetes-admin', groups: [ADMIN_GROUP], validityMinutes: YEAR_MINUTES });
  return { ...serving, clientCaPem: clusterCa.certificatePem, admin };
}
