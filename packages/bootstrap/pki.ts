// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import type { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { stringify } from 'yaml';
import { cidrBlock, numberToIpv4 } from '#core';

/**
 * The cluster's certificate authorities and the keys kubeadm expects in
 * /etc/kubernetes/pki. Keys are ECDSA P-256 (kubeadm accepts them and they are
 * cheap to generate); the service-account key is RSA 2048 because every
 * client that verifies service-account tokens supports RS256.
 */

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const RSA_KEY: webcrypto.RsaHashedKeyGenParams = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };

/** Certificates start this much before "now" so a node whose clock lags slightly still accepts them. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const CA_VALIDITY_DAYS = 3650;
const LEAF_VALIDITY_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The group of kubeadm's admin.conf. kubeadm (1.29+) binds `kubeadm:cluster-admins` to cluster-admin through a
 * ClusterRoleBinding, so unlike `system:masters` (which bypasses RBAC and cannot be revoked) the access can be withdrawn
 * by deleting that binding. Kiln uses it only for its bootstrap identity, which applies Kiln's own roles.
 */
export const KUBEADM_ADMINS_GROUP = 'kubeadm:cluster-admins';

export interface KeyPairPem {
  publicKeyPem: string;
  privateKeyPem: string;
}

export interface IssuedCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

export interface CertificateAuthority extends IssuedCertificate {
  /** Kept as parsed objects so issuing does not re-import the PEM each time. */
  readonly certificate: x509.X509Certificate;
  readonly signingKey: webcrypto.CryptoKey;
}

export interface ClusterPki {
  clusterCa: CertificateAuthority;
  etcdCa: CertificateAuthority;
  frontProxyCa: CertificateAuthority;
  serviceAccount: KeyPairPem;
  apiServer: IssuedCertificate;
}

export type CertificateUsage = 'server' | 'client' | 'both';

export interface CertificateRequest {
  commonName: string;
  organizations?: readonly string[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  usages: CertificateUsage;
  validity: { notBefore: Date; notAfter: Date };
}

export interface ClusterPkiOptions {
  clusterName: string;
  /** The API load balancer's DNS name. */
  apiHost: string;
  serviceCidr: string;
  now?: Date;
}

function crypto(): webcrypto.Crypto {
  // Node 20 ships WebCrypto as a global; @peculiar/x509 needs to be told.
  x509.cryptoProvider.set(globalThis.crypto);
  return globalThis.crypto;
}

function serialNumber(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  // A leading zero bit keeps the DER integer positive, as RFC 5280 requires.
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = await crypto().subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

async function publicKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const spki = await crypto().subtle.exportKey('spki', key);
  return x509.PemConverter.encode(spki, 'PUBLIC KEY');
}

function subjectOf(commonName: string, organizations: readonly string[] = []): x509.JsonName {
  return organizations.length === 0 ? [{ CN: [commonName] }] : [{ O: [...organizations] }, { CN: [commonName] }];
}

/** The first usable address of a CIDR block: the API server's ClusterIP in the service range. */
export function firstServiceIp(serviceCidr: string): string {
  return numberToIpv4(cidrBlock(serviceCidr).first + 1);
}

async function createCertificateAuthority(commonName: string, now: Date): Promise<CertificateAuthority> {
  const keys = await crypto().subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subjectOf(commonName),
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: EC_SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificate, signingKey: keys.privateKey, certificatePem: certificate.toString('pem'), privateKeyPem: await privateKeyPem(keys.privateKey) };
}

const EXTENDED_USAGES: Record<CertificateUsage, string[]> = {
  server: [x509.ExtendedKeyUsage.serverAuth],
  client: [x509.ExtendedKeyUsage.clientAuth],
  both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
};

/** A leaf certificate signed by `ca`, with a fresh P-256 key. */
export async function issueCertificate(ca: CertificateAuthority, request: CertificateRequest): Promise<IssuedCertificate> {
  const keys = await crypto().subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const names: x509.JsonGeneralName[] = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subjectOf(request.commonName, request.organizations),
    issuer: ca.certificate.subjectName,
    notBefore: request.validity.notBefore,
    notAfter: request.validity.notAfter,
    signingAlgorithm: EC_SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(EXTENDED_USAGES[request.usages], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
      ...(names.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension(names, false)]),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await privateKeyPem(keys.privateKey) };
}

/** DNS names and IPs the API server answers to, inside and outside the cluster. */
export function apiServerSubjectAltNames(apiHost: string, serviceCidr: string): { dnsNames: string[]; ipAddresses: string[] } {
  const hostIsIp = isIP(apiHost) !== 0;
  return {
    dnsNames: [...(hostIsIp ? [] : [apiHost]), 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    ipAddresses: [...(hostIsIp ? [apiHost] : []), firstServiceIp(serviceCidr)],
  };
}

/** Fresh CAs (cluster, etcd, front proxy), the service-account key pair and the API server certificate. */
export async function generateClusterPki(options: ClusterPkiOptions): Promise<ClusterPki> {
  const now = options.now ?? new Date();
  const [clusterCa, etcdCa, frontProxyCa] = await Promise.all([
    createCertificateAuthority(`${options.clusterName}-kubernetes-ca`, now),
    createCertificateAuthority(`${options.clusterName}-etcd-ca`, now),
    createCertificateAuthority(`${options.clusterName}-front-proxy-ca`, now),
  ]);
  const serviceAccountKeys = await crypto().subtle.generateKey(RSA_KEY, true, ['sign', 'verify']);
  const apiServer = await issueCertificate(clusterCa, {
    commonName: 'kube-apiserver',
    ...apiServerSubjectAltNames(options.apiHost, options.serviceCidr),
    usages: 'server',
    validity: { notBefore: new Date(now.getTime() - CLOCK_SKEW_MS), notAfter: new Date(now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS) },
  });
  return {
    clusterCa,
    etcdCa,
    frontProxyCa,
    serviceAccount: { publicKeyPem: await publicKeyPem(serviceAccountKeys.publicKey), privateKeyPem: await privateKeyPem(serviceAccountKeys.privateKey) },
    apiServer,
  };
}

export interface KubeconfigOptions {
  /** e.g. https://<apiHost>:6443 */
  endpoint: string;
  validityMinutes: number;
  /** The certificate's CN and O values: who the API server (and its audit log) says made each request. */
  user: string;
  groups: readonly string[];
  clusterName?: string;
  now?: Date;
}

/** A client identity for one cluster: a certificate the cluster CA signed, its key, and the CA to verify the API server with. */
export interface ClientCredentials {
  caPem: string;
  certificatePem: string;
  privateKeyPem: string;
  expiresAt: Date;
}

/**
 * A short-lived client certificate for `user` in `groups`, signed by the
 * cluster CA: the API server (anonymous auth off) accepts it until it expires.
 */
export async function issueClientCredentials(
  pki: Pick<ClusterPki, 'clusterCa'>,
  options: { user: string; groups: readonly string[]; validityMinutes: number; now?: Date },
): Promise<ClientCredentials> {
  const now = options.now ?? new Date();
  const expiresAt = new Date(now.getTime() + options.validityMinutes * 60_000);
  const client = await issueCertificate(pki.clusterCa, {
    commonName: options.user,
    organizations: options.groups,
    usages: 'client',
    validity: { notBefore: new Date(now.getTime() - CLOCK_SKEW_MS), notAfter: expiresAt },
  });
  return { caPem: pki.clusterCa.certificatePem, ...client, expiresAt };
}

/**
 * A kubeconfig with a short-lived client certificate for `user` in `groups`: it expires after `validityMinutes`, so a
 * leaked file stops working on its own.
 */
export async function issueKubeconfig(pki: Pick<ClusterPki, 'clusterCa'>, options: KubeconfigOptions): Promise<string> {
  const clusterName = options.clusterName ?? 'kubernetes';
  const { user, groups, validityMinutes } = options;
  const client = await issueClientCredentials(pki, { user, groups, validityMinutes, ...(options.now === undefined ? {} : { now: options.now }) });
  const base64 = (pem: string) => Buffer.from(pem).toString('base64');
  const context = `${user}@${clusterName}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: clusterName, cluster: { server: options.endpoint, 'certificate-authority-data': base64(client.caPem) } }],
    users: [{ name: user, user: { 'client-certificate-data': base64(client.certificatePem), 'client-key-data': base64(client.privateKeyPem) } }],
    contexts: [{ name: context, context: { cluster: clusterName, user } }],
    'current-context': context,
    preferences: {},
  });
}

/** The PKI as PEM text only: what is sealed and stored, and what machines receive. */
export interface ClusterPkiPem {
  clusterCa: IssuedCertificate;
  etcdCa: IssuedCertificate;
  frontProxyCa: IssuedCertificate;
  serviceAccount: KeyPairPem;
  apiServer: IssuedCertificate;
}

export function pkiToPem(pki: ClusterPki): ClusterPkiPem {
  const pem = ({ certificatePem, privateKeyPem }: IssuedCertificate): IssuedCertificate => ({ certificatePem, privateKeyPem });
  return { clusterCa: pem(pki.clusterCa), etcdCa: pem(pki.etcdCa), frontProxyCa: pem(pki.frontProxyCa), serviceAccount: pki.serviceAccount, apiServer: pem(pki.apiServer) };
}

/** A stored CA, ready to sign again (e.g. short-lived admin certificates). */
export async function certificateAuthorityFromPem(stored: IssuedCertificate): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(stored.certificatePem);
  const signingKey = await crypto().subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(stored.privateKeyPem), EC_KEY, false, ['sign']);
  return { certificate, signingKey, certificatePem: stored.certificatePem, privateKeyPem: stored.privateKeyPem };
}

/** The files kubeadm expects under /etc/kubernetes/pki on every control plane machine. */
export function controlPlanePkiFiles(pki: ClusterPkiPem): Record<'ca.crt' | 'ca.key' | 'sa.key' | 'sa.pub' | 'front-proxy-ca.crt' | 'front-proxy-ca.key' | 'etcd/ca.crt' | 'etcd/ca.key', string> {
  return {
    'ca.crt': pki.clusterCa.certificatePem,
    'ca.key': pki.clusterCa.privateKeyPem,
    'sa.key': pki.serviceAccount.privateKeyPem,
    'sa.pub': pki.serviceAccount.publicKeyPem,
    'front-proxy-ca.crt': pki.frontProxyCa.certificatePem,
    'front-proxy-ca.key': pki.frontProxyCa.privateKeyPem,
    'etcd/ca.crt': pki.etcdCa.certificatePem,
    'etcd/ca.key': pki.etcdCa.privateKeyPem,
  };
}
