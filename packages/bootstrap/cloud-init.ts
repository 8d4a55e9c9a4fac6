import { stringify } from 'yaml';
import type { ClusterSpec, NodePoolSpec } from '#core';
import {
  API_SERVER_PATCH_FILE,
  BOOT_PLACEHOLDERS,
  PATHS,
  apiServerProbePatch,
  auditPolicy,
  discoveryKubeconfig,
  eventRateLimitConfiguration,
  kubernetesRelease,
  renderInitConfiguration,
  renderJoinConfiguration,
  toYamlDocuments,
  usesKmsPlugin,
} from './kubeadm.ts';
import { ADMISSION_CONFIG_SCRIPT, admissionConfigScript, admissionConfigurationFile, apiServerFileScript } from './api-server-scripts.ts';
import { KMS_KEY_PLACEHOLDER, kmsPluginManifest } from './encryption-config.ts';
import { machineSecretPath } from './machine-secrets.ts';
import { KUBERNETES_APT_KEYRING, kubernetesAptKeyInstall } from './kubernetes-apt-key.ts';
import { AWS_SSM_AGENT_SIGNERS, type SsmAgentSigner, dearmor } from './ssm-agent-signers.ts';
import { OPERATOR_USER, SSHD_DROP_IN_PATH, renderSshdConfig } from './sshd.ts';

export type MachineRole = 'control-plane' | 'worker';

export interface UserDataOptions {
  /**
   * The cluster's authorized SSH public key. Defaults to the order's key in
   * self-managed mode; when absent the machine reads the managed key from the
   * secret store at boot.
   */
  authorizedKey?: string;
  /**
   * The aws-encryption-provider image the control plane runs beside each API server (KMS_PLUGIN_IMAGE_REFERENCE),
   * which Kiln's operator provides: needed, and only used, when the order's at-rest provider is kms.
   */
  kmsPluginImage?: string;
}

/**
 * SSM Parameter Store names a machine reads at boot with its instance role,
 * under its role's path (see `machineSecretPath`), so an IAM policy can give
 * workers only the worker path. The bootstrap step publishes them as
 * SecureStrings; user data only names them.
 */
export function secretStorePaths(clusterId: string, role: MachineRole) {
  const at = (name: string) => machineSecretPath(clusterId, role, name);
  return {
    apiHost: at('api-host'),
    joinToken: at('join-token'),
    /** The cluster CA certificate, which the discovery kubeconfig trusts. */
    clusterCa: at('cluster-ca'),
    authorizedKey: at('ssh-authorized-key'),
    /** Control plane only. */
    encryptionConfig: at('encryption-config'),
    /** Control plane only, with the KMS provider: the key ARN the KMS plugin encrypts Secrets' data keys with. */
    kmsKeyArn: at('kms-key-arn'),
    /** Control plane only: created (never overwritten) by the machine that runs `kubeadm init`. */
    leader: at('leader'),
    /** Control plane only: one parameter per file under /etc/kubernetes/pki. */
    pki: (file: ControlPlanePkiFile) => at(`pki/${file}`),
  };
}

/** The shared keys kubeadm needs on every control plane machine; it derives the per-machine certificates itself. */
export const CONTROL_PLANE_PKI_FILES = ['ca.crt', 'ca.key', 'sa.key', 'sa.pub', 'front-proxy-ca.crt', 'front-proxy-ca.key', 'etcd/ca.crt', 'etcd/ca.key'] as const;
export type ControlPlanePkiFile = (typeof CONTROL_PLANE_PKI_FILES)[number];

const BOOTSTRAP_SCRIPT = '/usr/local/sbin/kiln-bootstrap';
/** The discovery kubeconfig with its boot placeholders; filled into PATHS.discoveryKubeconfig before `kubeadm join`. */
const DISCOVERY_TEMPLATE = '/etc/kiln/discovery.conf.tmpl';
/** The KMS plugin's static pod, without its key until boot; then the manifest the kubelet runs. */
const KMS_PLUGIN_TEMPLATE = '/etc/kiln/aws-encryption-provider.yaml.tmpl';
export const KMS_PLUGIN_MANIFEST = '/etc/kubernetes/manifests/aws-encryption-provider.yaml';
/** Run through SSM Run Command by key rotations: `write <parameter>` installs a new EncryptionConfiguration, `restart` rolls this API server. */
export const ENCRYPTION_CONFIG_SCRIPT = '/usr/local/sbin/kiln-encryption-config';

/** The control plane side of a key rotation, run through SSM Run Command: the EncryptionConfiguration's `write` and `restart`. */
export function encryptionConfigScript(spec: ClusterSpec): string {
  return apiServerFileScript(spec, PATHS.encryptionConfig);
}

/**
 * Run through SSM Run Command when a control plane machine is replaced: `remove <node name | -> [<address>]` removes
 * its etcd member, found by the node's name or by the machine's private address (`-` for a machine that never
 * registered a Node); `prune-learners <address>...` removes every learner (and member that never started) whose peer
 * URL is none of the given machines' (the control plane group's).
 */
export const ETCD_MEMBER_SCRIPT = '/usr/local/sbin/kiln-etcd-member';

/**
 * Removes etcd members through this machine's etcd, with etcdctl from the etcd container and the health-check client
 * certificate kubeadm issues. kubeadm names a member after its node, but the name shows only once the member's etcd has
 * started: a learner whose machine died first is listed unnamed and "unstarted" (etcd-io/etcd@v3.6.6
 * etcdctl/ctlv3/command/printer.go makeMemberListTable, printer_simple.go MemberList: "ID, Status, Name, Peer Addrs,
 * Client Addrs, Is Learner"). So a member is also found by its peer URL, the one kubeadm gave it,
 * `https://<advertise address>:2380` (kubernetes/kubernetes cmd/kubeadm/app/util/etcd/etcd.go GetPeerURL; the advertise
 * address defaults to the machine's own, and `kubeadm reset` removes a member by the same URL,
 * cmd/kubeadm/app/phases/etcd/local.go RemoveStackedEtcdMemberFromCluster). A learner whose machine its Auto Scaling
 * group has replaced already is found by neither: it is a learner whose address no machine of the group has (it never
 * votes, so removing it never costs quorum). Nothing to remove is not an error, so a retried call succeeds; etcd's
 * strict reconfiguration check refuses a removal that would lose quorum.
 */
export function etcdMemberScript(): string {
  return [
    '#!/bin/bash',
    'set -euo pipefail',
    'usage() { echo "usage: $0 remove <node name | -> [<address>] | prune-learners <address>..." >&2; exit 64; }',
    'peer_url() {',
    '  [[ "$1" =~ ^[0-9]{1,3}(\\.[0-9]{1,3}){3}$ ]] || { echo "$1 is not an IPv4 address" >&2; exit 64; }',
    '  echo "https://$1:2380"',
    '}',
    'VERB="${1:-}"',
    'case "$VERB" in',
    '  remove)',
    '    NAME="${2:-}"; [ -n "$NAME" ] || usage',
    '    PEER=""; [ -z "${3:-}" ] || PEER="$(peer_url "$3")"',
    '    [ "$NAME" != "-" ] || [ -n "$PEER" ] || usage',
    '    if [ "$NAME" = "-" ]; then WHO="$PEER"; elif [ -n "$PEER" ]; then WHO="$NAME or $PEER"; else WHO="$NAME"; fi ;;',
    '  prune-learners)',
    '    shift; [ $# -gt 0 ] || usage',
    '    KEEP=""; for ADDRESS in "$@"; do KEEP="$KEEP,$(peer_url "$ADDRESS")"; done ;;',
    '  *) usage ;;',
    'esac',
    "ETCD=\"$(crictl ps --name '^etcd$' --state Running -q | head -n 1)\"",
    'if [ -z "$ETCD" ]; then echo "etcd is not running on this machine" >&2; exit 1; fi',
    'etcdctl() {',
    '  crictl exec "$ETCD" etcdctl --endpoints=https://127.0.0.1:2379 --command-timeout=10s --cacert=/etc/kubernetes/pki/etcd/ca.crt \\',
    '    --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key "$@"',
    '}',
    'if [ "$VERB" = remove ]; then',
    "  # The member with the node's name, or with the peer URL (a member may list several, comma-separated).",
    "  IDS=\"$(etcdctl member list | awk -F', ' -v name=\"$NAME\" -v peer=\"$PEER\" '",
    '    { hit = name != "-" && $3 == name; count = split($4, urls, ","); for (i = 1; i <= count; i++) if (peer != "" && urls[i] == peer) hit = 1 }',
    "    hit { print $1 }')\"",
    '  if [ -z "$IDS" ]; then echo "$WHO is not an etcd member"; exit 0; fi',
    'else',
    '  # Learners, and members that never started, at no address of the machines to keep.',
    "  IDS=\"$(etcdctl member list | awk -F', ' -v keep=\"$KEEP,\" '",
    '    $6 == "true" || $2 == "unstarted" { count = split($4, urls, ","); for (i = 1; i <= count; i++) if (index(keep, "," urls[i] ",") > 0) next; print $1 }\')"',
    '  if [ -z "$IDS" ]; then echo "no etcd learner outside the machines kept"; exit 0; fi',
    'fi',
    'for ID in $IDS; do etcdctl member remove "$ID"; done',
    '',
  ].join('\n');
}

interface WriteFile {
  path: string;
  content: string;
  owner: 'root:root';
  permissions: '0600' | '0644' | '0700';
}

function secretFile(path: string, content: string): WriteFile {
  return { path, content, owner: 'root:root', permissions: '0600' };
}

/** Files other local users may read without harm; the OS tools expect them world-readable. */
function publicFile(path: string, content: string): WriteFile {
  return { path, content, owner: 'root:root', permissions: '0644' };
}

/**
 * Settings kubelet's protectKernelDefaults refuses to start without, the
 * forwarding Kubernetes networking needs, and the usual hardening.
 */
export const KERNEL_SETTINGS: Record<string, string> = {
  'net.bridge.bridge-nf-call-iptables': '1',
  'net.bridge.bridge-nf-call-ip6tables': '1',
  'net.ipv4.ip_forward': '1',
  'kernel.panic': '10',
  'kernel.panic_on_oops': '1',
  'vm.overcommit_memory': '1',
  'vm.panic_on_oom': '0',
  'kernel.keys.root_maxkeys': '1000000',
  'kernel.keys.root_maxbytes': '25000000',
  'kernel.kptr_restrict': '2',
  'kernel.dmesg_restrict': '1',
  'kernel.unprivileged_bpf_disabled': '1',
  'fs.protected_hardlinks': '1',
  'fs.protected_symlinks': '1',
  'net.ipv4.conf.all.accept_redirects': '0',
  'net.ipv4.conf.default.accept_redirects': '0',
  'net.ipv4.conf.all.send_redirects': '0',
  'net.ipv4.conf.all.accept_source_route': '0',
  'net.ipv4.tcp_syncookies': '1',
};

function minutesOf(time: string): number {
  const [hours = 0, minutes = 0] = time.split(':').map(Number);
  return hours * 60 + minutes;
}

function clock(totalMinutes: number): string {
  const minutes = ((totalMinutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

const SYSTEMD_DAYS: Record<string, string> = { mon: 'Mon', tue: 'Tue', wed: 'Wed', thu: 'Thu', fri: 'Fri', sat: 'Sat', sun: 'Sun' };

/**
 * When upgrades run and when the machine may reboot. Upgrades start at the
 * window's start (spread over its first quarter); the reboot is scheduled at
 * the window's midpoint, so both fall inside it.
 */
export function maintenanceSchedule(spec: ClusterSpec): { upgradeCalendar: string; randomizedDelayMinutes: number } {
  const { days, start, durationMinutes } = spec.maintenance.window;
  const startMinutes = minutesOf(start);
  return {
    upgradeCalendar: `${days.map((day) => SYSTEMD_DAYS[day] ?? day).join(',')} *-*-* ${clock(startMinutes)}:00 UTC`,
    randomizedDelayMinutes: Math.floor(durationMinutes / 4),
  };
}

function unattendedUpgradeFiles(spec: ClusterSpec): WriteFile[] {
  const enabled = spec.maintenance.autoUpdate;
  const schedule = maintenanceSchedule(spec);
  return [
    publicFile('/etc/apt/apt.conf.d/20auto-upgrades', [`APT::Periodic::Update-Package-Lists "1";`, `APT::Periodic::Unattended-Upgrade "${enabled ? '1' : '0'}";`, ''].join('\n')),
    publicFile(
      '/etc/apt/apt.conf.d/52kiln-unattended-upgrades',
      [
        'Unattended-Upgrade::Origins-Pattern {',
        '  "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";',
        '  "origin=Debian,codename=${distro_codename},label=Debian";',
        '};',
        // Kubernetes and the runtime move only with a cluster upgrade, never behind its back.
        'Unattended-Upgrade::Package-Blacklist { "kubelet"; "kubeadm"; "kubectl"; "containerd"; "cri-tools"; "kubernetes-cni"; };',
        // Machines never reboot on their own clock: kured reboots one node at a time, drained, inside the window.
        'Unattended-Upgrade::Automatic-Reboot "false";',
        '',
      ].join('\n'),
    ),
    publicFile(
      '/etc/systemd/system/apt-daily-upgrade.timer.d/50-kiln-window.conf',
      ['[Timer]', 'OnCalendar=', `OnCalendar=${schedule.upgradeCalendar}`, `RandomizedDelaySec=${schedule.randomizedDelayMinutes}m`, ''].join('\n'),
    ),
  ];
}

/**
 * Config version 2, which the containerd Debian 13 ships (1.7.24) reads natively (containerd/containerd@v1.7.24
 * docs/cri/config.md); containerd 2.x would read it through its migration to version 3.
 */
function containerdConfig(spec: ClusterSpec): string {
  return [
    'version = 2',
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = "${kubernetesRelease(spec.kubernetesVersion).pauseImage}"`,
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '  runtime_type = "io.containerd.runc.v2"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    '  SystemdCgroup = true',
    '',
  ].join('\n');
}

/** `v1.33.5` -> `1.33.5-1.1`, the revision pkgs.k8s.io publishes. */
function debianPackageVersion(release: string): string {
  return `${release.replace(/^v/, '')}-1.1`;
}

/**
 * The SSM agent, which Run Command needs (key rotations drive the control
 * plane's script through it). Debian's archive has no package: AWS publishes
 * one per region and architecture, fetched over TLS from AWS's own bucket.
 * Pinned, so every machine runs the same agent and the key that signed it is
 * known: 3.3.4624.0 is the release AWS's ECS-optimized AMIs install and check
 * with gpg against AWS's SSM agent keys (aws/amazon-ecs-ami@a2ed7b0 "Bump SSM
 * exec agent version to 3.3.4624.0", 2026-06-24, release-al2023.auto.pkrvars.hcl).
 */
export const SSM_AGENT_VERSION = '3.3.4624.0';

/**
 * Downloads the agent's package and AWS's detached signature of it (the page
 * "Verify the signature of SSM Agent" puts `amazon-ssm-agent.deb.sig` beside
 * the package) and installs it only when gpgv finds a valid signature whose
 * primary key is one Kiln pins. A package that is altered, unsigned or signed
 * by anyone else stops the boot before dpkg runs. gpgv is part of every Debian
 * system (apt verifies archives with it), so nothing else is needed first.
 */
export function ssmAgentInstall(signers: readonly SsmAgentSigner[] = AWS_SSM_AGENT_SIGNERS): string[] {
  // gpgv reads a binary keyring: the keys' packets one after the other.
  const keyring = Buffer.concat(signers.map((signer) => dearmor(signer.publicKey))).toString('base64');
  const fingerprints = signers.map((signer) => signer.fingerprint).join('|');
  const install = [
    'SSM_AGENT_DIR=/run/kiln-ssm-agent',
    'install -d -m 0700 "$SSM_AGENT_DIR"',
    'ARCH="$(dpkg --print-architecture)"',
    `SSM_AGENT_URL="https://s3.$REGION.amazonaws.com/amazon-ssm-$REGION/${SSM_AGENT_VERSION}/debian_$ARCH/amazon-ssm-agent.deb"`,
    'curl -fsSL --retry 3 -o "$SSM_AGENT_DIR/amazon-ssm-agent.deb" "$SSM_AGENT_URL"',
    'curl -fsSL --retry 3 -o "$SSM_AGENT_DIR/amazon-ssm-agent.deb.sig" "$SSM_AGENT_URL.sig"',
    'base64 -d > "$SSM_AGENT_DIR/signers.gpg" <<\'SSM_AGENT_SIGNERS\'',
    ...(keyring.match(/.{1,76}/g) ?? []),
    'SSM_AGENT_SIGNERS',
    // VALIDSIG's last field is the primary key's fingerprint, whichever subkey signed.
    'if ! gpgv --homedir "$SSM_AGENT_DIR" --keyring "$SSM_AGENT_DIR/signers.gpg" --status-fd 3 "$SSM_AGENT_DIR/amazon-ssm-agent.deb.sig" "$SSM_AGENT_DIR/amazon-ssm-agent.deb" 3>"$SSM_AGENT_DIR/status" \\',
    `  || ! grep -Eq '^\\[GNUPG:\\] VALIDSIG .* (${fingerprints})$' "$SSM_AGENT_DIR/status"; then`,
    `  echo "amazon-ssm-agent.deb ${SSM_AGENT_VERSION}: no valid signature by AWS's SSM Agent key; not installing it" >&2`,
    '  rm -rf "$SSM_AGENT_DIR"',
    '  exit 1',
    'fi',
    'dpkg -i "$SSM_AGENT_DIR/amazon-ssm-agent.deb"',
    'rm -rf "$SSM_AGENT_DIR"',
  ];
  // Installed from AWS's bucket unless a run before this one did (the boot unit runs the script until it joins).
  // Not indented: the key's here-document ends only at a line that is exactly its delimiter.
  return ['if ! dpkg -s amazon-ssm-agent >/dev/null 2>&1; then', ...install, 'fi', 'systemctl enable --now amazon-ssm-agent'];
}

/** The systemd unit that runs the boot script until the machine has joined, and its script. */
const BOOTSTRAP_UNIT = 'kiln-bootstrap.service';
/** How long the unit waits before it runs the script again after a failed run. */
const BOOTSTRAP_RESTART_SECONDS = 15;
/** The script's exit status once its deadline has passed; the unit does not restart it (RestartPreventExitStatus=). */
const BOOTSTRAP_GAVE_UP = 124;
/** Where the script keeps what survives a failed run and a reboot: the first boot's time, and the steps done. */
const BOOTSTRAP_STATE = '/var/lib/kiln';

/**
 * The unit that runs the boot procedure (systemd v257, Debian 13's, systemd.service(5)): Type=exec, so starting it
 * from runcmd does not hold up cloud-init; Restart=on-failure every RestartSec= while the script fails (join material
 * not yet published, a download or kubeadm that failed); the script gives up by itself at its deadline, the order's
 * nodeStartupTimeoutMinutes after the machine's first boot, the moment the health loop replaces a machine that has
 * no node, with a status that prevents a restart. The start limit is off (systemd.unit(5) StartLimitIntervalSec=0):
 * the deadline, not a count of starts, ends the retries. Enabled, so a reboot before the join resumes it.
 */
function bootstrapUnit(spec: ClusterSpec): string {
  return [
    '[Unit]',
    'Description=Kiln machine bootstrap: join this machine to its cluster',
    'Wants=network-online.target',
    'After=network-online.target',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${BOOTSTRAP_SCRIPT}`,
    `Environment=KILN_JOIN_DEADLINE_SECONDS=${spec.nodeHealth.nodeStartupTimeoutMinutes * 60}`,
    'Restart=on-failure',
    `RestartSec=${BOOTSTRAP_RESTART_SECONDS}s`,
    `RestartPreventExitStatus=${BOOTSTRAP_GAVE_UP}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/**
 * The packages a machine runs on, installed by the unit rather than by cloud-init's `packages:`, which needs the
 * network before runcmd: cloud-init logs an apt failure and moves on, and never installs them again
 * (canonical/cloud-init@25.1.4 cc_package_update_upgrade_install.py). `--force-confold` keeps the configuration
 * cloud-init wrote before the packages (containerd's), as cloud-init's own apt-get does (distros/package_management/apt.py).
 */
const BASE_PACKAGES = ['apt-transport-https', 'ca-certificates', 'curl', 'gpg', 'awscli', 'containerd', 'unattended-upgrades', 'apt-listchanges'];
const APT_OPTIONS = '-y -q -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=120';

/**
 * The boot procedure, run by its systemd unit until it succeeds. Every run starts over and skips what an earlier
 * run finished: the packages, kubeadm. It reads join material from SSM Parameter Store with the instance role (a
 * parameter not published yet means "not yet": the run ends and the unit runs it again), fills the kubeadm template
 * in /run (tmpfs) and removes it after use, so no token or key is ever part of the user data. A run whose kubeadm
 * failed is undone with `kubeadm reset` before the next one (it empties /etc/kubernetes/manifests and pki, which the
 * run fetches again: kubernetes/kubernetes cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go, read at 0738386). The hardening does not
 * wait for any of this: runcmd applies it first.
 */
function bootstrapScript(clusterId: string, spec: ClusterSpec, role: MachineRole): string {
  const paths = secretStorePaths(clusterId, role);
  const version = debianPackageVersion(kubernetesRelease(spec.kubernetesVersion).patch);
  const pkiFetches = CONTROL_PLANE_PKI_FILES.map((file) => `  fetch_secret "${paths.pki(file)}" "${PATHS.pki}/${file}"`);
  const controlPlane = [
    '  install -d -m 0700 -o root -g root /etc/kubernetes/pki/etcd /etc/kubernetes/encryption',
    ...pkiFetches,
    `  fetch_secret "${paths.encryptionConfig}" "${PATHS.encryptionConfig}"`,
    ...(usesKmsPlugin(spec)
      ? [
          '  # The KMS plugin must run before the API server starts; the kubelet starts it from its manifest.',
          '  install -d -m 0700 /etc/kubernetes/manifests',
          `  KMS_KEY_ARN="$(parameter "${paths.kmsKeyArn}")"`,
          `  sed -e "s|${KMS_KEY_PLACEHOLDER}|$KMS_KEY_ARN|g" ${KMS_PLUGIN_TEMPLATE} > ${KMS_PLUGIN_MANIFEST}`,
          `  chmod 0600 ${KMS_PLUGIN_MANIFEST}`,
        ]
      : []),
    '  INSTANCE_ID="$(cloud-init query v1.instance_id)"',
    '  # The first machine to create the leader parameter initialises the cluster; the others join it. Who won is read',
    '  # back, not taken from the answer: a machine that won and whose init failed runs init again, never a join.',
    `  aws ssm put-parameter --region "$REGION" --name "${paths.leader}" --type String --value "$INSTANCE_ID" >/dev/null 2>&1 || true`,
    `  LEADER="$(parameter "${paths.leader}")"`,
    '  if [ "$LEADER" = "$INSTANCE_ID" ]; then',
    '    render_kubeadm init',
    `    touch "$STATE/kubeadm-started"`,
    '    kubeadm init --config /run/kiln/kubeadm.yaml',
    '  else',
    '    render_kubeadm join-control-plane',
    `    touch "$STATE/kubeadm-started"`,
    '    kubeadm join --config /run/kiln/kubeadm.yaml',
    '  fi',
  ];
  const worker = ['  render_kubeadm join-worker', `  touch "$STATE/kubeadm-started"`, '  kubeadm join --config /run/kiln/kubeadm.yaml'];
  return [
    '#!/bin/bash',
    `# Kiln machine bootstrap: run by ${BOOTSTRAP_UNIT} until it succeeds or its deadline passes.`,
    'set -euo pipefail',
    'umask 077',
    `REGION="${spec.region}"`,
    `STATE=${BOOTSTRAP_STATE}`,
    'install -d -m 0700 "$STATE"',
    'if [ -e "$STATE/joined" ]; then exit 0; fi',
    '# The deadline counts from the first boot, kept across reboots: past it the health loop replaces this machine.',
    `[ -s "$STATE/first-boot" ] || awk '/^btime/ { print $2 }' /proc/stat > "$STATE/first-boot"`,
    'if [ "$(date +%s)" -ge $(( $(cat "$STATE/first-boot") + ${KILN_JOIN_DEADLINE_SECONDS:?} )) ]; then',
    '  echo "kiln-bootstrap: not joined within ${KILN_JOIN_DEADLINE_SECONDS}s of the first boot; giving up" >&2',
    `  exit ${BOOTSTRAP_GAVE_UP}`,
    'fi',
    '',
    'parameter() {',
    '  aws ssm get-parameter --region "$REGION" --with-decryption --name "$1" --query Parameter.Value --output text',
    '}',
    'fetch_secret() {',
    '  install -d -m 0700 "$(dirname "$2")"',
    '  parameter "$1" > "$2"',
    '  chown root:root "$2"',
    '  chmod 0600 "$2"',
    '}',
    'render_template() {',
    `  sed -e "s|${BOOT_PLACEHOLDERS.apiHost}|$API_HOST|g" -e "s|${BOOT_PLACEHOLDERS.bootstrapToken}|$TOKEN|g" -e "s|${BOOT_PLACEHOLDERS.caData}|$CA_DATA|g" \\`,
    `    -e "s|${BOOT_PLACEHOLDERS.providerId}|$PROVIDER_ID|g" \\`,
    '    "$1" > "$2"',
    '}',
    '# The kubeadm configuration, and the discovery kubeconfig a join reads: the API host, the cluster CA and the join token Kiln published last.',
    'render_kubeadm() {',
    '  install -d -m 0700 /run/kiln',
    `  API_HOST="$(parameter "${paths.apiHost}")"`,
    `  TOKEN="$(parameter "${paths.joinToken}")"`,
    `  CA_DATA="$(parameter "${paths.clusterCa}" | base64 -w0)"`,
    '  render_template "/etc/kiln/kubeadm-$1.yaml.tmpl" /run/kiln/kubeadm.yaml',
    `  render_template ${DISCOVERY_TEMPLATE} ${PATHS.discoveryKubeconfig}`,
    '}',
    'trap "rm -rf /run/kiln" EXIT',
    '',
    '# The provider ID a cloud controller manager would set: this machine as EC2 knows it (cloud-init reads IMDSv2).',
    'PROVIDER_ID="aws:///$(cloud-init query v1.availability_zone)/$(cloud-init query v1.instance_id)"',
    '',
    'if [ ! -e "$STATE/packages" ]; then',
    '  export DEBIAN_FRONTEND=noninteractive',
    '  apt-get update -q',
    `  apt-get upgrade ${APT_OPTIONS}`,
    `  apt-get install ${APT_OPTIONS} ${BASE_PACKAGES.join(' ')}`,
    ...kubernetesAptKeyInstall(spec.kubernetesVersion),
    `  echo "deb [signed-by=${KUBERNETES_APT_KEYRING}] https://pkgs.k8s.io/core:/stable:/v${spec.kubernetesVersion}/deb/ /" > /etc/apt/sources.list.d/kubernetes.list`,
    `  chmod 0644 ${KUBERNETES_APT_KEYRING} /etc/apt/sources.list.d/kubernetes.list`,
    '  apt-get update -q',
    `  apt-get install ${APT_OPTIONS} kubelet=${version} kubeadm=${version} kubectl=${version}`,
    '  apt-mark hold kubelet kubeadm kubectl containerd',
    '  systemctl restart containerd',
    '  systemctl enable kubelet',
    '  touch "$STATE/packages"',
    'fi',
    ...ssmAgentInstall(),
    '',
    '# The join token is published last: until it is there the join material is incomplete, and this run ends to wait for the next.',
    `if ! parameter "${paths.joinToken}" >/dev/null 2>"$STATE/ssm-error"; then`,
    '  if grep -q ParameterNotFound "$STATE/ssm-error"; then echo "kiln-bootstrap: the join material is not published yet"; else cat "$STATE/ssm-error" >&2; fi',
    '  exit 75',
    'fi',
    '',
    `if [ ! -s "/home/${OPERATOR_USER}/.ssh/authorized_keys" ]; then`,
    `  install -d -m 0700 -o ${OPERATOR_USER} -g ${OPERATOR_USER} /home/${OPERATOR_USER}/.ssh`,
    `  parameter "${paths.authorizedKey}" > /home/${OPERATOR_USER}/.ssh/authorized_keys`,
    `  chown ${OPERATOR_USER}:${OPERATOR_USER} /home/${OPERATOR_USER}/.ssh/authorized_keys`,
    `  chmod 0600 /home/${OPERATOR_USER}/.ssh/authorized_keys`,
    'fi',
    '',
    'if [ ! -e "$STATE/kubeadm-done" ]; then',
    '  # What a failed kubeadm left behind (on a control plane, its etcd member too) goes before this run tries again.',
    '  if [ -e "$STATE/kubeadm-started" ]; then kubeadm reset --force --cri-socket unix:///run/containerd/containerd.sock; fi',
    ...(role === 'control-plane' ? controlPlane : worker),
    '  touch "$STATE/kubeadm-done"',
    'fi',
    '',
    ...afterKubeadm(role),
    'touch "$STATE/joined"',
    '',
  ].join('\n');
}

/**
 * What a machine applies before anything that needs the network, from runcmd (the first commands cloud-init runs
 * once write_files has written the settings): the kernel settings, among them the ones the kubelet's
 * protectKernelDefaults refuses to start without, and sshd's drop-in (sshd already started with it: cloud-init's
 * network stage, which writes the files, runs before sshd.service; the reload makes sure). Then the unit that joins.
 */
function firstBootCommands(): string[] {
  return [
    'modprobe overlay',
    'modprobe br_netfilter',
    'sysctl --system',
    'sshd -t && systemctl reload ssh',
    'systemctl daemon-reload',
    'systemctl restart apt-daily-upgrade.timer',
    `systemctl enable --now --no-block ${BOOTSTRAP_UNIT}`,
  ];
}

/** The KMS plugin's static pod template, for an order with the kms provider; it cannot be rendered without its image. */
function kmsPluginFiles(spec: ClusterSpec, options: UserDataOptions): WriteFile[] {
  if (!usesKmsPlugin(spec)) return [];
  if (options.kmsPluginImage === undefined) throw new Error('the kms at-rest provider needs the aws-encryption-provider image Kiln is configured with (KILN_KMS_PLUGIN_IMAGE)');
  return [secretFile(KMS_PLUGIN_TEMPLATE, toYamlDocuments([kmsPluginManifest(spec, options.kmsPluginImage)]))];
}

function kubeadmTemplates(spec: ClusterSpec, role: MachineRole, pool: NodePoolSpec | undefined, options: UserDataOptions): WriteFile[] {
  const discovery = secretFile(DISCOVERY_TEMPLATE, stringify(discoveryKubeconfig(), { lineWidth: 0 }));
  if (role === 'worker') return [secretFile('/etc/kiln/kubeadm-join-worker.yaml.tmpl', renderJoinConfiguration(spec, 'worker', pool)), discovery];
  const kmsPlugin = kmsPluginFiles(spec, options);
  return [
    secretFile('/etc/kiln/kubeadm-init.yaml.tmpl', renderInitConfiguration(spec)),
    secretFile('/etc/kiln/kubeadm-join-control-plane.yaml.tmpl', renderJoinConfiguration(spec, 'control-plane')),
    discovery,
    secretFile(PATHS.auditPolicy, stringify(auditPolicy())),
    secretFile(PATHS.admissionConfig, admissionConfigurationFile(spec)),
    secretFile(PATHS.eventRateLimit, stringify(eventRateLimitConfiguration())),
    secretFile(API_SERVER_PATCH_FILE, stringify(apiServerProbePatch())),
    ...kmsPlugin,
  ];
}

function authorizedKeyFor(spec: ClusterSpec, options: UserDataOptions): string | undefined {
  return options.authorizedKey ?? (spec.ssh.mode === 'self-managed' ? spec.ssh.publicKey : undefined);
}

/** The #cloud-config document for one role, as an object (before serialisation). */
export function cloudConfig(clusterId: string, spec: ClusterSpec, role: MachineRole, poolName?: string, options: UserDataOptions = {}): Record<string, unknown> {
  const pool = poolName === undefined ? undefined : spec.nodePools.find((candidate) => candidate.name === poolName);
  if (role === 'worker' && pool === undefined) throw new Error(`node pool ${poolName ?? '(none)'} is not in the order`);
  const key = authorizedKeyFor(spec, options);
  return {
    users: [
      {
        name: OPERATOR_USER,
        gecos: 'Kiln operator',
        shell: '/bin/bash',
        lock_passwd: true,
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        ...(key === undefined ? {} : { ssh_authorized_keys: [key] }),
      },
      ...(role === 'control-plane'
        ? [{ name: 'etcd', system: true, shell: '/usr/sbin/nologin', lock_passwd: true, no_create_home: true }]
        : []),
    ],
    ssh_pwauth: false,
    disable_root: true,
    write_files: [
      secretFile(
        '/etc/kiln/machine.env',
        [`KILN_CLUSTER_ID=${clusterId}`, `KILN_ROLE=${role}`, ...(pool === undefined ? [] : [`KILN_POOL=${pool.name}`]), `KILN_KUBERNETES_VERSION=${kubernetesRelease(spec.kubernetesVersion).patch}`, ''].join('\n'),
      ),
      secretFile(SSHD_DROP_IN_PATH, renderSshdConfig()),
      ...unattendedUpgradeFiles(spec),
      publicFile('/etc/modules-load.d/kiln.conf', 'overlay\nbr_netfilter\n'),
      publicFile('/etc/sysctl.d/90-kiln.conf', `${Object.entries(KERNEL_SETTINGS).map(([name, value]) => `${name} = ${value}`).join('\n')}\n`),
      secretFile('/etc/containerd/config.toml', containerdConfig(spec)),
      ...kubeadmTemplates(spec, role, pool, options),
      { path: BOOTSTRAP_SCRIPT, content: bootstrapScript(clusterId, spec, role), owner: 'root:root', permissions: '0700' },
      publicFile(`/etc/systemd/system/${BOOTSTRAP_UNIT}`, bootstrapUnit(spec)),
      ...(role === 'control-plane'
        ? [
            { path: ENCRYPTION_CONFIG_SCRIPT, content: encryptionConfigScript(spec), owner: 'root:root', permissions: '0700' } as const,
            { path: ADMISSION_CONFIG_SCRIPT, content: admissionConfigScript(spec), owner: 'root:root', permissions: '0700' } as const,
            { path: ETCD_MEMBER_SCRIPT, content: etcdMemberScript(), owner: 'root:root', permissions: '0700' } as const,
          ]
        : []),
    ],
    runcmd: firstBootCommands(),
  };
}

/**
 * Permissions kubeadm and the Debian packages leave wider than CIS 1.12
 * allows, tightened by the boot script once kubeadm has written its files: the
 * kubelet unit and drop-in (4.1.1) and the kubelet config (4.1.9) to 0600; on
 * control plane machines the etcd data directory belongs to a dedicated etcd
 * user (1.1.12).
 */
function afterKubeadm(role: MachineRole): string[] {
  const kubelet = [
    'chmod 600 /lib/systemd/system/kubelet.service',
    'chmod 600 /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf',
    'chmod 600 /var/lib/kubelet/config.yaml',
  ];
  return role === 'control-plane' ? [...kubelet, 'chown etcd:etcd /var/lib/etcd', 'chmod 700 /var/lib/etcd'] : kubelet;
}

/**
 * cloud-init user data for one role. It carries no secret: a machine fetches
 * its join material at boot from the cluster's secret store with its
 * instance role, so user data (readable through the EC2 API) leaks nothing.
 */
export function renderUserData(clusterId: string, spec: ClusterSpec, role: MachineRole, pool?: string, options: UserDataOptions = {}): string {
  return `#cloud-config\n${stringify(cloudConfig(clusterId, spec, role, pool, options), { lineWidth: 0 })}`;
}
