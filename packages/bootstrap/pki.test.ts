import { X509Certificate, createPrivateKey } from 'node:crypto';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  certificateAuthorityFromPem,
  controlPlanePkiFiles,
  firstServiceIp,
  generateClusterPki,
  issueKubeconfig,
  issueCertificate,
  pkiToPem,
} from './pki.ts';

const NOW = new Date('2026-03-01T12:00:00Z');

async function pkiFor(serviceCidr = '10.96.0.0/12') {
  return generateClusterPki({ clusterName: 'demo', apiHost: 'demo-api.elb.eu-central-1.amazonaws.com', serviceCidr, now: NOW });
}

describe('generateClusterPki', () => {
  it('creates three distinct self-signed CAs', async () => {
    const pki = await pkiFor();
    const cas = [pki.clusterCa, pki.etcdCa, pki.frontProxyCa].map((ca) => new X509Certificate(ca.certificatePem));
    for (const ca of cas) {
      expect(ca.ca).toBe(true);
      expect(ca.issuer).toBe(ca.subject);
      expect(ca.verify(ca.publicKey)).toBe(true);
      expect(ca.keyUsage).toBeUndefined();
      expect(new Date(ca.validFrom).getTime()).toBeLessThanOrEqual(NOW.getTime());
      expect(new Date(ca.validTo).getTime()).toBeGreaterThan(NOW.getTime() + 5 * 365 * 24 * 3600_000);
    }
    expect(new Set(cas.map((ca) => ca.fingerprint256)).size).toBe(3);
    expect(cas[1]?.subject).toContain('etcd');
    expect(createPrivateKey(pki.clusterCa.privateKeyPem).asymmetricKeyType).toBe('ec');
  });

  it('gives the API server certificate every name clients use, signed by the cluster CA', async () => {
    const pki = await pkiFor();
    const cert = new X509Certificate(pki.apiServer.certificatePem);
    const ca = new X509Certificate(pki.clusterCa.certificatePem);
    expect(cert.subjectAltName?.split(', ').sort()).toEqual(
      [
        'DNS:demo-api.elb.eu-central-1.amazonaws.com',
        'DNS:kubernetes',
        'DNS:kubernetes.default',
        'DNS:kubernetes.default.svc',
        'DNS:kubernetes.default.svc.cluster.local',
        'IP Address:10.96.0.1',
      ].sort(),
    );
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.checkPrivateKey(createPrivateKey(pki.apiServer.privateKeyPem))).toBe(true);
  });

  it('makes an RSA service-account key pair', async () => {
    const pki = await pkiFor();
    expect(pki.serviceAccount.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const key = createPrivateKey(pki.serviceAccount.privateKeyPem);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('puts the first service IP of any range on the certificate', async () => {
    expect(firstServiceIp('10.96.0.0/12')).toBe('10.96.0.1');
    expect(firstServiceIp('172.20.5.0/16')).toBe('172.20.0.1');
    const cert = new X509Certificate((await pkiFor('172.20.0.0/16')).apiServer.certificatePem);
    expect(cert.subjectAltName).toContain('IP Address:172.20.0.1');
  });
});

describe('issueCertificate', () => {
  it('honours usages, organizations and the validity window', async () => {
    const pki = await pkiFor();
    const notBefore = new Date('2026-03-01T00:00:00Z');
    const notAfter = new Date('2026-03-02T00:00:00Z');
    const issued = await issueCertificate(pki.etcdCa, { commonName: 'etcd-peer', organizations: ['a', 'b'], dnsNames: ['cp-0'], ipAddresses: ['10.0.1.5'], usages: 'both', validity: { notBefore, notAfter } });
    const cert = new X509Certificate(issued.certificatePem);
    expect(cert.subject).toContain('CN=etcd-peer');
    expect(cert.subject).toContain('O=a');
    expect(new Date(cert.validFrom).getTime()).toBe(notBefore.getTime());
    expect(new Date(cert.validTo).getTime()).toBe(notAfter.getTime());
    expect([...cert.keyUsage].sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.checkIssued(new X509Certificate(pki.etcdCa.certificatePem))).toBe(true);
    expect(cert.checkIssued(new X509Certificate(pki.clusterCa.certificatePem))).toBe(false);
  });
});

describe('issueKubeconfig', () => {
  it('returns a kubeconfig with a short-lived certificate for the user and groups asked, chained to the cluster CA', async () => {
    const pki = await pkiFor();
    const text = await issueKubeconfig(pki, { endpoint: 'https://demo-api.example:6443', validityMinutes: 30, user: 'kiln:key:key_1', groups: ['kiln:viewers'], clusterName: 'demo', now: NOW });
    const config = parse(text) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
      users: { name: string; user: { 'client-certificate-data': string; 'client-key-data': string } }[];
      'current-context': string;
    };
    expect(config['current-context']).toBe('kiln:key:key_1@demo');
    expect(config.users[0]?.name).toBe('kiln:key:key_1');
    const decode = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString();
    expect(config.clusters[0]?.cluster.server).toBe('https://demo-api.example:6443');
    expect(decode(config.clusters[0]?.cluster['certificate-authority-data'])).toBe(pki.clusterCa.certificatePem);
    const cert = new X509Certificate(decode(config.users[0]?.user['client-certificate-data']));
    const ca = new X509Certificate(pki.clusterCa.certificatePem);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe('O=kiln:viewers\nCN=kiln:key:key_1');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(new Date(cert.validTo).getTime()).toBe(NOW.getTime() + 30 * 60_000);
    expect(cert.checkPrivateKey(createPrivateKey(decode(config.users[0]?.user['client-key-data'])))).toBe(true);
  });
});

describe('stored PKI', () => {
  it('signs client certificates again from its PEM form, chained to the same CA', async () => {
    const pki = await generateClusterPki({ clusterName: 'stored', apiHost: 'api.example.test', serviceCidr: '10.96.0.0/12' });
    const stored = pkiToPem(pki);
    const reloaded = await certificateAuthorityFromPem(stored.clusterCa);
    const kubeconfig = parse(await issueKubeconfig({ clusterCa: reloaded }, { endpoint: 'https://api.example.test:6443', validityMinutes: 10, user: 'kiln:key:key_1', groups: ['kiln:admins'] })) as {
      users: { user: { 'client-certificate-data': string } }[];
    };
    const client = new X509Certificate(Buffer.from(kubeconfig.users[0]?.user['client-certificate-data'] ?? '', 'base64'));
    expect(client.verify(new X509Certificate(stored.clusterCa.certificatePem).publicKey)).toBe(true);
    expect(Object.keys(controlPlanePkiFiles(stored))).toHaveLength(8);
  });
});
