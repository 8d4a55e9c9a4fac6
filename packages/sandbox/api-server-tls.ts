import { isIP } from 'node:net';
import { KUBEADM_ADMINS_GROUP, certificateAuthorityFromPem, firstServiceIp, type IssuedCertificate, issueCertificate, issueClientCredentials } from '#bootstrap';
import { API_SERVER_ADDRESS, LOAD_BALANCER_ADDRESS } from './kube/index.ts';
import type { ApiServerTls } from './kube/index.ts';

const YEAR_MINUTES = 365 * 24 * 60;

export interface ApiServerCertificateOptions {
  /** The controlPlaneEndpoint's host: the API load balancer's DNS name. */
  apiHost: string;
  serviceCidr: string;
  nodeName?: string;
  /** `apiServer.certSANs` of the ClusterConfiguration kubeadm ran with, boot placeholders already filled in. */
  certSans?: readonly string[];
}

/**
 * kubeadm init's certificate phase, from the cluster CA it finds in /etc/kubernetes/pki: the API server's serving
 * certificate and admin.conf's client certificate, both for a year as kubeadm makes them. The serving certificate
 * names what kubeadm names (kubernetes/kubernetes@v1.35.9 cmd/kubeadm/app/util/pkiutil/pki_helpers.go
 * GetAPIServerAltNames): the node, `kubernetes` and its in-cluster DNS names, the first service address, the
 * controlPlaneEndpoint's host, the node's advertise address and every certSAN, and no loopback address of its own.
 * In the sandbox the API host resolves to LOAD_BALANCER_ADDRESS, so the certificate names that address too, and every
 * machine's advertise address is API_SERVER_ADDRESS, where the sandbox's API server listens.
 */
export async function kubeadmApiServerTls(clusterCa: IssuedCertificate, options: ApiServerCertificateOptions): Promise<ApiServerTls> {
  const ca = await certificateAuthorityFromPem(clusterCa);
  const now = Date.now();
  const names = [options.apiHost, ...(options.certSans ?? [])];
  const dnsNames = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', ...(options.nodeName === undefined ? [] : [options.nodeName])];
  const ipAddresses = [firstServiceIp(options.serviceCidr), API_SERVER_ADDRESS, LOAD_BALANCER_ADDRESS];
  for (const name of names) {
    if (isIP(name) !== 0) ipAddresses.push(name);
    else dnsNames.push(name);
  }
  const serving = await issueCertificate(ca, {
    commonName: 'kube-apiserver',
    dnsNames: [...new Set(dnsNames)],
    ipAddresses: [...new Set(ipAddresses)],
    usages: 'server',
    validity: { notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + YEAR_MINUTES * 60_000) },
  });
  const admin = await issueClientCredentials({ clusterCa: ca }, { user: 'kubernetes-admin', groups: [KUBEADM_ADMINS_GROUP], validityMinutes: YEAR_MINUTES });
  return { ...serving, clientCaPem: clusterCa.certificatePem, admin };
}
