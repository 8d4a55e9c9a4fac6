/**
 * What kubeadm v1.33 puts on a machine before Kiln's configuration is
 * applied: the flags of the static pods it generates and the owner and mode
 * of the files it (or the Debian kubelet package) writes. Taken from
 * kubeadm's manifest and kubeconfig phases; paths are kubeadm's defaults.
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

/** The kubelet command line from 10-kubeadm.conf and kubeadm-flags.env. */
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
  // Debian 12 has merged /usr, so the unit is also visible under /lib.
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
