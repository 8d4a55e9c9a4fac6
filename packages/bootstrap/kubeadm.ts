import { stringify } from 'yaml';
import { type ClusterSpec, type KubernetesRelease, type NodePoolSpec, kubernetesReleaseOf, podSecurityLevels } from '#core';
import { KMS_PLUGIN_DIR } from './encryption-config.ts';
import type { KubeObject } from './kube-object.ts';

/**
 * kubeadm (v1beta4) and kubelet configuration for a cluster order, hardened
 * to pass the CIS Kubernetes Benchmark 1.12 checks that apply to kubeadm
 * clusters (kube-bench ids in the comments).
 */

/**
 * The release a cluster's machines run, from Kiln's version table. A minor the
 * table does not know cannot be built: the order rules refuse it on arrival,
 * so meeting one here is a bug, not a client error.
 */
export function kubernetesRelease(minor: string): KubernetesRelease {
  const release = kubernetesReleaseOf(minor);
  if (release === undefined) throw new Error(`Kubernetes ${minor} is not in Kiln's version table.`);
  return release;
}

/**
 * Values a machine only learns at boot, from the cluster's secret store; the
 * bootstrap script replaces these markers before kubeadm reads the file, so
 * user data never carries them.
 */
export const BOOT_PLACEHOLDERS = {
  apiHost: '@KILN_API_HOST@',
  bootstrapToken: '@KILN_BOOTSTRAP_TOKEN@',
  /** The cluster CA certificate (PEM), base64-encoded as a kubeconfig's `certificate-authority-data`. */
  caData: '@KILN_CA_DATA@',
  /** `aws:///<zone>/<instance-id>`, from the instance metadata (IMDSv2) at boot. */
  providerId: '@KILN_PROVIDER_ID@',
} as const;

export const API_SERVER_PORT = 6443;
export const BOOTSTRAP_TOKEN_TTL = '2h';

export const PATHS = {
  pki: '/etc/kubernetes/pki',
  kilnConfig: '/etc/kubernetes/kiln',
  auditPolicy: '/etc/kubernetes/kiln/audit-policy.yaml',
  admissionConfig: '/etc/kubernetes/kiln/admission-configuration.yaml',
  eventRateLimit: '/etc/kubernetes/kiln/event-rate-limit.yaml',
  encryptionDir: '/etc/kubernetes/encryption',
  encryptionConfig: '/etc/kubernetes/encryption/config.yaml',
  auditLogDir: '/var/log/kubernetes/audit',
  auditLog: '/var/log/kubernetes/audit/audit.log',
  patches: '/etc/kubernetes/kiln/patches',
  /** The discovery kubeconfig `kubeadm join` reads; filled at boot into /run (tmpfs), removed after the join. */
  discoveryKubeconfig: '/run/kiln/discovery.conf',
} as const;

/** The TLS 1.2 suites both kube-bench 1.2.29 (API server) and 4.2.9 (kubelet) accept; TLS 1.3 suites are not configurable in Go. */
export const STRONG_CIPHER_SUITES = [
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305',
] as const;

export interface KubeadmTarget {
  /** The API load balancer's DNS name; the boot placeholder when not yet known. */
  apiHost?: string;
  bootstrapToken?: string;
  /** The cluster CA certificate (PEM) joining machines trust; the boot placeholder when not yet known. */
  caCertificatePem?: string;
}

export interface ExtraArg {
  name: string;
  value: string;
}


const KUBEADM_API = 'kubeadm.k8s.io/v1beta4';

function args(values: Record<string, string>): ExtraArg[] {
  return Object.entries(values).map(([name, value]) => ({ name, value }));
}

function endpointOf(target: KubeadmTarget): string {
  return `${target.apiHost ?? BOOT_PLACEHOLDERS.apiHost}:${API_SERVER_PORT}`;
}

const TLS_ARGS = { 'tls-min-version': 'VersionTLS12', 'tls-cipher-suites': STRONG_CIPHER_SUITES.join(',') };

/** kube-apiserver flags: kube-bench 1.2.x. */
export function apiServerArgs(): ExtraArg[] {
  return args({
    'anonymous-auth': 'false', // 1.2.1; the health probes are switched to TCP by a kubeadm patch
    'authorization-mode': 'Node,RBAC', // 1.2.5-1.2.7
    'enable-admission-plugins': 'NodeRestriction,PodSecurity,EventRateLimit,DenyServiceExternalIPs,AlwaysPullImages', // 1.2.3, 1.2.8, 1.2.11, 1.2.13
    'admission-control-config-file': PATHS.admissionConfig,
    'kubelet-certificate-authority': `${PATHS.pki}/ca.crt`, // 1.2.4
    profiling: 'false', // 1.2.14
    'audit-log-path': PATHS.auditLog, // 1.2.15
    'audit-log-maxage': '30', // 1.2.16
    'audit-log-maxbackup': '10', // 1.2.17
    'audit-log-maxsize': '100', // 1.2.18
    'audit-policy-file': PATHS.auditPolicy,
    'request-timeout': '300s', // 1.2.19, the benchmark's example
    'service-account-lookup': 'true', // 1.2.20
    'service-account-extend-token-expiration': 'false', // 1.2.30
    'encryption-provider-config': PATHS.encryptionConfig, // 1.2.27
    ...TLS_ARGS, // 1.2.29
  });
}

export function controllerManagerArgs(): ExtraArg[] {
  return args({
    profiling: 'false', // 1.3.2
    'terminated-pod-gc-threshold': '1000', // 1.3.1
    'use-service-account-credentials': 'true', // 1.3.3
    'feature-gates': 'RotateKubeletServerCertificate=true', // 1.3.6
    'bind-address': '127.0.0.1', // 1.3.7
    ...TLS_ARGS,
  });
}

export function schedulerArgs(): ExtraArg[] {
  return args({ profiling: 'false', 'bind-address': '127.0.0.1', ...TLS_ARGS }); // 1.4.1, 1.4.2
}

export function etcdArgs(): ExtraArg[] {
  return args({
    'client-cert-auth': 'true', // 2.2
    'auto-tls': 'false', // 2.3
    'peer-client-cert-auth': 'true', // 2.5
    'peer-auto-tls': 'false', // 2.6
    'cipher-suites': STRONG_CIPHER_SUITES.join(','),
  });
}

function hostPathVolume(name: string, path: string, readOnly: boolean, pathType: 'DirectoryOrCreate' | 'Directory'): Record<string, unknown> {
  return { name, hostPath: path, mountPath: path, readOnly, pathType };
}

export function clusterConfiguration(spec: ClusterSpec, target: KubeadmTarget = {}): KubeObject {
  return {
    apiVersion: KUBEADM_API,
    kind: 'ClusterConfiguration',
    clusterName: spec.name,
    kubernetesVersion: kubernetesRelease(spec.kubernetesVersion).patch,
    controlPlaneEndpoint: endpointOf(target),
    certificatesDir: PATHS.pki,
    encryptionAlgorithm: 'ECDSA-P256',
    networking: { podSubnet: spec.network.podCidr, serviceSubnet: spec.network.serviceCidr, dnsDomain: 'cluster.local' },
    apiServer: {
      // kubeadm names the node, its address, the in-cluster names, the service IP and the endpoint host, never the
      // loopback (cmd/kubeadm/app/util/pkiutil/pki_helpers.go GetAPIServerAltNames); helm-controller and its
      // bootstrap charts' Jobs reach their node's own API server at 127.0.0.1 on the host network, before any CNI.
      certSANs: [target.apiHost ?? BOOT_PLACEHOLDERS.apiHost, '127.0.0.1'],
      extraArgs: apiServerArgs(),
      extraVolumes: [
        hostPathVolume('kiln-config', PATHS.kilnConfig, true, 'Directory'),
        hostPathVolume('encryption-config', PATHS.encryptionDir, true, 'Directory'),
        hostPathVolume('audit-log', PATHS.auditLogDir, false, 'DirectoryOrCreate'),
        // KMS v2: the plugin's socket (connecting to a socket needs a writable mount).
        ...(usesKmsPlugin(spec) ? [hostPathVolume('kms-plugin', KMS_PLUGIN_DIR, false, 'DirectoryOrCreate')] : []),
      ],
    },
    controllerManager: { extraArgs: controllerManagerArgs() },
    scheduler: { extraArgs: schedulerArgs() },
    etcd: { local: { dataDir: '/var/lib/etcd', extraArgs: etcdArgs() } },
  };
}

function bootstrapTokens(target: KubeadmTarget): Record<string, unknown>[] {
  return [
    {
      token: target.bootstrapToken ?? BOOT_PLACEHOLDERS.bootstrapToken,
      description: 'Kiln machine join token',
      // Short-lived: machines joining later get a fresh token from the store.
      ttl: BOOTSTRAP_TOKEN_TTL,
      // Joins authenticate with it; none needs cluster-info signed with it (see joinConfiguration).
      usages: ['authentication'],
      groups: ['system:bootstrappers:kubeadm:default-node-token'],
    },
  ];
}

const CONTROL_PLANE_TAINT = { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' };

/** Whether Secrets are encrypted through the AWS KMS v2 plugin, which runs as a static pod beside the API server. */
export function usesKmsPlugin(spec: ClusterSpec): boolean {
  return spec.encryption.atRest.provider === 'kms';
}

/** The plugin's manifest is in place before kubeadm writes the others, which its preflight would otherwise refuse. */
function preflightExceptions(spec: ClusterSpec): Record<string, unknown> {
  return usesKmsPlugin(spec) ? { ignorePreflightErrors: ['DirAvailable--etc-kubernetes-manifests'] } : {};
}

export function initConfiguration(spec: ClusterSpec, target: KubeadmTarget = {}): KubeObject {
  return {
    apiVersion: KUBEADM_API,
    kind: 'InitConfiguration',
    bootstrapTokens: bootstrapTokens(target),
    nodeRegistration: {
      criSocket: 'unix:///run/containerd/containerd.sock',
      taints: [CONTROL_PLANE_TAINT],
      kubeletExtraArgs: args({ 'node-labels': `kiln.dev/cluster=${spec.name}`, 'provider-id': BOOT_PLACEHOLDERS.providerId }),
      ...preflightExceptions(spec),
    },
    patches: { directory: PATHS.patches },
    timeouts: { controlPlaneComponentHealthCheck: '4m0s' },
  };
}

/** Labels kubelets may not set on themselves (NodeRestriction) are applied by the add-on step instead. */
function selfAssignableLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([key]) => !/(^|\.)(kubernetes\.io|k8s\.io)\//.test(key)));
}

export function joinConfiguration(spec: ClusterSpec, role: 'control-plane' | 'worker', pool?: NodePoolSpec): KubeObject {
  const labels = role === 'worker' && pool !== undefined ? { ...selfAssignableLabels(pool.labels), 'kiln.dev/pool': pool.name } : {};
  const nodeLabels = Object.entries({ 'kiln.dev/cluster': spec.name, ...labels })
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  const taints = role === 'control-plane' ? [CONTROL_PLANE_TAINT] : (pool?.taints ?? []);
  return {
    apiVersion: KUBEADM_API,
    kind: 'JoinConfiguration',
    // File discovery, not token discovery: token discovery reads kube-public/cluster-info anonymously, which
    // --anonymous-auth=false (CIS 1.2.1) answers with 401 (cmd/kubeadm/app/discovery/token/token.go). The file's bootstrap
    // token authenticates the cluster-info read, whose 403 kubeadm accepts as proof of the TLS connection, and then the
    // TLS bootstrap (cmd/kubeadm/app/discovery/file/file.go, discovery.go For).
    discovery: { file: { kubeConfigPath: PATHS.discoveryKubeconfig } },
    nodeRegistration: {
      criSocket: 'unix:///run/containerd/containerd.sock',
      taints,
      // Without a cloud controller manager the kubelet names its machine itself: health checks and Run Command find it by this.
      kubeletExtraArgs: args({ 'node-labels': nodeLabels, 'provider-id': BOOT_PLACEHOLDERS.providerId }),
      ...(role === 'control-plane' ? preflightExceptions(spec) : {}),
    },
    // Control plane machines receive the shared CAs from the secret store, so no certificateKey is needed.
    ...(role === 'control-plane' ? { controlPlane: {}, patches: { directory: PATHS.patches } } : {}),
  };
}

/**
 * The kubeconfig `kubeadm join` discovers the cluster from: the API endpoint, the cluster CA that must sign its serving
 * certificate, and the join token as the credentials of every request kubeadm and the kubelet's TLS bootstrap make
 * until the kubelet has its own certificate. Rendered with boot placeholders; a machine fills them from the secret
 * store when it joins, so a replacement always uses the token Kiln published last.
 */
export function discoveryKubeconfig(target: KubeadmTarget = {}): KubeObject {
  const caData = target.caCertificatePem === undefined ? BOOT_PLACEHOLDERS.caData : Buffer.from(target.caCertificatePem).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kubernetes', cluster: { server: `https://${endpointOf(target)}`, 'certificate-authority-data': caData } }],
    users: [{ name: 'kiln-bootstrap', user: { token: target.bootstrapToken ?? BOOT_PLACEHOLDERS.bootstrapToken } }],
    contexts: [{ name: 'kiln-bootstrap@kubernetes', context: { cluster: 'kubernetes', user: 'kiln-bootstrap' } }],
    'current-context': 'kiln-bootstrap@kubernetes',
  };
}

/** Kubelet settings: kube-bench 4.2.x. */
export function kubeletConfiguration(): KubeObject {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'systemd',
    authentication: {
      anonymous: { enabled: false }, // 4.2.1
      webhook: { enabled: true, cacheTTL: '2m0s' },
      x509: { clientCAFile: `${PATHS.pki}/ca.crt` }, // 4.2.3
    },
    authorization: { mode: 'Webhook' }, // 4.2.2
    readOnlyPort: 0, // 4.2.4
    streamingConnectionIdleTimeout: '5m0s', // 4.2.5
    makeIPTablesUtilChains: true, // 4.2.6
    eventRecordQPS: 5, // 4.2.8: above 0 so events are rate limited but captured
    rotateCertificates: true, // 4.2.10
    serverTLSBootstrap: true, // 4.2.11: serving certificates signed by the cluster CA, which the API server verifies
    featureGates: { RotateKubeletServerCertificate: true },
    protectKernelDefaults: true,
    tlsMinVersion: 'VersionTLS12',
    tlsCipherSuites: [...STRONG_CIPHER_SUITES], // 4.2.9
    podPidsLimit: 4096, // 4.2.13
    seccompDefault: true, // 4.2.14
  };
}

/** Who did what to the API: secrets only at Metadata (never their values), RBAC and exec in full. */
export function auditPolicy(): KubeObject {
  return {
    apiVersion: 'audit.k8s.io/v1',
    kind: 'Policy',
    omitStages: ['RequestReceived'],
    rules: [
      { level: 'None', nonResourceURLs: ['/healthz*', '/livez*', '/readyz*', '/version'] },
      { level: 'None', users: ['system:kube-proxy'], verbs: ['watch'], resources: [{ group: '', resources: ['endpoints', 'services', 'services/status'] }] },
      { level: 'None', userGroups: ['system:nodes'], verbs: ['get'], resources: [{ group: '', resources: ['nodes', 'nodes/status'] }] },
      { level: 'None', resources: [{ group: '', resources: ['events'] }] },
      {
        level: 'Metadata',
        resources: [
          { group: '', resources: ['secrets', 'configmaps', 'serviceaccounts/token'] },
          { group: 'authentication.k8s.io', resources: ['tokenreviews'] },
        ],
      },
      { level: 'RequestResponse', resources: [{ group: 'rbac.authorization.k8s.io' }, { group: '', resources: ['pods/exec', 'pods/attach', 'pods/portforward'] }] },
      { level: 'Request', verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'] },
      { level: 'Metadata' },
    ],
  };
}

/**
 * Cluster-wide Pod Security defaults, one level per mode as the order resolves them (#core podSecurityLevels): what
 * every namespace without a label of its own is held to. kube-apiserver reads them once, at start, from the
 * admission configuration file; a change reaches it through the update workflow's roll of the control plane.
 */
export function podSecurityDefaults(spec: ClusterSpec): Record<string, string> {
  const levels = podSecurityLevels(spec.podSecurity);
  return {
    enforce: levels.enforce,
    'enforce-version': 'latest',
    audit: levels.audit,
    'audit-version': 'latest',
    warn: levels.warn,
    'warn-version': 'latest',
  };
}

export function admissionConfiguration(spec: ClusterSpec): KubeObject {
  return {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AdmissionConfiguration',
    plugins: [
      {
        name: 'PodSecurity',
        configuration: {
          apiVersion: 'pod-security.admission.config.k8s.io/v1',
          kind: 'PodSecurityConfiguration',
          defaults: podSecurityDefaults(spec),
          // kube-system runs the CNI and static pods; its namespace label makes it privileged-but-audited anyway.
          exemptions: { usernames: [], runtimeClasses: [], namespaces: ['kube-system'] },
        },
      },
      { name: 'EventRateLimit', path: PATHS.eventRateLimit },
    ],
  };
}

export function eventRateLimitConfiguration(): KubeObject {
  return {
    apiVersion: 'eventratelimit.admission.k8s.io/v1alpha1',
    kind: 'Configuration',
    limits: [
      { type: 'Server', qps: 50, burst: 100 },
      { type: 'Namespace', qps: 20, burst: 50, cacheSize: 2000 },
    ],
  };
}

/**
 * With anonymous auth off the API server answers its own HTTP health probes
 * with 401, so kubelet would restart it forever; the probes check the TLS
 * port over TCP instead (kubeadm strategic-merge patch).
 */
export function apiServerProbePatch(): Record<string, unknown> {
  const probe = (failureThreshold: number) => ({ httpGet: null, tcpSocket: { port: API_SERVER_PORT }, failureThreshold });
  return {
    spec: {
      containers: [{ name: 'kube-apiserver', livenessProbe: probe(8), readinessProbe: probe(3), startupProbe: probe(24) }],
    },
  };
}

export const API_SERVER_PATCH_FILE = `${PATHS.patches}/kube-apiserver0+strategic.yaml`;

export function toYamlDocuments(objects: readonly Record<string, unknown>[]): string {
  return objects.map((object) => stringify(object, { lineWidth: 0 })).join('---\n');
}

/** InitConfiguration, ClusterConfiguration and KubeletConfiguration in one file, as `kubeadm init --config` reads it. */
export function renderInitConfiguration(spec: ClusterSpec, target: KubeadmTarget = {}): string {
  return toYamlDocuments([initConfiguration(spec, target), clusterConfiguration(spec, target), kubeletConfiguration()]);
}

/**
 * A JoinConfiguration; joining kubelets take their KubeletConfiguration from the cluster, where init uploaded it. It
 * names no endpoint or secret: those are in the discovery kubeconfig.
 */
export function renderJoinConfiguration(spec: ClusterSpec, role: 'control-plane' | 'worker', pool?: NodePoolSpec): string {
  return toYamlDocuments([joinConfiguration(spec, role, pool)]);
}
