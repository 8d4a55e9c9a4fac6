/**
 * What kubeadm puts on a machine before Kiln's configuration is applied: the
 * flags of the static pods it generates and the owner and mode of the files
 * it (or the Debian kubelet package) writes. Taken from kubeadm's manifest
 * and kubeconfig phases for v1.33; `kubeadmDefaults` applies what later
 * minors changed, from their release notes (kubernetes/sig-release
 * releases/release-1.NN/release-notes/release-notes-draft.md @e8dfc805).
 * Paths are kubeadm's defaults.
 */

export type Flags = Map<string, string>;

const PKI = '/etc/kubernetes/pki';

export const KUBEADM_APISERVER_FLAGS: readonly [string, string][] = [
  ['--advertise-address', '<node-ip>'],
  ['--allow-privileged', 'true'],
  ['--authorization-mode', 'Node,RBAC'],
  ['--client-ca-file', `${PKI}/ca.crt`],
  ['--enable-admission-plugins', 'NodeRestriction'],
  ['--enable-bootstrap-token-auth', 'true'],
  ['--etcd-cafile', `${PKI}/etcd/ca.crt`],
  ['--etcd-certfile', `${PKI}/apiserver-etcd-client.crt`],
  ['--etcd-keyfile', `${PKI}/apiserver-etcd-client.key`],
  ['--etcd-servers', 'https://127.0.0.1:2379'],
  ['--kubelet-client-certificate', `${PKI}/apiserver-kubelet-client.crt`],
  ['--kubelet-client-key', `${PKI}/apiserver-kubelet-client.key`],
  ['--kubelet-preferred-address-types', 'InternalIP,ExternalIP,Hostname'],
  ['--proxy-client-cert-file', `${PKI}/front-proxy-client.crt`],
  ['--proxy-client-key-file', `${PKI}/front-proxy-client.key`],
  ['--requestheader-allowed-names', 'front-proxy-client'],
  ['--requestheader-client-ca-file', `${PKI}/front-proxy-ca.crt`],
  ['--requestheader-extra-headers-prefix', 'X-Remote-Extra-'],
  ['--requestheader-group-headers', 'X-Remote-Group'],
  ['--requestheader-username-headers', 'X-Remote-User'],
  ['--secure-port', '6443'],
  ['--service-account-issuer', 'https://kubernetes.default.svc.cluster.local'],
  ['--service-account-key-file', `${PKI}/sa.pub`],
  ['--service-account-signing-key-file', `${PKI}/sa.key`],
  ['--service-cluster-ip-range', '10.96.0.0/12'],
  ['--tls-cert-file', `${PKI}/apiserver.crt`],
  ['--tls-private-key-file', `${PKI}/apiserver.key`],
];

export const KUBEADM_CONTROLLER_MANAGER_FLAGS: readonly [string, string][] = [
  ['--authentication-kubeconfig', '/etc/kubernetes/controller-manager.conf'],
  ['--authorization-kubeconfig', '/etc/kubernetes/controller-manager.conf'],
  ['--bind-address', '127.0.0.1'],
  ['--client-ca-file', `${PKI}/ca.crt`],
  ['--cluster-name', 'kubernetes'],
  ['--cluster-signing-cert-file', `${PKI}/ca.crt`],
  ['--cluster-signing-key-file', `${PKI}/ca.key`],
  ['--controllers', '*,bootstrapsigner,tokencleaner'],
  ['--kubeconfig', '/etc/kubernetes/controller-manager.conf'],
  ['--leader-elect', 'true'],
  ['--requestheader-client-ca-file', `${PKI}/front-proxy-ca.crt`],
  ['--root-ca-file', `${PKI}/ca.crt`],
  ['--service-account-private-key-file', `${PKI}/sa.key`],
  ['--use-service-account-credentials', 'true'],
];

export const KUBEADM_SCHEDULER_FLAGS: readonly [string, string][] = [
  ['--authentication-kubeconfig', '/etc/kubernetes/scheduler.conf'],
  ['--authorization-kubeconfig', '/etc/kubernetes/scheduler.conf'],
  ['--bind-address', '127.0.0.1'],
  ['--kubeconfig', '/etc/kubernetes/scheduler.conf'],
  ['--leader-elect', 'true'],
];

/** etcd 3.5, which kubeadm runs up to v1.33. */
export const KUBEADM_ETCD_FLAGS: readonly [string, string][] = [
  ['--advertise-client-urls', 'https://<node-ip>:2379'],
  ['--cert-file', `${PKI}/etcd/server.crt`],
  ['--client-cert-auth', 'true'],
  ['--data-dir', '/var/lib/etcd'],
  ['--experimental-initial-corrupt-check', 'true'],
  ['--experimental-watch-progress-notify-interval', '5s'],
  ['--initial-advertise-peer-urls', 'https://<node-ip>:2380'],
  ['--initial-cluster', '<node-name>=https://<node-ip>:2380'],
  ['--key-file', `${PKI}/etcd/server.key`],
  ['--listen-client-urls', 'https://127.0.0.1:2379,https://<node-ip>:2379'],
  ['--listen-metrics-urls', 'http://127.0.0.1:2381'],
  ['--listen-peer-urls', 'https://<node-ip>:2380'],
  ['--name', '<node-name>'],
  ['--peer-cert-file', `${PKI}/etcd/peer.crt`],
  ['--peer-client-cert-auth', 'true'],
  ['--peer-key-file', `${PKI}/etcd/peer.key`],
  ['--peer-trusted-ca-file', `${PKI}/etcd/ca.crt`],
  ['--snapshot-count', '10000'],
  ['--trusted-ca-file', `${PKI}/etcd/ca.crt`],
];

/** The kubelet command line from 10-kubeadm.conf and kubeadm-flags.env, up to v1.33. */
export const KUBEADM_KUBELET_FLAGS: readonly [string, string][] = [
  ['--bootstrap-kubeconfig', '/etc/kubernetes/bootstrap-kubelet.conf'],
  ['--kubeconfig', '/etc/kubernetes/kubelet.conf'],
  ['--config', '/var/lib/kubelet/config.yaml'],
  ['--container-runtime-endpoint', 'unix:///var/run/containerd/containerd.sock'],
];

/**
 * The fields kubeadm sets in /var/lib/kubelet/config.yaml when the user's
 * KubeletConfiguration leaves them unset; the user's values win.
 */
export const KUBEADM_KUBELET_CONFIG: Readonly<Record<string, unknown>> = {
  authentication: {
    anonymous: { enabled: false },
    webhook: { enabled: true },
    x509: { clientCAFile: `${PKI}/ca.crt` },
  },
  authorization: { mode: 'Webhook' },
  cgroupDriver: 'systemd',
  clusterDNS: ['10.96.0.10'],
  clusterDomain: 'cluster.local',
  healthzBindAddress: '127.0.0.1',
  healthzPort: 10248,
  rotateCertificates: true,
  staticPodPath: '/etc/kubernetes/manifests',
};

/**
 * The minors whose kubeadm defaults are modelled here. Scoring a newer minor
 * needs its release notes read first: a changed default could hide a failure.
 */
export const KUBEADM_MODELLED_MINORS = { oldest: '1.32', newest: '1.37' } as const;

export interface KubeadmDefaults {
  apiServerFlags: readonly [string, string][];
  controllerManagerFlags: readonly [string, string][];
  schedulerFlags: readonly [string, string][];
  etcdFlags: readonly [string, string][];
  kubeletFlags: readonly [string, string][];
  kubeletConfig: Readonly<Record<string, unknown>>;
}

/** `v1.35.9` or `1.35` -> 35. */
function minorOf(version: string): number {
  const match = /^v?1\.(\d+)(\.\d+)?$/.exec(version);
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

/** What kubeadm of a given Kubernetes release puts on a machine; undefined for a release not modelled. */
export function kubeadmDefaults(kubernetesVersion: string): KubeadmDefaults | undefined {
  const minor = minorOf(kubernetesVersion);
  const oldest = minorOf(KUBEADM_MODELLED_MINORS.oldest);
  const newest = minorOf(KUBEADM_MODELLED_MINORS.newest);
  if (!(minor >= oldest && minor <= newest)) return undefined;
  const replace = (list: readonly [string, string][], name: string, next?: [string, string]) =>
    list.flatMap((entry): [string, string][] => (entry[0] === name ? (next === undefined ? [] : [next]) : [entry]));
  let etcdFlags = KUBEADM_ETCD_FLAGS;
  let kubeletFlags = KUBEADM_KUBELET_FLAGS;
  if (minor >= 34) {
    // 1.34: "Updated kubeadm to use the InitialCorruptCheck=true etcd feature gate instead of the deprecated
    // --experimental-initial-corrupt-check flag. Also replaced ... --experimental-watch-progress-notify-interval
    // with its graduated counterpart --watch-progress-notify-interval." (#132838; etcd 3.6)
    etcdFlags = replace(etcdFlags, '--experimental-initial-corrupt-check', ['--feature-gates', 'InitialCorruptCheck=true']);
    etcdFlags = replace(etcdFlags, '--experimental-watch-progress-notify-interval', ['--watch-progress-notify-interval', '5s']);
    // 1.34: NodeLocalCRISocket on by default (GA in 1.36): the runtime endpoint moves from kubeadm-flags.env to
    // /var/lib/kubelet/instance-config.yaml (#131981).
    kubeletFlags = replace(kubeletFlags, '--container-runtime-endpoint');
  }
  // 1.35 stops applying --pod-infra-container-image (#133778), which this model never had; 1.36 and 1.37 change no
  // default the CIS checks read (1.37 turns eventRecordQPS: 0 into "unlimited", and Kiln sets 5).
  return {
    apiServerFlags: KUBEADM_APISERVER_FLAGS,
    controllerManagerFlags: KUBEADM_CONTROLLER_MANAGER_FLAGS,
    schedulerFlags: KUBEADM_SCHEDULER_FLAGS,
    etcdFlags,
    kubeletFlags,
    kubeletConfig: KUBEADM_KUBELET_CONFIG,
  };
}

export interface FileState {
  mode: number;
  owner: string;
  group: string;
  directory: boolean;
  /** Who put it there, shown in reasons. */
  source: string;
}

const root = (mode: number, source: string, directory = false): FileState => ({
  mode,
  owner: 'root',
  group: 'root',
  directory,
  source,
});

/** Files the Debian kubelet package from pkgs.k8s.io installs on every node. */
export function packageFiles(): Map<string, FileState> {
  const files = new Map<string, FileState>();
  // Debian 12 and 13 have merged /usr, so the unit is also visible under /lib.
  for (const prefix of ['/usr/lib', '/lib']) {
    files.set(`${prefix}/systemd/system/kubelet.service`, root(0o644, 'kubelet .deb'));
    files.set(`${prefix}/systemd/system/kubelet.service.d/10-kubeadm.conf`, root(0o644, 'kubelet .deb'));
  }
  return files;
}

/** Files `kubeadm join` leaves on a worker. */
export function kubeadmNodeFiles(): Map<string, FileState> {
  const files = packageFiles();
  files.set('/etc/kubernetes/kubelet.conf', root(0o600, 'kubeadm'));
  files.set('/var/lib/kubelet/config.yaml', root(0o644, 'kubeadm (os.WriteFile 0644)'));
  files.set('/var/lib/kubelet/kubeadm-flags.env', root(0o644, 'kubeadm'));
  files.set('/etc/kubernetes/pki', root(0o755, 'kubeadm', true));
  files.set(`${PKI}/ca.crt`, root(0o644, 'kubeadm'));
  files.set('/etc/kubernetes/manifests', root(0o755, 'kubeadm', true));
  return files;
}

const CONTROL_PLANE_CERTS = [
  'ca',
  'apiserver',
  'apiserver-kubelet-client',
  'apiserver-etcd-client',
  'front-proxy-ca',
  'front-proxy-client',
  'etcd/ca',
  'etcd/server',
  'etcd/peer',
  'etcd/healthcheck-client',
];

/** Files `kubeadm init` (or join --control-plane) leaves on a control plane machine. */
export function kubeadmControlPlaneFiles(options: { first: boolean; localEtcd: boolean; etcdDataDir: string }): Map<string, FileState> {
  const files = kubeadmNodeFiles();
  const manifests = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', ...(options.localEtcd ? ['etcd'] : [])];
  for (const name of manifests) files.set(`/etc/kubernetes/manifests/${name}.yaml`, root(0o600, 'kubeadm'));
  const kubeconfigs = ['admin.conf', 'controller-manager.conf', 'scheduler.conf', ...(options.first ? ['super-admin.conf'] : [])];
  for (const name of kubeconfigs) files.set(`/etc/kubernetes/${name}`, root(0o600, 'kubeadm'));
  files.set(`${PKI}/etcd`, root(0o755, 'kubeadm', true));
  for (const cert of CONTROL_PLANE_CERTS) {
    files.set(`${PKI}/${cert}.crt`, root(0o644, 'kubeadm'));
    files.set(`${PKI}/${cert}.key`, root(0o600, 'kubeadm'));
  }
  files.set(`${PKI}/sa.key`, root(0o600, 'kubeadm'));
  files.set(`${PKI}/sa.pub`, root(0o600, 'kubeadm'));
  // kubeadm creates the data dir 0700 and runs etcd as root, so root owns it.
  if (options.localEtcd) files.set(options.etcdDataDir, root(0o700, 'kubeadm', true));
  return files;
}
