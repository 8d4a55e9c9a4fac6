import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ADDON_RELEASES, ClusterSpec } from '#core';
import { ADDON_LABEL } from './addon.ts';
import { PLACEHOLDER_ISSUER_CA } from './cert-manager.ts';
import { forbiddenAdminBindings } from './rbac.ts';
import { renderAddons } from './render.ts';
import { InvalidAddonObjectError, validateObject } from './validate.ts';
import type { Manifest } from './kube.ts';

function order(overrides: Partial<Record<string, unknown>> = {}): ClusterSpec {
  return ClusterSpec.parse({ name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }], ...overrides });
}

function find(spec: ClusterSpec, kind: string, name: string): Manifest {
  const object = renderAddons('cls_test', spec, { issuerCa: PLACEHOLDER_ISSUER_CA })
    .flatMap((addon) => addon.objects)
    .find((candidate) => candidate.kind === kind && candidate.metadata.name === name);
  if (object === undefined) throw new Error(`${kind}/${name} not rendered`);
  return object;
}

const valuesOf = (chart: Manifest): Record<string, unknown> => parse((chart.spec as { valuesContent: string }).valuesContent) as Record<string, unknown>;

describe('renderAddons', () => {
  it('configures Cilium with WireGuard strict mode over the order pod CIDR', () => {
    const chart = find(order({ network: { podCidr: '10.200.0.0/16' } }), 'HelmChart', 'cilium');
    expect(chart.spec).toMatchObject({ bootstrap: true, chart: 'cilium', version: '1.20.2', targetNamespace: 'kube-system' });
    expect(valuesOf(chart)).toMatchObject({
      routingMode: 'tunnel',
      tunnelProtocol: 'vxlan',
      kubeProxyReplacement: true,
      ipam: { mode: 'cluster-pool', operator: { clusterPoolIPv4PodCIDRList: ['10.200.0.0/16'] } },
      encryption: { enabled: true, type: 'wireguard', nodeEncryption: true, strictMode: {
          egress: { enabled: true, cidr: '10.200.0.0/16', allowRemoteNodeIdentities: true },
          ingress: { enabled: true },
        },
      },
      hubble: { enabled: true, tls: { enabled: true, auto: { enabled: true, method: 'cronJob' } } },
      operator: { replicas: 2 },
    });
    // Chart 1.20 ignores the pre-1.19 flat keys without a word, so they must not come back.
    const strictMode = (valuesOf(chart) as { encryption: { strictMode: Record<string, unknown> } }).encryption.strictMode;
    expect(Object.keys(strictMode).sort()).toEqual(['egress', 'ingress']);
  });

  it('renders the optional extensions only when the order enables them, each object labelled with its add-on', () => {
    const off = renderAddons('cls_test', order(), { issuerCa: PLACEHOLDER_ISSUER_CA });
    expect(off.find((addon) => addon.name === 'tetragon')?.objects).toEqual([]);
    const on = renderAddons('cls_test', order({ extensions: { policyEngine: { enabled: true }, intrusionDetection: { enabled: true } } }), { issuerCa: PLACEHOLDER_ISSUER_CA });
    const tetragon = on.find((addon) => addon.name === 'tetragon')?.objects ?? [];
    expect(tetragon.map((object) => object.kind)).toEqual(['HelmChart', 'TracingPolicy']);
    expect(tetragon.every((object) => object.metadata.labels?.[ADDON_LABEL] === 'tetragon')).toBe(true);
  });

  it('backs the order pod security level with Kyverno and kills a container process that makes itself root, not its runtime', () => {
    const spec = order({ extensions: { policyEngine: { enabled: true }, intrusionDetection: { enabled: true } } });
    expect(find(spec, 'ClusterPolicy', 'kiln-pod-security').spec).toMatchObject({
      rules: [{ validate: { failureAction: 'Enforce', podSecurity: { level: 'restricted', version: 'latest' } }, exclude: { any: [{ resources: { namespaces: expect.arrayContaining(['kube-system']) as unknown } }] } }],
    });
    const kprobes = (find(spec, 'TracingPolicy', 'kiln-kill-privilege-gain').spec as { kprobes: { call: string; selectors: unknown[] }[] }).kprobes;
    expect(kprobes.map((kprobe) => kprobe.call)).toEqual(['sys_setuid', 'sys_setreuid', 'sys_setresuid', 'sys_setfsuid', 'security_bprm_committed_creds']);
    // setuid(0) is killed only for a caller that is not root (runc's init is) in the host's user namespace.
    expect(kprobes[0]).toMatchObject({
      data: [
        { source: 'current_task', resolve: 'cred.euid.val' },
        { source: 'current_task', resolve: 'cred.user_ns.level' },
      ],
      selectors: [
        {
          matchArgs: [{ index: 0, operator: 'Equal', values: ['0'] }],
          matchData: [
            { index: 0, operator: 'NotEqual', values: ['0'] },
            { index: 1, operator: 'Equal', values: ['0'] },
          ],
          matchNamespaces: [{ namespace: 'Pid', operator: 'NotIn', values: ['host_ns'] }],
          matchActions: [{ action: 'Sigkill' }],
        },
      ],
    });
    expect(kprobes.every((kprobe) => kprobe.selectors.length <= 5)).toBe(true);
  });

  it('renders the CA and ACME issuers of the order', () => {
    const spec = order({ certManager: { acmeIssuers: [{ name: 'letsencrypt', server: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com' }] } });
    expect(find(spec, 'ClusterIssuer', 'kiln-cluster-issuer').spec).toEqual({ ca: { secretName: 'kiln-cluster-issuer-ca' } });
    expect(find(spec, 'ClusterIssuer', 'letsencrypt').spec).toMatchObject({
      acme: { email: 'ops@example.com', privateKeySecretRef: { name: 'letsencrypt-account-key' }, solvers: [{ http01: { ingress: { ingressClassName: 'nginx' } } }] },
    });
    expect(find(spec, 'HelmChart', 'cert-manager').spec).toMatchObject({ valuesContent: expect.stringContaining('enabled: true') as unknown });
  });
});

describe('kubelet serving certificates', () => {
  it('approves only EC2 IP hostnames, as Debian sets them, that resolve to addresses in the VPC', () => {
    for (const region of ['eu-central-1', 'us-east-1']) {
      const values = valuesOf(find(order({ region, network: { vpcCidr: '10.30.0.0/16' } }), 'HelmChart', 'kubelet-csr-approver')) as {
        providerRegex: string;
        providerIpPrefixes: string[];
        bypassDnsResolution: boolean;
        allowedDnsNames: number;
      };
      // The name must resolve, through the VPC's DNS, to addresses in the VPC: that ties it to the region's instances.
      expect(values).toMatchObject({ providerIpPrefixes: ['10.30.0.0/16'], bypassDnsResolution: false, allowedDnsNames: 1 });
      const pattern = new RegExp(values.providerRegex);
      expect(pattern.test('ip-10-30-1-23'), region).toBe(true);
      for (const other of ['ip-10-30-1-23.eu-central-1.compute.internal', 'ip-10-30-1-23.example.com', 'api', 'ip-10-30-1', 'i-0123456789abcdef0', 'xip-10-30-1-23']) {
        expect(pattern.test(other), other).toBe(false);
      }
    }
  });
});

describe('Pod Security Admission labels', () => {
  const enforced = (spec: ClusterSpec, name: string) => find(spec, 'Namespace', name).metadata.labels?.['pod-security.kubernetes.io/enforce'];

  it('gives each system namespace only what it needs, and user namespaces the order level', () => {
    const spec = order({ podSecurity: { defaultLevel: 'restricted', namespaces: { legacy: { level: 'baseline', mode: 'warn' } } } });
    expect(enforced(spec, 'kube-system')).toBe('privileged');
    expect(enforced(spec, 'kube-public')).toBe('restricted');
    expect(enforced(spec, 'kube-node-lease')).toBe('restricted');
    expect(enforced(spec, 'kiln-system')).toBe('restricted');
    expect(enforced(spec, 'default')).toBe('restricted');
    // A namespace in warn mode is warned and audited at its level, not enforced.
    expect(find(spec, 'Namespace', 'legacy').metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/warn': 'baseline', 'pod-security.kubernetes.io/audit': 'baseline' });
    expect(enforced(spec, 'legacy')).toBeUndefined();
  });

  it('labels each mode with its own level: the default namespace the cluster-wide ones, an override only the modes it sets', () => {
    const spec = order({ podSecurity: { enforce: 'baseline', warn: 'restricted', namespaces: { legacy: { enforce: 'privileged' }, strict: { level: 'restricted' } } } });
    const psaLabelsOf = (name: string) => Object.fromEntries(Object.entries(find(spec, 'Namespace', name).metadata.labels ?? {}).filter(([key]) => key.startsWith('pod-security.kubernetes.io/')));
    expect(psaLabelsOf('default')).toEqual({
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/enforce-version': 'latest',
      'pod-security.kubernetes.io/audit': 'restricted',
      'pod-security.kubernetes.io/audit-version': 'latest',
      'pod-security.kubernetes.io/warn': 'restricted',
      'pod-security.kubernetes.io/warn-version': 'latest',
    });
    expect(psaLabelsOf('legacy')).toEqual({ 'pod-security.kubernetes.io/enforce': 'privileged', 'pod-security.kubernetes.io/enforce-version': 'latest' });
    expect(enforced(spec, 'strict')).toBe('restricted');
    expect(find(spec, 'ConfigMap', 'cluster-info').data).toMatchObject({ podSecurityDefault: 'enforce:baseline,audit:restricted,warn:restricted' });
  });

  it('has Kyverno refuse below the enforce level and report below a stricter audit level, per namespace as admission resolves it', () => {
    const spec = order({ extensions: { policyEngine: { enabled: true } }, podSecurity: { enforce: 'baseline', namespaces: { legacy: { enforce: 'privileged' }, watched: { level: 'baseline', mode: 'audit' } } } });
    const rules = (find(spec, 'ClusterPolicy', 'kiln-pod-security').spec as { rules: { name: string; validate: { failureAction: string; podSecurity: { level: string } } }[] }).rules;
    expect(rules.map((rule) => [rule.name, rule.validate.failureAction, rule.validate.podSecurity.level])).toEqual([
      ['default-baseline', 'Enforce', 'baseline'],
      ['default-baseline-audit-restricted', 'Audit', 'restricted'],
      // legacy enforces nothing; its audit level is the cluster-wide one.
      ['namespace-legacy-audit-restricted', 'Audit', 'restricted'],
      // watched sets audit (and warn) only: it enforces the cluster-wide baseline, and audits at baseline too.
      ['namespace-watched', 'Enforce', 'baseline'],
    ]);
  });
});

describe('validateObject', () => {
  it('rejects a Deployment that kubernetes-models finds invalid', () => {
    const broken: Manifest = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x', namespace: 'default' }, spec: { replicas: 'two', selector: {}, template: {} } };
    expect(() => validateObject(broken)).toThrow(InvalidAddonObjectError);
  });

  it('rejects a HelmChart with a floating chart version', () => {
    const chart = find(order(), 'HelmChart', 'cilium');
    expect(() => validateObject({ ...chart, spec: { ...(chart.spec as object), version: 'latest' } })).toThrow(/version/);
  });

  it('rejects a HelmChart whose install Job image floats', () => {
    const chart = find(order(), 'HelmChart', 'cilium');
    expect(() => validateObject({ ...chart, spec: { ...(chart.spec as object), jobImage: 'docker.io/rancher/klipper-helm:latest' } })).toThrow(/pinned/);
  });

  it('refuses kinds it has no schema for', () => {
    expect(() => validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toThrow(/no schema/);
  });
});

describe('forbiddenAdminBindings', () => {
  const binding = (namespace: string, kind = 'ClusterRoleBinding') => ({
    kind,
    metadata: { name: 'b', ...(kind === 'RoleBinding' ? { namespace } : {}) },
    roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: 'ci', ...(kind === 'RoleBinding' ? {} : { namespace }) }],
  });

  it('reports cluster-admin for a tenant namespace service account, in either binding kind', () => {
    expect(forbiddenAdminBindings([binding('team-a'), binding('team-b', 'RoleBinding')])).toHaveLength(2);
  });

  it('allows system namespaces and groups', () => {
    expect(forbiddenAdminBindings([binding('kube-system'), { ...binding('x'), subjects: [{ kind: 'Group', name: 'kubeadm:cluster-admins' }] }])).toEqual([]);
  });
});

describe('kured', () => {
  it('reboots one node at a time inside the order\'s maintenance window, control planes included', () => {
    const spec = ClusterSpec.parse({ name: 'k', region: 'eu-central-1', nodePools: [{ name: 'p', size: 1 }], maintenance: { window: { days: ['sat', 'sun'], start: '22:30', durationMinutes: 180 } } });
    const chart = renderAddons('cls_test', spec, { issuerCa: PLACEHOLDER_ISSUER_CA }).find((addon) => addon.name === 'kured')?.objects[0];
    expect(chart).toMatchObject({ kind: 'HelmChart', metadata: { name: 'kured', namespace: 'kube-system' }, spec: { chart: 'kured', version: ADDON_RELEASES.kured.version, targetNamespace: 'kube-system' } });
    const values = parse((chart?.spec as { valuesContent: string }).valuesContent) as { configuration: Record<string, unknown>; tolerations: { key: string }[] };
    expect(values.configuration).toMatchObject({ rebootDays: ['sa', 'su'], startTime: '22:30', endTime: '01:30', timeZone: 'UTC', concurrency: 1, rebootSentinel: '/var/run/reboot-required' });
    expect(values.tolerations.map((toleration) => toleration.key)).toContain('node-role.kubernetes.io/control-plane');
  });
});
