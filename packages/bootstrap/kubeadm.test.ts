import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ClusterSpec, KUBERNETES_RELEASES } from '#core';
import {
  BOOT_PLACEHOLDERS,
  STRONG_CIPHER_SUITES,
  admissionConfiguration,
  apiServerArgs,
  clusterConfiguration,
  discoveryKubeconfig,
  initConfiguration,
  joinConfiguration,
  kubeletConfiguration,
  renderInitConfiguration,
  type ExtraArg,
} from './kubeadm.ts';

function order(overrides: Record<string, unknown> = {}): ClusterSpec {
  return ClusterSpec.parse({ name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }], ...overrides });
}

function argMap(list: unknown): Record<string, string> {
  return Object.fromEntries((list as ExtraArg[]).map(({ name, value }) => [name, value]));
}

interface ClusterConfigurationShape {
  kubernetesVersion: string;
  controlPlaneEndpoint: string;
  networking: { podSubnet: string; serviceSubnet: string };
  apiServer: { extraArgs: ExtraArg[]; certSANs: string[] };
  controllerManager: { extraArgs: ExtraArg[] };
  scheduler: { extraArgs: ExtraArg[] };
  etcd: { local: { extraArgs: ExtraArg[] } };
}

describe('kubeadm configuration', () => {
  it('renders init, cluster and kubelet configuration as three v1beta4/v1beta1 documents', () => {
    const docs = parseAllDocuments(renderInitConfiguration(order(), { apiHost: 'api.example.com' })).map((doc) => doc.toJS() as { apiVersion: string; kind: string });
    expect(docs.map((doc) => `${doc.apiVersion}/${doc.kind}`)).toEqual([
      'kubeadm.k8s.io/v1beta4/InitConfiguration',
      'kubeadm.k8s.io/v1beta4/ClusterConfiguration',
      'kubelet.config.k8s.io/v1beta1/KubeletConfiguration',
    ]);
  });

  it.each(KUBERNETES_RELEASES)('builds Kubernetes $minor at its pinned patch release $patch', (release) => {
    const config = clusterConfiguration(order({ kubernetesVersion: release.minor })) as unknown as ClusterConfigurationShape;
    expect(config.kubernetesVersion).toBe(release.patch);
  });

  it('refuses a minor missing from the version table instead of guessing a release', () => {
    expect(() => clusterConfiguration(order({ kubernetesVersion: '1.99' }))).toThrow(/1\.99 is not in Kiln's version table/);
  });

  it('takes networking from the order', () => {
    const spec = order({ network: { podCidr: '10.200.0.0/16', serviceCidr: '10.100.0.0/16' } });
    const config = clusterConfiguration(spec, { apiHost: 'api.example.com' }) as unknown as ClusterConfigurationShape;
    expect(config.controlPlaneEndpoint).toBe('api.example.com:6443');
    expect(config.networking).toMatchObject({ podSubnet: '10.200.0.0/16', serviceSubnet: '10.100.0.0/16' });
    expect(config.apiServer.certSANs).toEqual(['api.example.com', '127.0.0.1']);
  });

  it('leaves boot-time placeholders where the endpoint is not yet known', () => {
    const config = clusterConfiguration(order()) as unknown as ClusterConfigurationShape;
    expect(config.controlPlaneEndpoint).toBe(`${BOOT_PLACEHOLDERS.apiHost}:6443`);
  });

  it('hardens the control plane per the CIS benchmark', () => {
    const config = clusterConfiguration(order()) as unknown as ClusterConfigurationShape;
    const api = argMap(config.apiServer.extraArgs);
    expect(api).toMatchObject({
      'anonymous-auth': 'false',
      'authorization-mode': 'Node,RBAC',
      profiling: 'false',
      'service-account-lookup': 'true',
      'encryption-provider-config': '/etc/kubernetes/encryption/config.yaml',
      'kubelet-certificate-authority': '/etc/kubernetes/pki/ca.crt',
      'tls-min-version': 'VersionTLS12',
      'request-timeout': '300s',
    });
    expect(api['enable-admission-plugins']?.split(',')).toEqual(expect.arrayContaining(['NodeRestriction', 'PodSecurity']));
    expect(Number(api['audit-log-maxage'])).toBeGreaterThanOrEqual(30);
    expect(Number(api['audit-log-maxbackup'])).toBeGreaterThanOrEqual(10);
    expect(Number(api['audit-log-maxsize'])).toBeGreaterThanOrEqual(100);
    expect(api['audit-log-path']).toBeTruthy();
    expect(api['audit-policy-file']).toBeTruthy();
    expect(api['tls-cipher-suites']?.split(',')).toEqual([...STRONG_CIPHER_SUITES]);
    expect(argMap(config.controllerManager.extraArgs)).toMatchObject({
      profiling: 'false',
      'use-service-account-credentials': 'true',
      'feature-gates': 'RotateKubeletServerCertificate=true',
      'bind-address': '127.0.0.1',
    });
    expect(Number(argMap(config.controllerManager.extraArgs)['terminated-pod-gc-threshold'])).toBeGreaterThan(0);
    expect(argMap(config.scheduler.extraArgs)).toMatchObject({ profiling: 'false', 'bind-address': '127.0.0.1' });
    expect(argMap(config.etcd.local.extraArgs)).toMatchObject({ 'client-cert-auth': 'true', 'peer-client-cert-auth': 'true', 'auto-tls': 'false', 'peer-auto-tls': 'false' });
  });

  it('hardens the kubelet', () => {
    expect(kubeletConfiguration()).toMatchObject({
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true } },
      authorization: { mode: 'Webhook' },
      readOnlyPort: 0,
      rotateCertificates: true,
      serverTLSBootstrap: true,
      protectKernelDefaults: true,
      makeIPTablesUtilChains: true,
      tlsCipherSuites: [...STRONG_CIPHER_SUITES],
    });
    const kubelet = kubeletConfiguration() as unknown as { eventRecordQPS: number; streamingConnectionIdleTimeout: string };
    expect(kubelet.eventRecordQPS).toBeGreaterThan(0);
    expect(kubelet.streamingConnectionIdleTimeout).not.toMatch(/^0/);
  });

  it('sets Pod Security defaults from the order', () => {
    const restricted = admissionConfiguration(order()) as unknown as { plugins: { name: string; configuration?: { defaults: Record<string, string> } }[] };
    expect(restricted.plugins.find((plugin) => plugin.name === 'PodSecurity')?.configuration?.defaults).toMatchObject({ enforce: 'restricted', audit: 'restricted', warn: 'restricted' });
    const auditOnly = admissionConfiguration(order({ podSecurity: { defaultLevel: 'baseline', defaultMode: 'audit' } })) as unknown as typeof restricted;
    expect(auditOnly.plugins.find((plugin) => plugin.name === 'PodSecurity')?.configuration?.defaults).toMatchObject({ enforce: 'privileged', audit: 'baseline', warn: 'baseline' });
    // Each mode its own level: warn stricter than enforce shows what restricted would refuse before it is enforced.
    const stricterWarn = admissionConfiguration(order({ podSecurity: { enforce: 'baseline', warn: 'restricted' } })) as unknown as typeof restricted;
    expect(stricterWarn.plugins.find((plugin) => plugin.name === 'PodSecurity')?.configuration?.defaults).toEqual({
      enforce: 'baseline',
      'enforce-version': 'latest',
      audit: 'restricted',
      'audit-version': 'latest',
      warn: 'restricted',
      'warn-version': 'latest',
    });
  });

  it('joins workers with their pool labels and taints, and a short-lived token', () => {
    const spec = order({ nodePools: [{ name: 'gpu', size: 1, labels: { team: 'ml', 'node-role.kubernetes.io/gpu': '' }, taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] }] });
    const pool = spec.nodePools[0];
    const join = joinConfiguration(spec, 'worker', pool) as unknown as {
      discovery: Record<string, unknown>;
      nodeRegistration: { taints: unknown[]; kubeletExtraArgs: ExtraArg[] };
      controlPlane?: unknown;
    };
    expect(join.controlPlane).toBeUndefined();
    expect(join.discovery).toEqual({ file: { kubeConfigPath: '/run/kiln/discovery.conf' } });
    expect(join.nodeRegistration.taints).toEqual([{ key: 'gpu', value: 'true', effect: 'NoSchedule' }]);
    const labels = argMap(join.nodeRegistration.kubeletExtraArgs)['node-labels'];
    expect(labels).toContain('team=ml');
    expect(labels).toContain('kiln.dev/pool=gpu');
    expect(labels).not.toContain('node-role.kubernetes.io');
    expect(joinConfiguration(spec, 'control-plane')).toHaveProperty('controlPlane');
  });

  it('discovers the cluster from a kubeconfig whose bootstrap token authenticates, so joins need no anonymous access (CIS 1.2.1)', () => {
    expect(argMap(apiServerArgs())['anonymous-auth']).toBe('false');
    for (const role of ['worker', 'control-plane'] as const) {
      const join = joinConfiguration(order(), role, order().nodePools[0]) as unknown as { discovery: Record<string, unknown> };
      // Token discovery reads cluster-info anonymously: with anonymous auth off it gets 401.
      expect(join.discovery.bootstrapToken).toBeUndefined();
      expect(join.discovery).toEqual({ file: { kubeConfigPath: '/run/kiln/discovery.conf' } });
    }
    expect(discoveryKubeconfig()).toEqual({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kubernetes', cluster: { server: `https://${BOOT_PLACEHOLDERS.apiHost}:6443`, 'certificate-authority-data': BOOT_PLACEHOLDERS.caData } }],
      users: [{ name: 'kiln-bootstrap', user: { token: BOOT_PLACEHOLDERS.bootstrapToken } }],
      contexts: [{ name: 'kiln-bootstrap@kubernetes', context: { cluster: 'kubernetes', user: 'kiln-bootstrap' } }],
      'current-context': 'kiln-bootstrap@kubernetes',
    });
    const filled = discoveryKubeconfig({ apiHost: 'api.example', caCertificatePem: 'PEM' }) as unknown as { clusters: { cluster: Record<string, string> }[] };
    expect(filled.clusters[0]?.cluster).toEqual({ server: 'https://api.example:6443', 'certificate-authority-data': Buffer.from('PEM').toString('base64') });
    // The init token only authenticates joins: nothing verifies a cluster-info signature.
    expect((initConfiguration(order()) as unknown as { bootstrapTokens: { usages: string[] }[] }).bootstrapTokens[0]?.usages).toEqual(['authentication']);
  });
});
