import { randomBytes } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { parse, stringify } from 'yaml';
import { ADMISSION_CONFIG_SCRIPT, BOOT_PLACEHOLDERS, ENCRYPTION_CONFIG_SCRIPT, ETCD_MEMBER_SCRIPT, KMS_PLUGIN_ENDPOINT, PATHS, machineSecretPath } from '#bootstrap';
import { type ClusterSpec, cidrBlock, isRecord, numberToIpv4 } from '#core';
import { planSubnets } from '#infra';
import { type AwsScope, accountOfRole } from './iam.ts';
import { kubeadmApiServerTls } from './api-server-tls.ts';
import { type ApiServerTls, type KmsPlugin, type KubeObject, normalizeKubernetesVersion, type SandboxCluster } from './kube/index.ts';
// Container starts under the cluster's TracingPolicies: runc's init against Tetragon (kube/runtime-security.ts).
import { ETCDCTL_IN_ETCD, STATIC_POD_CONTAINERS, refusedContainerStart, refusedStaticPods } from './kube/runtime-security.ts';
import { CLUSTER_INFO, startBootstrapTokenControllers } from './kube/bootstrap-tokens.ts';
import type { NodeTaint } from './kube/nodes.ts';
import { type JoinSpec, KubeadmJoinPreflight, clusterInfoKubeconfig } from './kubeadm-join.ts';
import type { ApiServerAdmission } from './cloud-init/validate.ts';
import { type BootProcedure, BootRuns, RUNS_ONCE } from './boot-procedure.ts';

const JOIN_WAIT_MS = 30 * 60_000;

/** etcd's peer port, in the peer URL kubeadm gives a member (cmd/kubeadm/app/constants EtcdListenPeerPort). */
const ETCD_PEER_PORT = 2380;

/**
 * How long `kubeadm join --control-plane` keeps retrying etcd's MemberAddAsLearner, whatever the error:
 * kubernetes/kubernetes cmd/kubeadm/app/util/etcd/etcd.go addMember polls every EtcdAPICallRetryInterval (500 ms) up to
 * EtcdAPICallTimeout (cmd/kubeadm/app/constants: 2 * time.Minute), then the join fails with etcd's last error.
 */
const KUBEADM_ETCD_API_CALL_TIMEOUT_MS = 2 * 60_000;

export type MachineCommandVerb = 'write' | 'restart';

/** Which commands an injected fault hits; every command of its verb when empty. */
export interface CommandFaultTarget {
  /**
   * Only commands on an EncryptionConfiguration listing exactly these key names, encrypting key first: for `write`
   * the config the machine is asked to write, for `restart` the config on its disk.
   */
  keys?: readonly string[];
}

interface CommandFault extends CommandFaultTarget {
  verb: MachineCommandVerb;
  remaining: number;
}

/** The key names of the first provider for Secrets (`resources[].providers[0].<provider>.keys[].name`), in order. */
function encryptionKeyNames(configYaml: string): string[] {
  const config: unknown = parse(configYaml);
  const resources = isRecord(config) && Array.isArray(config.resources) ? (config.resources as unknown[]) : [];
  const forSecrets = resources.find((entry) => isRecord(entry) && Array.isArray(entry.resources) && entry.resources.includes('secrets'));
  const providers = isRecord(forSecrets) && Array.isArray(forSecrets.providers) ? (forSecrets.providers as unknown[]) : [];
  const first = providers[0];
  const body = isRecord(first) ? Object.values(first)[0] : undefined;
  const keys = isRecord(body) && Array.isArray(body.keys) ? (body.keys as unknown[]) : [];
  return keys.flatMap((key) => (isRecord(key) && typeof key.name === 'string' ? [key.name] : []));
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((key, index) => key === b[index]);
}

/**
 * What a machine does at boot because its user data and instance role say
 * so, read from what Kiln rendered: the sandbox gives a machine nothing its
 * configuration does not.
 */
export interface MachineImage {
  /** The kubelet sets `aws:///<zone>/<instance-id>` from the instance metadata. */
  providerIdAtBoot: boolean;
  /** The SSM agent is installed and running, and the instance role lets it register: Run Command reaches the machine. */
  ssmManaged: boolean;
  /** Executable files its user data writes: what Run Command can run on it. */
  scripts?: readonly string[];
  /** How long the join token `kubeadm init` makes lives (its InitConfiguration's `bootstrapTokens[].ttl`); kubeadm's default is 24 h. */
  joinTokenTtlMs?: number;
  /** What that token is for (`bootstrapTokens[].usages`); kubeadm's default is signing and authentication. */
  joinTokenUsages?: readonly string[];
  /** The labels (`--node-labels`) and taints its JoinConfiguration registers the kubelet with. */
  nodeRegistration?: { labels: Readonly<Record<string, string>>; taints: readonly NodeTaint[] };
  /** The launch template's instance type. */
  instanceType?: string;
  /** The Kubernetes release its user data installs (kubeadm, kubelet), e.g. `v1.35.9`; the cluster's when not known. */
  kubeletVersion?: string;
  /** What its JoinConfiguration tells `kubeadm join` about discovery; without one, token discovery with its join token. */
  join?: JoinSpec;
  /** kube-apiserver's --anonymous-auth in the ClusterConfiguration its `kubeadm init` would run; kube-apiserver's default (true) when not known. */
  apiServerAnonymousAuth?: boolean;
  /** `apiServer.certSANs` of that ClusterConfiguration, boot placeholders unfilled: extra names of its serving certificate. */
  apiServerCertSans?: readonly string[];
  /** The image of the KMS plugin's static pod its user data writes: the kubelet must pull it before the plugin runs. */
  kmsPluginImage?: string;
  /** Control plane: the AdmissionConfiguration its kube-apiserver reads at start, among the files its user data writes. */
  apiServerAdmission?: ApiServerAdmission;
  /** How its boot script runs and what follows a failed run; once, from cloud-init's runcmd, when not known. */
  bootProcedure?: BootProcedure;
  /**
   * The one primary key its boot script requires pkgs.k8s.io's Release.key to hold before apt trusts it. Without one,
   * apt trusts whatever keys the fetched file holds (sources.list(5) `signed-by`: any key of the keyring).
   */
  kubernetesAptKeyPin?: string;
}

/**
 * The primary key pkgs.k8s.io signs its repositories with (the long id apt names in kubernetes/release#3818,
 * "EXPKEYSIG 234654DA9A296436 isv:kubernetes OBS Project"; the fingerprint dnf shows importing
 * pkgs.k8s.io/core:/stable:/v1.35/rpm/repodata/repomd.xml.key). The sandbox's own copy: Kiln's pin must match it.
 */
const PKGS_K8S_IO_SIGNING_KEY = 'DE15B14486CD377B9E876E1A234654DA9A296436';

/** An Auto Scaling group as the stack declares it: its bounds, its desired capacity and its launch template's machine. */
export interface MachineGroupShape {
  name: string;
  role: 'control-plane' | 'worker';
  /** The node pool (the group's `kiln:node-pool` tag): the sandbox names its nodes `<pool>-<n>`. */
  pool?: string;
  min: number;
  max: number;
  desired: number;
  image: MachineImage;
}

/**
 * The groups the cluster program declares for an order (the control plane and one per pool, each at its size, with
 * its bounds), for tests and benchmarks that boot machines without running the program. Local mode reads them from
 * the stack instead (`machineGroupsOf`).
 */
export function groupsForOrder(
  order: ClusterSpec,
  images: { controlPlane: MachineImage; pools?: Readonly<Record<string, MachineImage>> },
  names: { controlPlane: string; pools: Readonly<Record<string, string>> },
): MachineGroupShape[] {
  const replicas = order.controlPlane.replicas;
  return [
    { name: names.controlPlane, role: 'control-plane', min: replicas, max: replicas, desired: replicas, image: images.controlPlane },
    ...order.nodePools.map(
      (pool): MachineGroupShape => ({
        name: names.pools[pool.name] ?? `${names.controlPlane}-pool-${pool.name}`,
        role: 'worker',
        pool: pool.name,
        min: pool.min ?? pool.size,
        max: pool.max ?? pool.size,
        desired: pool.size,
        image: images.pools?.[pool.name] ?? BARE_MACHINE,
      }),
    ),
  ];
}

/**
 * The labels a kubelet may give itself (kubelet's IsKubeletLabel, enforced with NodeRestriction): any outside the
 * kubernetes.io and k8s.io namespaces, these, and the kubelet.kubernetes.io and node.kubernetes.io namespaces.
 */
const KUBELET_LABELS = new Set([
  'kubernetes.io/hostname',
  'kubernetes.io/arch',
  'kubernetes.io/os',
  'beta.kubernetes.io/arch',
  'beta.kubernetes.io/os',
  'beta.kubernetes.io/instance-type',
  'node.kubernetes.io/instance-type',
  'failure-domain.beta.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
]);

function isForbiddenKubeletLabel(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  const namespace = key.slice(0, slash);
  const restricted = /(^|\.)(kubernetes\.io|k8s\.io)$/.test(namespace);
  if (!restricted || KUBELET_LABELS.has(key)) return false;
  return !['kubelet.kubernetes.io', 'node.kubernetes.io'].some((allowed) => namespace === allowed || namespace.endsWith(`.${allowed}`));
}

/** A machine with none of it, for callers that boot no rendered configuration. */
export const BARE_MACHINE: MachineImage = { providerIdAtBoot: false, ssmManaged: false };

/** kubeadm's bootstrap token usages when the configuration names none (cmd/kubeadm/app/constants DefaultTokenUsages). */
const KUBEADM_DEFAULT_TOKEN_USAGES = ['signing', 'authentication'];

/** kubeadm's bootstrap token TTL when the configuration names none. */
const KUBEADM_DEFAULT_TOKEN_TTL_MS = 24 * 60 * 60_000;

/** An EC2 instance of a cluster's Auto Scaling group, as EC2 and Auto Scaling describe it. */
export interface SandboxInstance {
  instanceId: string;
  clusterId: string;
  scope: AwsScope;
  autoScalingGroup: string;
  zone: string;
  /** What its launch template said when it launched: a later template version does not change a running instance. */
  instanceType: string;
  launchedAt: Date;
  state: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';
  /**
   * Its primary private IPv4 address (DescribeInstances `PrivateIpAddress`), from its zone's private subnet: what kubeadm
   * advertises (its default route's address) and its kubelet reports as InternalIP. A stopped instance keeps it; a
   * terminated one has none (awsdocs/amazon-ec2-user-guide doc_source/ec2-instance-lifecycle.md, "Differences Between
   * Reboot, Stop, Hibernate, and Terminate").
   */
  privateIp: string;
  /** Why the machine's boot stopped short of joining for good (kubeadm's error, a missing parameter), as its console log would show. */
  bootError?: string;
  /** Why the last run of its boot procedure failed, while it is retried (what the unit's journal shows). */
  lastBootFailure?: string;
}

interface Machine {
  clusterId: string;
  ssmManaged: boolean;
  /** The account and region the instance runs in: where its role reads parameters and where Run Command reaches it. */
  scope: AwsScope;
  cluster: SandboxCluster;
  name: string;
  role: 'control-plane' | 'worker';
  /** The EncryptionConfiguration on this machine's disk (control plane only). */
  encryptionConfig?: string;
  /** Executable files its user data wrote. */
  scripts: readonly string[];
  /** A fault that a reboot does not fix (failed disk, kernel that no longer boots). */
  broken: boolean;
  /** The kubelet's release. */
  kubeletVersion: string;
  /** Control plane only: the release of its static pods (kubeadm-config's kubernetesVersion when it joined). */
  controlPlaneVersion?: string;
  /** Control plane only: the serving certificate its kube-apiserver presents, made by kubeadm on this machine. */
  tls?: ApiServerTls;
  /** Control plane only: why runc cannot start its kube-apiserver container again (kube/runtime-security.ts), while it cannot. */
  apiServerStopped?: string;
  /** Control plane only: the KMS plugin static pod's image, as its user data wrote the manifest. */
  kmsPluginImage?: string;
  /** Control plane only: where its kube-apiserver reads its admission configuration, and the files on its disk (as cloud-init wrote them, then Kiln's scripts). */
  apiServerAdmission?: { configFile: string; files: Map<string, string> };
}

/** `v1.35.9` -> 35. */
function minorOf(version: string): number {
  return Number(version.replace(/^v/, '').split('.')[1] ?? Number.NaN);
}

function compareVersions(a: string, b: string): number {
  const parts = (version: string) => version.replace(/^v/, '').split('.').map(Number);
  const [left, right] = [parts(a), parts(b)];
  for (let index = 0; index < 3; index += 1) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** The kubeadm-config ConfigMap `kubeadm init` uploads: the ClusterConfiguration every later join reads. */
function kubeadmConfigMap(kubernetesVersion: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'kubeadm-config', namespace: 'kube-system' },
    data: { ClusterConfiguration: stringify({ apiVersion: 'kubeadm.k8s.io/v1beta4', kind: 'ClusterConfiguration', kubernetesVersion }) },
  };
}

/** kubeadm's certificate phase on one control plane machine: under way, done, or why it failed. */
type CertificatePhase = 'starting' | { tls: ApiServerTls } | { error: string };

/** A parameter the boot script read before it was published: `aws ssm get-parameter` fails, and so does that run. */
interface MissingParameter {
  missing: string;
}

function missingParameter(name: string): MissingParameter {
  return { missing: `aws ssm get-parameter: ParameterNotFound (${name})` };
}

/** What an Auto Scaling group launches: its launch template's machine, with the names kubeadm gives its nodes. */
interface LaunchConfiguration {
  clusterId: string;
  cluster: SandboxCluster;
  scope: AwsScope;
  /** The service range kubeadm's networking.serviceSubnet names: the API server's certificate carries its first address. */
  serviceCidr: string;
  /** The VPC's range: its instances take their addresses from the private subnets the cluster program carves from it. */
  vpcCidr: string;
  group: string;
  role: 'control-plane' | 'worker';
  pool?: string;
  image: MachineImage;
  alive: () => boolean;
  /** Instances launched so far; the next node is named after the count. */
  launched: number;
  /** The group's bounds and desired capacity. */
  min: number;
  max: number;
  desired: number;
}

/** What Auto Scaling answers a change it refuses with (a ValidationError), or the group it changed. */
export type GroupChange = { ok: true } | { ok: false; missing?: boolean; message: string };

/** One change of a cluster's etcd membership, with what the members were after it. */
export interface EtcdMemberChange {
  at: string;
  change: 'add' | 'remove';
  member: string;
  members: string[];
  /** Members whose machine runs and answers, after the change. */
  healthy: string[];
}

/** What the sandbox knows of a cluster's control plane beyond its API server. */
interface ControlPlaneState {
  /** `kubeadm init` ran: the API server answers and joins can be checked. */
  initialised: boolean;
  /** The serving certificate the load balancer's API servers present (the one expiring first). */
  served?: ApiServerTls;
  /** etcd members (named after their nodes, as kubeadm names them) and the instance each runs on. */
  etcd: Map<string, string>;
  etcdHistory: EtcdMemberChange[];
  /** Member changes that left etcd without quorum: each is a failure of whoever made it. */
  quorumViolations: string[];
  /**
   * The one learner etcd admits (etcd-io/etcd@v3.6.6, the etcd kubeadm 1.35 deploys: membership.DefaultMaxLearners = 1,
   * and kubeadm sets no --max-learners): added by a joining control plane machine with its peer URL
   * `https://<advertise address>:2380` (kubeadm etcdutil.GetPeerURL), promoted once its etcd has started (the machine's
   * boot time here). Until its etcd starts it has no name (etcd-io/etcd@v3.6.6 etcdctl/ctlv3/command/printer.go
   * makeMemberListTable: an empty Name is "unstarted"). It does not vote, and stays a member if its machine dies
   * before the promotion.
   */
  learner?: { member: string; instanceId: string; peerUrl: string; promotableAt: number };
  /** When each joining machine's MemberAddAsLearner was first refused for the learner slot. */
  learnerWaits: Map<string, number>;
  /** Machines whose learner was removed while they were still joining: their kubeadm's MemberPromote finds no member. */
  removedLearners: Set<string>;
  /** Stops kube-controller-manager's bootstrap token controllers, running from kubeadm init on. */
  stopTokenControllers?: () => void;
}

const BOOTSTRAP_TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;

/**
 * The Secret `kubeadm init` (and `kubeadm token create`) stores for a bootstrap token, with a `usage-bootstrap-<usage>`
 * key per usage its configuration names (cmd/kubeadm/app/apis/bootstraptoken/v1 BootstrapTokenToSecret).
 */
function bootstrapTokenSecret(id: string, secret: string, expiration: Date, usages: readonly string[]): KubeObject {
  const data = {
    'token-id': id,
    'token-secret': secret,
    expiration: expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...Object.fromEntries(usages.map((usage) => [`usage-bootstrap-${usage}`, 'true'])),
    'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
  };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
    type: 'bootstrap.kubernetes.io/token',
    data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
  };
}

/**
 * The cluster-info ConfigMap `kubeadm init` publishes for discovery (cmd/kubeadm/app/phases/bootstraptoken/clusterinfo/
 * clusterinfo.go): admin.conf's cluster (the control plane endpoint and the cluster CA), unnamed.
 */
function clusterInfoConfigMap(server: string, caPem: string | undefined): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CLUSTER_INFO.name, namespace: CLUSTER_INFO.namespace },
    data: { [CLUSTER_INFO.kubeconfigKey]: clusterInfoKubeconfig(server, caPem) },
  };
}

/** What a machine without a rendered JoinConfiguration runs: `kubeadm join --token <its join token> --discovery-token-unsafe-skip-ca-verification`. */
function tokenJoin(joinTokenParameter: string): JoinSpec {
  return {
    discovery: { bootstrapToken: { apiServerEndpoint: 'control-plane.sandbox.invalid:6443', token: '@JOIN_TOKEN@', unsafeSkipCAVerification: true } },
    files: {},
    placeholders: { '@JOIN_TOKEN@': { parameter: joinTokenParameter, base64: false } },
  };
}

/**
 * The sandbox's machines: what cloud-init, kubeadm and the SSM agent do on
 * each one, and what Auto Scaling does with its groups. A machine runs its
 * boot script as its user data says (boot-procedure.ts): once from cloud-init's
 * runcmd, which a parameter the bootstrap step has not published yet fails for
 * good, or from a systemd unit that runs it again until it joins or its
 * deadline passes. The join token comes last; the first control plane machine
 * runs `kubeadm init`, which stores that token as
 * a bootstrap token Secret with the TTL of the rendered configuration, starts
 * the API server with the rendered --anonymous-auth, publishes cluster-info
 * and starts the bootstrap token controllers; every other machine runs
 * `kubeadm join`, whose discovery (as its JoinConfiguration says: a bootstrap
 * token or a discovery file) goes to the API server over HTTP and is
 * authenticated and authorized there, so a machine launched after the first
 * token's TTL joins only if Kiln minted a fresh one, and a join that needs
 * anonymous access fails where the API server refuses it. A control plane
 * machine that joins becomes an etcd member; every member change is checked
 * for quorum. Run Commands sent to a machine run its Kiln scripts here. The
 * sandbox has one API server per cluster, so restarting any control plane
 * machine loads that machine's configuration.
 */
export class SandboxMachines {
  private readonly byInstance = new Map<string, Machine>();
  private readonly instances = new Map<string, SandboxInstance>();
  private readonly groups = new Map<string, LaunchConfiguration>();
  private readonly controlPlanes = new Map<string, ControlPlaneState>();
  /** kubeadm's certificate phase on each control plane machine, by instance. */
  private readonly certificates = new Map<string, CertificatePhase>();
  /** `kubeadm join`'s preflight (discovery, then kubeadm-config) on each joining machine, by instance. */
  private readonly preflights = new Map<string, KubeadmJoinPreflight>();
  private failingCommands: CommandFault[] = [];
  /** kubeadm's etcd API call timeout; tests shorten it as they shorten the boot time. */
  kubeadmEtcdApiCallTimeoutMs = KUBEADM_ETCD_API_CALL_TIMEOUT_MS;
  /** Runs of boot scripts still to fail as a download does when the network is not there yet. */
  private failingBootRuns = 0;
  /** The primary key of the Release.key pkgs.k8s.io serves the machines. */
  private servedKubernetesAptKey = PKGS_K8S_IO_SIGNING_KEY;
  /** Control plane machines still to lose power right after their learner is added. */
  private dyingLearners = 0;
  /** Private addresses EC2 handed out so far, per cluster and zone. */
  private readonly addressesHandedOut = new Map<string, number>();

  constructor(
    private readonly readSecret: (scope: AwsScope, name: string) => string | undefined,
    private readonly bootMs: number,
    /** Kiln's own account, where clusters without `account` in their order run. */
    private readonly homeAccountId = '000000000000',
    /** What the aws-encryption-provider static pod does on a control plane machine, with the machine's role. */
    private readonly kmsPlugin?: (scope: AwsScope, keyArn: string) => KmsPlugin,
    /** Whether a registry the machines reach serves an image (the container runtime's pull). */
    private readonly imagePullable: (image: string) => boolean = () => false,
  ) {}

  /**
   * The KMS plugins listening on a control plane machine: the aws-encryption-provider static pod, when the machine's
   * boot found a key ARN for it in the secret store.
   */
  private pluginsOn(scope: AwsScope, clusterId: string, image: string | undefined): Map<string, KmsPlugin> {
    const keyArn = this.readSecret(scope, machineSecretPath(clusterId, 'control-plane', 'kms-key-arn'));
    const plugins = new Map<string, KmsPlugin>();
    // The kubelet starts the static pod only once it pulled its image (ErrImagePull otherwise): no plugin listens then.
    const pulled = image !== undefined && this.imagePullable(image);
    if (keyArn !== undefined && pulled && this.kmsPlugin !== undefined) plugins.set(KMS_PLUGIN_ENDPOINT, this.kmsPlugin(scope, keyArn));
    return plugins;
  }

  private controlPlaneOf(clusterId: string): ControlPlaneState {
    let state = this.controlPlanes.get(clusterId);
    if (state === undefined) {
      state = { initialised: false, etcd: new Map(), etcdHistory: [], quorumViolations: [], learnerWaits: new Map(), removedLearners: new Set() };
      this.controlPlanes.set(clusterId, state);
    }
    return state;
  }

  /**
   * A stack update reaching Auto Scaling, as the stack declares the cluster's groups: a new group launches its
   * desired capacity, spread over the zones; a group whose desired capacity rose launches the difference, and one
   * whose desired capacity fell terminates the difference by Auto Scaling's default termination policy (the zone
   * with the most instances, then the oldest instance), drained or not; a group the stack no longer declares is
   * deleted with its instances. A new launch template version boots the later launches; running instances keep
   * theirs.
   */
  boot(
    clusterId: string,
    cluster: SandboxCluster,
    spec: Pick<ClusterSpec, 'region' | 'account' | 'network'>,
    alive: () => boolean,
    shapes: readonly MachineGroupShape[],
  ): void {
    // The instances run in the cluster's region and, with `account`, in the tenant's account: they see only the parameters there.
    const scope: AwsScope = { accountId: (spec.account === undefined ? undefined : accountOfRole(spec.account.roleArn)) ?? this.homeAccountId, region: spec.region };
    for (const shape of shapes) {
      const existing = this.groups.get(shape.name);
      if (existing === undefined) {
        const launch: LaunchConfiguration = {
          clusterId,
          cluster,
          scope,
          serviceCidr: spec.network.serviceCidr,
          vpcCidr: spec.network.vpcCidr,
          group: shape.name,
          role: shape.role,
          ...(shape.pool === undefined ? {} : { pool: shape.pool }),
          image: shape.image,
          alive,
          launched: 0,
          min: shape.min,
          max: shape.max,
          desired: 0,
        };
        this.groups.set(shape.name, launch);
        this.setDesired(launch, shape.desired);
        continue;
      }
      Object.assign(existing, { image: shape.image, min: shape.min, max: shape.max });
      this.setDesired(existing, shape.desired);
    }
    const declared = new Set(shapes.map((shape) => shape.name));
    for (const [name, launch] of this.groups) {
      if (launch.clusterId !== clusterId || declared.has(name)) continue;
      // Deleting a group terminates its instances; nothing replaces them.
      for (const instance of this.liveInstancesOf(name)) this.shutDown(instance);
      this.groups.delete(name);
    }
  }

  /** Instances of a group that are not terminated. */
  private liveInstancesOf(group: string): SandboxInstance[] {
    return [...this.instances.values()].filter((instance) => instance.autoScalingGroup === group && instance.state !== 'terminated');
  }

  /** The zone of the group's next launch: the one with the fewest of its instances (Auto Scaling balances zones). */
  private nextZone(launch: LaunchConfiguration): string {
    const zones = ['a', 'b', 'c'].map((letter) => `${launch.scope.region}${letter}`);
    const live = this.liveInstancesOf(launch.group);
    return zones.reduce((best, zone) => (live.filter((instance) => instance.zone === zone).length < live.filter((instance) => instance.zone === best).length ? zone : best));
  }

  /** A change of desired capacity: Auto Scaling launches or terminates the difference. */
  private setDesired(launch: LaunchConfiguration, desired: number): void {
    const difference = desired - launch.desired;
    launch.desired = desired;
    for (let index = 0; index < difference; index += 1) this.launch(launch, this.nextZone(launch));
    for (let index = 0; index < -difference; index += 1) {
      const live = this.liveInstancesOf(launch.group);
      const perZone = (zone: string) => live.filter((instance) => instance.zone === zone).length;
      const victim = [...live].sort((a, b) => perZone(b.zone) - perZone(a.zone) || a.launchedAt.getTime() - b.launchedAt.getTime())[0];
      if (victim !== undefined) this.shutDown(victim);
    }
  }

  /**
   * The address EC2 gives an instance launched into the zone's private subnet (the cluster program's planSubnets, one
   * per zone in order): the next free one after the four AWS reserves at a subnet's start (Amazon VPC User Guide,
   * "Subnet CIDR blocks"). The sandbox hands each out once per cluster; EC2 may give a released one again.
   */
  private nextPrivateIp(launch: LaunchConfiguration, zone: string): string {
    const zones = ['a', 'b', 'c'];
    const subnet = planSubnets(launch.vpcCidr, zones.length).privateCidrs[Math.max(0, zones.indexOf(zone.slice(-1)))] ?? launch.vpcCidr;
    const key = `${launch.clusterId}/${zone}`;
    const handedOut = this.addressesHandedOut.get(key) ?? 0;
    this.addressesHandedOut.set(key, handedOut + 1);
    return numberToIpv4(cidrBlock(subnet).first + 4 + handedOut);
  }

  /** Auto Scaling launches an instance of the group; it boots, waits for its join token and joins (or fails to). */
  private launch(launch: LaunchConfiguration, zone: string): SandboxInstance {
    const instanceId = `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
    const name = `${launch.role === 'control-plane' ? 'control-plane' : (launch.pool ?? 'node')}-${launch.launched}`;
    launch.launched += 1;
    const instance: SandboxInstance = {
      instanceId,
      clusterId: launch.clusterId,
      scope: launch.scope,
      autoScalingGroup: launch.group,
      zone,
      instanceType: launch.image.instanceType ?? 'm7i.large',
      launchedAt: new Date(),
      state: 'running',
      privateIp: this.nextPrivateIp(launch, zone),
    };
    this.instances.set(instanceId, instance);
    // One run of the boot script at a time: it reads its join material, then kubeadm runs (and may wait on the API
    // server within its own timeouts). A failed run is retried only if the user data runs the script that way.
    const runs = new BootRuns(launch.image.bootProcedure ?? RUNS_ONCE, instance.launchedAt);
    let running = false;
    let nextRunAt = Date.now();
    let waitingSince = 0;
    let runFault: string | undefined;
    const boot = setInterval(() => {
      if (!launch.alive() || instance.state === 'terminated') {
        clearInterval(boot);
        return;
      }
      if (instance.state !== 'running' || Date.now() < nextRunAt) return;
      if (!running) {
        const refused = runs.start(Date.now());
        if (refused !== undefined) {
          clearInterval(boot);
          instance.bootError = instance.lastBootFailure === undefined ? refused : `${refused}; last failure: ${instance.lastBootFailure}`;
          return;
        }
        running = true;
        waitingSince = Date.now();
        runFault = this.takeBootRunFault() ?? this.untrustedKubernetesAptKey(launch.image);
      }
      const outcome = runFault ?? this.tryJoin(launch, instance, name);
      if (outcome === 'joined') {
        clearInterval(boot);
        delete instance.lastBootFailure;
        return;
      }
      if (outcome === 'waiting' && Date.now() - waitingSince <= JOIN_WAIT_MS) return;
      const failure = outcome === 'waiting' ? 'kubeadm did not finish' : typeof outcome === 'string' ? outcome : outcome.missing;
      running = false;
      // A retried run starts clean: the script resets what a failed kubeadm left behind.
      this.certificates.delete(instanceId);
      this.preflights.delete(instanceId);
      const next = runs.afterFailure(failure, Date.now());
      if ('givesUp' in next) {
        clearInterval(boot);
        instance.bootError = next.givesUp;
        return;
      }
      instance.lastBootFailure = failure;
      nextRunAt = next.retryAt;
    }, 50);
    boot.unref();
    return instance;
  }

  /**
   * kubeadm's certificate phase on a control plane machine (init, or join --control-plane), for a cluster whose API
   * server is `secure`: the machine makes its own serving certificate from the cluster CA Kiln published
   * (/etc/kubernetes/pki/ca.{crt,key}), valid for a year from now; a run of its boot script that finds no CA fails as
   * one that finds no join token does. Undefined for a cluster that serves no TLS.
   */
  private certificatePhase(launch: LaunchConfiguration, instanceId: string, nodeName: string): CertificatePhase | MissingParameter | undefined {
    const { cluster, clusterId, scope, serviceCidr } = launch;
    if (!cluster.url.startsWith('https:')) return undefined;
    const existing = this.certificates.get(instanceId);
    if (existing !== undefined) return existing;
    const at = (name: string) => this.readSecret(scope, machineSecretPath(clusterId, 'control-plane', name));
    const caCertificate = at('pki/ca.crt');
    const caKey = at('pki/ca.key');
    const apiHost = at('api-host');
    if (caCertificate === undefined) return missingParameter(machineSecretPath(clusterId, 'control-plane', 'pki/ca.crt'));
    if (caKey === undefined) return missingParameter(machineSecretPath(clusterId, 'control-plane', 'pki/ca.key'));
    if (apiHost === undefined) return missingParameter(machineSecretPath(clusterId, 'control-plane', 'api-host'));
    this.certificates.set(instanceId, 'starting');
    // The boot script fills the API host's placeholder in the ClusterConfiguration before kubeadm reads it.
    const certSans = (launch.image.apiServerCertSans ?? []).map((name) => name.replaceAll(BOOT_PLACEHOLDERS.apiHost, apiHost));
    kubeadmApiServerTls({ certificatePem: caCertificate, privateKeyPem: caKey }, { apiHost, serviceCidr, nodeName, certSans }).then(
      (tls) => this.certificates.set(instanceId, { tls }),
      (error: unknown) => this.certificates.set(instanceId, { error: `kubeadm: [certs] ${error instanceof Error ? error.message : String(error)}` }),
    );
    return 'starting';
  }

  /**
   * What the cluster's load balancer has behind it: the API servers of the control plane machines that run. The
   * sandbox has one API server per cluster, so it presents the serving certificate that expires first (a client may
   * reach any of them) and reports the oldest control plane release (during an upgrade some still run it).
   */
  private serveControlPlane(clusterId: string, cluster: SandboxCluster): void {
    const running = [...this.byInstance]
      .filter(([instanceId, machine]) => machine.clusterId === clusterId && machine.role === 'control-plane' && this.instances.get(instanceId)?.state !== 'terminated' && machine.apiServerStopped === undefined)
      .map(([, machine]) => machine);
    cluster.setApiServers(running.length);
    const state = this.controlPlaneOf(clusterId);
    const expiry = (tls: ApiServerTls) => Date.parse(new X509Certificate(tls.certificatePem).validTo);
    const [first] = running.flatMap((machine) => (machine.tls === undefined ? [] : [machine.tls])).sort((a, b) => expiry(a) - expiry(b));
    if (first !== undefined && first !== state.served) {
      cluster.serveTls(first);
      state.served = first;
    }
    const [oldest] = running.flatMap((machine) => (machine.controlPlaneVersion === undefined ? [] : [machine.controlPlaneVersion])).sort(compareVersions);
    if (oldest !== undefined) cluster.setKubernetesVersion(oldest);
  }

  /** The kubernetesVersion of a ClusterConfiguration, as kubeadm-config holds it. */
  private static clusterConfigurationVersion(text: string): string | undefined {
    const parsed: unknown = parse(text);
    return isRecord(parsed) && typeof parsed.kubernetesVersion === 'string' ? parsed.kubernetesVersion : undefined;
  }

  /**
   * The machine's `kubeadm join` preflight, started once the boot script has what it fills the JoinConfiguration and
   * its files with (else the parameter it did not find): discovery and the kubeadm-config read, against the cluster's
   * API server.
   */
  private joinPreflight(launch: LaunchConfiguration, instanceId: string): KubeadmJoinPreflight | MissingParameter {
    const existing = this.preflights.get(instanceId);
    if (existing !== undefined) return existing;
    const spec = launch.image.join ?? tokenJoin(machineSecretPath(launch.clusterId, launch.role, 'join-token'));
    const values: [string, string][] = [];
    for (const [placeholder, source] of Object.entries(spec.placeholders)) {
      const value = this.readSecret(launch.scope, source.parameter);
      if (value === undefined) return missingParameter(source.parameter);
      values.push([placeholder, source.base64 ? Buffer.from(value).toString('base64') : value]);
    }
    const fill = (text: string, escape: (value: string) => string) => values.reduce((filled, [placeholder, value]) => filled.replaceAll(placeholder, escape(value)), text);
    const discovery = JSON.parse(fill(JSON.stringify(spec.discovery), (value) => JSON.stringify(value).slice(1, -1))) as Record<string, unknown>;
    const files = Object.fromEntries(Object.entries(spec.files).map(([path, text]) => [path, fill(text, (value) => value)]));
    const preflight = new KubeadmJoinPreflight(launch.cluster, discovery, files, spec.discoveryTimeoutMs);
    this.preflights.set(instanceId, preflight);
    return preflight;
  }

  /**
   * What `kubeadm init` sets up for the machines that join: the API server's --anonymous-auth as rendered, the
   * cluster-info ConfigMap (the control plane endpoint and the CA Kiln published), and kube-controller-manager's
   * bootstrapsigner and tokencleaner.
   */
  private publishClusterInfo(launch: LaunchConfiguration, state: ControlPlaneState): void {
    const { cluster, clusterId, scope } = launch;
    cluster.setAnonymousAuth(launch.image.apiServerAnonymousAuth ?? true);
    const apiHost = this.readSecret(scope, machineSecretPath(clusterId, 'control-plane', 'api-host'));
    const caPem = this.readSecret(scope, machineSecretPath(clusterId, 'control-plane', 'pki/ca.crt'));
    cluster.writeObject(clusterInfoConfigMap(apiHost === undefined ? cluster.url : `https://${apiHost}:6443`, caPem), 'kubeadm');
    state.stopTokenControllers ??= startBootstrapTokenControllers(cluster);
  }

  /**
   * The control plane machine's kube-apiserver starts with the EncryptionConfiguration on its disk; it does not start
   * with one it cannot load (a KMS plugin that is not there), and then no node joins. Returns why it did not start.
   */
  private loadEncryptionConfiguration(launch: LaunchConfiguration, encryptionConfig: string | undefined): string | undefined {
    if (encryptionConfig === undefined) return undefined;
    try {
      launch.cluster.setEncryptionConfiguration(parse(encryptionConfig) as KubeObject, this.pluginsOn(launch.scope, launch.clusterId, launch.image.kmsPluginImage));
      return undefined;
    } catch (error) {
      return `kube-apiserver did not start: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /**
   * kube-apiserver reads its admission configuration once, as it starts: the AdmissionConfiguration at
   * --admission-control-config-file on its machine's disk (kubernetes/kubernetes@v1.35.9
   * staging/src/k8s.io/apiserver/pkg/admission/config.go ReadAdmissionConfiguration; the PodSecurity plugin loads its
   * part in newPlugin, plugin/pkg/admission/security/podsecurity/admission.go). A file changed later changes nothing
   * until the next start. Returns why it did not start.
   */
  private loadAdmissionConfiguration(cluster: SandboxCluster, admission: { configFile: string; files: ReadonlyMap<string, string> } | undefined): string | undefined {
    if (admission === undefined) {
      cluster.setAdmissionConfiguration(undefined, '', () => undefined);
      return undefined;
    }
    const { configFile, files } = admission;
    const text = files.get(configFile);
    if (text === undefined) return `kube-apiserver did not start: unable to read admission control configuration from "${configFile}" [open ${configFile}: no such file or directory]`;
    try {
      cluster.setAdmissionConfiguration(parse(text) as unknown, configFile, (path) => files.get(path));
      return undefined;
    } catch (error) {
      return `kube-apiserver did not start: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** A control plane machine's kube-apiserver starts with the configuration on its disk: encryption at rest and admission. */
  private startApiServer(launch: LaunchConfiguration, encryptionConfig: string | undefined): string | undefined {
    const notStarted = this.loadEncryptionConfiguration(launch, encryptionConfig);
    if (notStarted !== undefined || launch.role !== 'control-plane') return notStarted;
    const admission = launch.image.apiServerAdmission;
    return this.loadAdmissionConfiguration(launch.cluster, admission === undefined ? undefined : { configFile: admission.configFile, files: new Map(Object.entries(admission.files)) });
  }

  /**
   * One step of a run of the machine's boot script: 'joined', 'waiting' (kubeadm waits for the API server), the
   * parameter its script did not find, or kubeadm's error.
   */
  private tryJoin(launch: LaunchConfiguration, instance: SandboxInstance, name: string): string | MissingParameter {
    const { clusterId, cluster, scope, role } = launch;
    const token = this.readSecret(scope, machineSecretPath(clusterId, role, 'join-token'));
    if (token === undefined) return missingParameter(machineSecretPath(clusterId, role, 'join-token'));
    const state = this.controlPlaneOf(clusterId);
    const encryptionConfig = role === 'control-plane' ? this.readSecret(scope, machineSecretPath(clusterId, 'control-plane', 'encryption-config')) : undefined;
    const kubeletVersion = normalizeKubernetesVersion(launch.image.kubeletVersion ?? cluster.kubernetesVersion);
    let controlPlaneVersion: string | undefined;
    let initialising = false;
    // A control plane machine runs `kubeadm init` while no other has; every other machine runs `kubeadm join`, whose
    // discovery retries until the first control plane answers (or its discovery timeout).
    if (!state.initialised && role === 'control-plane') {
      const notStarted = this.startApiServer(launch, encryptionConfig);
      if (notStarted !== undefined) return notStarted;
      const parts = BOOTSTRAP_TOKEN.exec(token);
      if (parts === null) return `kubeadm init: the bootstrap token "${token.slice(0, 6)}…" is not of the form [a-z0-9]{6}.[a-z0-9]{16}`;
      const certificates = this.certificatePhase(launch, instance.instanceId, name);
      if (certificates === 'starting') return 'waiting';
      if (certificates !== undefined && 'missing' in certificates) return certificates;
      if (certificates !== undefined && 'error' in certificates) return `kubeadm init: ${certificates.error}`;
      const ttl = launch.image.joinTokenTtlMs ?? KUBEADM_DEFAULT_TOKEN_TTL_MS;
      cluster.writeObject(bootstrapTokenSecret(parts[1] ?? '', parts[2] ?? '', new Date(Date.now() + ttl), launch.image.joinTokenUsages ?? KUBEADM_DEFAULT_TOKEN_USAGES), 'kubeadm');
      // kubeadm init deploys the control plane of its own release and uploads that ClusterConfiguration.
      cluster.writeObject(kubeadmConfigMap(kubeletVersion), 'kubeadm');
      this.publishClusterInfo(launch, state);
      controlPlaneVersion = kubeletVersion;
      state.initialised = true;
      initialising = true;
    } else {
      const started = this.joinPreflight(launch, instance.instanceId);
      if ('missing' in started) return started;
      const preflight = started.poll();
      if (preflight === 'running') return 'waiting';
      if ('error' in preflight) return `kubeadm join: ${preflight.error}`;
      // kubeadm join's preflight: the kubelet may not be newer than the control plane the ClusterConfiguration names;
      // a control plane machine deploys that release, which may be at most one minor from the oldest API server's.
      const configured = SandboxMachines.clusterConfigurationVersion(preflight.clusterConfiguration);
      if (configured === undefined) return 'kubeadm join: unable to fetch the kubeadm-config ConfigMap';
      if (minorOf(kubeletVersion) > minorOf(configured)) {
        return `kubeadm join: [preflight] the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: "${kubeletVersion}" Control plane version: "${configured}"`;
      }
      if (role === 'control-plane') {
        if (minorOf(configured) - minorOf(cluster.kubernetesVersion) > 1) {
          return `kubeadm join: [preflight] the control plane version "${configured}" is more than one minor newer than the running API servers' "${cluster.kubernetesVersion}"`;
        }
        const certificates = this.certificatePhase(launch, instance.instanceId, name);
        if (certificates === 'starting') return 'waiting';
        if (certificates !== undefined && 'missing' in certificates) return certificates;
        if (certificates !== undefined && 'error' in certificates) return `kubeadm join: ${certificates.error}`;
        controlPlaneVersion = normalizeKubernetesVersion(configured);
      }
      const notStarted = this.startApiServer(launch, encryptionConfig);
      if (notStarted !== undefined) return notStarted;
    }
    const issued = this.certificates.get(instance.instanceId);
    const tls = issued !== undefined && issued !== 'starting' && 'tls' in issued ? issued.tls : undefined;
    // The kubelet refuses to start with labels NodeRestriction would not let it set.
    const forbidden = Object.keys(launch.image.nodeRegistration?.labels ?? {}).filter(isForbiddenKubeletLabel);
    if (forbidden.length > 0) return `kubelet: unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [${forbidden.join(' ')}]`;
    // `kubeadm join --control-plane` adds the etcd member first; etcd refuses a member change without quorum.
    if (role === 'control-plane' && state.etcd.size > 0 && !this.hasQuorum(clusterId, [...state.etcd.keys()])) {
      return 'kubeadm join: etcdserver: unhealthy cluster (no quorum to add a member)';
    }
    // kubeadm join's etcd-join phase runs before kubelet-wait-bootstrap: the joining machine's kubelet bootstraps (and
    // registers its Node) through the machine's own API server, which needs its etcd (ControlPlaneKubeletLocalMode,
    // GA and locked on in 1.35, kubernetes/kubernetes#134106; KEP 4471 "Introducing and reordering phases for kubeadm
    // join"; phase order in cmd/kubeadm/app/cmd/join.go: kubelet-start, etcd-join, kubelet-wait-bootstrap,
    // control-plane-join). A machine that dies with its learner pending has no Node.
    if (role === 'control-plane' && !initialising) {
      const learner = this.etcdLearnerStep(state, instance, name);
      if (learner !== 'promoted') return learner;
    }
    // The kubelet starts the control plane's static pods through runc, under the TracingPolicies the cluster holds.
    // kubeadm join adds the member as a learner and promotes it only once it runs (kubernetes/kubernetes
    // cmd/kubeadm/app/phases/etcd/local.go CreateStackedEtcdStaticPodManifestFile): a learner never votes, so etcd's
    // quorum is as before.
    const staticPods = role === 'control-plane' ? refusedStaticPods(cluster) : undefined;
    if (staticPods !== undefined) return `kubeadm: the control plane's static pods did not start: ${staticPods}`;
    this.byInstance.set(instance.instanceId, {
      clusterId,
      ssmManaged: launch.image.ssmManaged,
      scope,
      cluster,
      name,
      role,
      broken: false,
      scripts: launch.image.scripts ?? [],
      ...(launch.image.kmsPluginImage === undefined ? {} : { kmsPluginImage: launch.image.kmsPluginImage }),
      kubeletVersion,
      ...(controlPlaneVersion === undefined ? {} : { controlPlaneVersion }),
      ...(tls === undefined ? {} : { tls }),
      ...(encryptionConfig === undefined ? {} : { encryptionConfig }),
      ...(role === 'control-plane' && launch.image.apiServerAdmission !== undefined
        ? { apiServerAdmission: { configFile: launch.image.apiServerAdmission.configFile, files: new Map(Object.entries(launch.image.apiServerAdmission.files)) } }
        : {}),
    });
    if (role === 'control-plane') {
      state.etcd.set(name, instance.instanceId);
      this.recordMemberChange(clusterId, 'add', name);
      this.serveControlPlane(clusterId, cluster);
    }
    // A kubelet knows its provider ID only when told; nothing else in a kubeadm cluster sets it. Its labels and
    // taints are the ones its JoinConfiguration gives it.
    const registration = launch.image.nodeRegistration;
    cluster.registerNode({
      name,
      role,
      ...(registration === undefined ? {} : { labels: { ...registration.labels }, taints: [...registration.taints] }),
      ...(launch.image.providerIdAtBoot ? { providerID: `aws:///${instance.zone}/${instance.instanceId}` } : {}),
      // Without a cloud provider the kubelet's InternalIP is its hostname's address, the instance's private one
      // (kubernetes/kubernetes@v1.35.9 pkg/kubelet/nodestatus/setters.go NodeAddress).
      internalIP: instance.privateIp,
      kubeletVersion,
      ready: false,
      // A fresh machine has no CNI configuration: its node stays NotReady until a CNI agent runs on it.
      cni: false,
    });
    setTimeout(() => {
      // The machine may be gone already (cluster deleted while booting, instance terminated).
      if (launch.alive() && this.byInstance.get(instance.instanceId)?.broken === false && cluster.objects({ kind: 'Node', name }).length > 0) cluster.setNodeReady(name, 'True');
    }, this.bootMs).unref();
    return 'joined';
  }

  /**
   * kubeadm join's etcd step on a control plane machine (kubernetes/kubernetes cmd/kubeadm/app/phases/etcd/local.go
   * CreateStackedEtcdStaticPodManifestFile: AddMemberAsLearner with the peer URL of its advertise address, then
   * MemberPromote; learner mode is the only mode since the EtcdLearnerMode gate went GA in 1.32 and was removed in 1.33,
   * kubernetes/kubernetes#129589). While another machine's learner holds etcd's one learner slot, etcd refuses the add
   * (etcd-io/etcd@v3.6.6 membership/cluster.go ValidateMaxLearnerConfig, ErrTooManyLearners, "etcdserver: too many
   * learner members in cluster" over gRPC) and kubeadm retries until its etcd API call timeout; the machine's own
   * learner is promoted once its etcd has started, and a learner removed meanwhile fails the promotion (etcd's
   * ErrIDNotFound). 'promoted', 'waiting', or kubeadm's error.
   */
  private etcdLearnerStep(state: ControlPlaneState, instance: SandboxInstance, name: string): string {
    const { instanceId } = instance;
    const now = Date.now();
    const held = state.learner;
    if (held !== undefined && held.instanceId !== instanceId) {
      const since = state.learnerWaits.get(instanceId) ?? now;
      state.learnerWaits.set(instanceId, since);
      if (now - since < this.kubeadmEtcdApiCallTimeoutMs) return 'waiting';
      return 'kubeadm join: error execution phase etcd-join: etcdserver: too many learner members in cluster';
    }
    state.learnerWaits.delete(instanceId);
    if (held === undefined && state.removedLearners.delete(instanceId)) return 'kubeadm join: error execution phase etcd-join: etcdserver: member not found';
    if (held === undefined) {
      state.learner = { member: name, instanceId, peerUrl: `https://${instance.privateIp}:${ETCD_PEER_PORT}`, promotableAt: now + this.bootMs };
      if (this.dyingLearners > 0) {
        this.dyingLearners -= 1;
        this.powerOff(instanceId);
      }
      return 'waiting';
    }
    if (now < held.promotableAt) return 'waiting';
    state.learner = undefined;
    return 'promoted';
  }

  /** A member is healthy while its machine runs and is not broken. */
  private healthyMembers(clusterId: string): string[] {
    return [...this.controlPlaneOf(clusterId).etcd].filter(([, instanceId]) => this.instances.get(instanceId)?.state === 'running' && this.byInstance.get(instanceId)?.broken === false).map(([name]) => name);
  }

  private hasQuorum(clusterId: string, members: readonly string[]): boolean {
    const healthy = this.healthyMembers(clusterId).filter((name) => members.includes(name));
    return healthy.length > members.length / 2;
  }

  private recordMemberChange(clusterId: string, change: 'add' | 'remove', member: string): void {
    const state = this.controlPlaneOf(clusterId);
    const members = [...state.etcd.keys()];
    const healthy = this.healthyMembers(clusterId);
    state.etcdHistory.push({ at: new Date().toISOString(), change, member, members, healthy });
    if (!this.hasQuorum(clusterId, members)) state.quorumViolations.push(`${change} ${member} left ${healthy.length} healthy of ${members.length} etcd members`);
  }

  /**
   * The cluster's etcd membership: its voting members, the learner if one is pending (named once its etcd started), the
   * history of member changes, and every change that left it without quorum.
   */
  etcdOf(clusterId: string): {
    members: string[];
    learner?: { instanceId: string; peerUrl: string; name?: string };
    history: readonly EtcdMemberChange[];
    quorumViolations: readonly string[];
  } {
    const state = this.controlPlaneOf(clusterId);
    const learner = state.learner;
    return {
      members: [...state.etcd.keys()],
      ...(learner === undefined
        ? {}
        : { learner: { instanceId: learner.instanceId, peerUrl: learner.peerUrl, ...(this.learnerStarted(learner) ? { name: learner.member } : {}) } }),
      history: state.etcdHistory,
      quorumViolations: state.quorumViolations,
    };
  }

  /** A learner's etcd has started (and published its name) once its machine ran through its boot time. */
  private learnerStarted(learner: NonNullable<ControlPlaneState['learner']>): boolean {
    return this.instances.get(learner.instanceId)?.state === 'running' && Date.now() >= learner.promotableAt;
  }

  /** The instance shuts down: its node stops reporting and stays in the API (nothing in a kubeadm cluster deletes it). */
  private shutDown(instance: SandboxInstance): void {
    instance.state = 'terminated';
    const machine = this.byInstance.get(instance.instanceId);
    this.byInstance.delete(instance.instanceId);
    this.certificates.delete(instance.instanceId);
    this.preflights.delete(instance.instanceId);
    if (machine === undefined) return;
    if (machine.cluster.objects({ kind: 'Node', name: machine.name }).length > 0) machine.cluster.setNodeReady(machine.name, 'Unknown');
    if (machine.role === 'control-plane') this.serveControlPlane(machine.clusterId, machine.cluster);
  }

  /**
   * Auto Scaling TerminateInstanceInAutoScalingGroup: the instance shuts down (its etcd member stays a member until
   * removed); unless the desired capacity is lowered with it, the group launches a replacement in the same zone.
   * Lowering it below the group's minimum size is refused, as Auto Scaling refuses it.
   */
  terminateInGroup(scope: AwsScope, instanceId: string, decrementDesiredCapacity: boolean): SandboxInstance | { refused: string } | undefined {
    const instance = this.instances.get(instanceId);
    if (instance === undefined || instance.scope.accountId !== scope.accountId || instance.scope.region !== scope.region || instance.state === 'terminated') return undefined;
    const launch = this.groups.get(instance.autoScalingGroup);
    if (launch !== undefined && decrementDesiredCapacity && launch.desired - 1 < launch.min) {
      return {
        refused: `Currently, desiredSize equals minSize (${launch.min}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.`,
      };
    }
    this.shutDown(instance);
    if (launch !== undefined && decrementDesiredCapacity) launch.desired -= 1;
    if (!decrementDesiredCapacity && launch !== undefined && launch.alive()) {
      setTimeout(() => {
        if (launch.alive()) this.launch(launch, instance.zone);
      }, this.bootMs).unref();
    }
    return instance;
  }

  /**
   * Auto Scaling UpdateAutoScalingGroup: new bounds and desired capacity. A minimum above the desired capacity raises
   * it, a maximum below lowers it; an explicit desired capacity outside the bounds is refused.
   */
  updateGroup(scope: AwsScope, name: string, change: { min?: number; max?: number; desired?: number }): GroupChange {
    const launch = this.groups.get(name);
    if (launch === undefined || launch.scope.accountId !== scope.accountId || launch.scope.region !== scope.region) {
      return { ok: false, missing: true, message: `AutoScalingGroup name not found - AutoScalingGroup ${name} not found` };
    }
    const min = change.min ?? launch.min;
    const max = change.max ?? launch.max;
    if (min > max) return { ok: false, message: `Max bound, ${max}, must be greater than or equal to min bound, ${min}` };
    if (change.desired !== undefined && (change.desired < min || change.desired > max)) {
      return { ok: false, message: `Desired capacity:${change.desired} must be between the specified min size:${min} and max size:${max}` };
    }
    launch.min = min;
    launch.max = max;
    this.setDesired(launch, Math.min(max, Math.max(min, change.desired ?? launch.desired)));
    return { ok: true };
  }

  /**
   * Fault injection: the next `times` commands with this verb (write, restart), on any control plane machine, fail as
   * a broken machine would; `target` narrows them to commands on a given config. A failed write leaves the disk as
   * it was; a failed restart reports the API server unhealthy and leaves it running the config it had.
   */
  failCommands(verb: MachineCommandVerb, times: number, target: CommandFaultTarget = {}): void {
    this.failingCommands.push({ ...target, verb, remaining: times });
  }

  /**
   * Fault injection: the next `times` runs of any machine's boot script fail before they reach SSM, as its first
   * download does while the machine has no route out (a NAT gateway not there yet, a mirror down).
   */
  failBootRuns(times: number): void {
    this.failingBootRuns += times;
  }

  /**
   * Fault injection: the next `times` control plane machines that add their etcd learner lose power right after, before
   * their etcd starts (as a machine that fails mid-join): the learner stays, unnamed, until someone removes it.
   */
  powerOffAfterLearnerAdded(times: number): void {
    this.dyingLearners += times;
  }

  clearLearnerFaults(): void {
    this.dyingLearners = 0;
  }

  /**
   * Fault injection: pkgs.k8s.io, or whatever answers in its name (a poisoned mirror or proxy on the way), serves a
   * Release.key whose primary key has this fingerprint, until told otherwise.
   */
  serveKubernetesAptKey(fingerprint: string): void {
    this.servedKubernetesAptKey = fingerprint;
  }

  /**
   * A run of a boot script that checks the key it fetched fails on any other key, as Kiln's check does; one that does
   * not check trusts it and installs what it signs, so its machine boots on (and joins with packages nobody vouched for).
   */
  private untrustedKubernetesAptKey(image: MachineImage): string | undefined {
    const pin = image.kubernetesAptKeyPin;
    if (pin === undefined || pin === this.servedKubernetesAptKey) return undefined;
    return `pkgs.k8s.io Release.key: not exactly the Kubernetes package signing key ${pin} (found: ${this.servedKubernetesAptKey}); not trusting it`;
  }

  private takeBootRunFault(): string | undefined {
    if (this.failingBootRuns === 0) return undefined;
    this.failingBootRuns -= 1;
    return 'apt-get update: could not connect to pkgs.k8s.io:443 (connection timed out)';
  }

  clearCommandFaults(): void {
    this.failingCommands = [];
  }

  /** Injected command faults not yet hit. */
  unusedCommandFaults(): number {
    return this.failingCommands.reduce((sum, fault) => sum + fault.remaining, 0);
  }

  private targets(fault: CommandFault, config: string | undefined): boolean {
    if (fault.keys === undefined) return true;
    return config !== undefined && sameKeys(encryptionKeyNames(config), fault.keys);
  }

  forget(clusterId: string): void {
    for (const [id, instance] of this.instances) {
      if (instance.clusterId !== clusterId) continue;
      this.instances.delete(id);
      this.preflights.delete(id);
    }
    for (const [instanceId, machine] of this.byInstance) {
      if (machine.clusterId !== clusterId) continue;
      this.byInstance.delete(instanceId);
      this.certificates.delete(instanceId);
    }
    for (const [name, launch] of this.groups) if (launch.clusterId === clusterId) this.groups.delete(name);
    this.controlPlanes.get(clusterId)?.stopTokenControllers?.();
    this.controlPlanes.delete(clusterId);
  }

  /** The instance behind a cluster's node, as EC2 knows it. */
  instanceOfNode(clusterId: string, nodeName: string): string | undefined {
    return [...this.byInstance].find(([, machine]) => machine.clusterId === clusterId && machine.name === nodeName)?.[0];
  }

  /** Chaos: the machine's kubelet stops (its node goes NotReady); a reboot starts it again. */
  stopKubelet(instanceId: string): void {
    const machine = this.byInstance.get(instanceId);
    machine?.cluster.setNodeReady(machine.name, 'False');
  }

  /** Chaos undone: the kubelet runs again and reports Ready. */
  startKubelet(instanceId: string): void {
    const machine = this.byInstance.get(instanceId);
    if (machine !== undefined && !machine.broken && this.instances.get(instanceId)?.state === 'running') machine.cluster.setNodeReady(machine.name, 'True');
  }

  /** Chaos: the machine loses power; EC2 shows it stopped and its node stops reporting (Unknown). */
  powerOff(instanceId: string): void {
    const instance = this.instances.get(instanceId);
    if (instance === undefined || instance.state === 'terminated') return;
    instance.state = 'stopped';
    const machine = this.byInstance.get(instanceId);
    machine?.cluster.setNodeReady(machine.name, 'Unknown');
  }

  /** Chaos undone: the machine powers on and boots; its node is Ready once it is up, unless the machine is broken. */
  powerOn(instanceId: string): void {
    const instance = this.instances.get(instanceId);
    if (instance?.state !== 'stopped') return;
    instance.state = 'running';
    const machine = this.byInstance.get(instanceId);
    if (machine === undefined) return;
    setTimeout(() => {
      if (!machine.broken && this.byInstance.get(instanceId) === machine) machine.cluster.setNodeReady(machine.name, 'True');
    }, this.bootMs).unref();
  }

  /** Every instance of a cluster, with the node it runs (absent until it joined). */
  instancesOfCluster(clusterId: string): (SandboxInstance & { nodeName?: string })[] {
    return [...this.instances.values()]
      .filter((instance) => instance.clusterId === clusterId)
      .map((instance) => {
        const nodeName = this.byInstance.get(instance.instanceId)?.name;
        return nodeName === undefined ? instance : { ...instance, nodeName };
      });
  }

  /** Chaos: the machine fails in a way a reboot does not fix; its node goes NotReady and stays so. */
  breakMachine(instanceId: string): void {
    const machine = this.byInstance.get(instanceId);
    if (machine === undefined) return;
    machine.broken = true;
    machine.cluster.setNodeReady(machine.name, 'False');
  }

  /**
   * EC2 RebootInstances: the machine restarts, and its kubelet reports Ready once it is up, unless the machine is
   * broken. 'missing' for an instance EC2 does not have there, 'not-running' for one that is stopped or terminated.
   */
  reboot(scope: AwsScope, instanceId: string): 'rebooting' | 'missing' | 'not-running' {
    const instance = this.instances.get(instanceId);
    if (instance === undefined || instance.scope.accountId !== scope.accountId || instance.scope.region !== scope.region) return 'missing';
    if (instance.state !== 'running') return 'not-running';
    const machine = this.byInstance.get(instanceId);
    if (machine !== undefined) {
      machine.cluster.setNodeReady(machine.name, 'Unknown');
      setTimeout(() => {
        if (!machine.broken && this.byInstance.get(instanceId) === machine) machine.cluster.setNodeReady(machine.name, 'True');
      }, this.bootMs).unref();
    }
    return 'rebooting';
  }

  /** An Auto Scaling group's bounds and desired capacity, as DescribeAutoScalingGroups reports them. */
  capacityOf(scope: AwsScope, group: string): { min: number; max: number; desired: number } | undefined {
    const launch = this.groups.get(group);
    if (launch === undefined || launch.scope.accountId !== scope.accountId || launch.scope.region !== scope.region) return undefined;
    return { min: launch.min, max: launch.max, desired: launch.desired };
  }

  /** The instances of Auto Scaling groups, in an account and region. */
  instancesOfGroups(scope: AwsScope, names: readonly string[]): SandboxInstance[] {
    return [...this.instances.values()].filter(
      (instance) => names.includes(instance.autoScalingGroup) && instance.scope.accountId === scope.accountId && instance.scope.region === scope.region && instance.state !== 'terminated',
    );
  }

  /** Instances by id, in an account and region (others are not there, as EC2 would answer). */
  describeInstances(scope: AwsScope, ids: readonly string[]): SandboxInstance[] {
    return ids.flatMap((id) => {
      const instance = this.instances.get(id);
      return instance !== undefined && instance.scope.accountId === scope.accountId && instance.scope.region === scope.region ? [instance] : [];
    });
  }

  /** Whether SSM knows the instance: its agent runs and registered with the instance role (else SendCommand refuses it). */
  managed(scope: AwsScope, instanceId: string): boolean {
    const machine = this.byInstance.get(instanceId);
    return machine !== undefined && machine.ssmManaged && machine.scope.accountId === scope.accountId && machine.scope.region === scope.region;
  }

  /**
   * The etcd member script on a control plane machine, `remove <node name | -> [<address>]` or `prune-learners
   * <address>...`: etcdctl through this machine's etcd, which strict reconfiguration guards. `member list` shows a
   * member's name only once its etcd has started (etcd-io/etcd@v3.6.6 etcdctl/ctlv3/command/printer.go
   * makeMemberListTable, "unstarted" otherwise), so a learner whose machine never started it is found by its peer URL
   * alone.
   */
  private etcdMemberCommand(instanceId: string, machine: Machine, args: readonly string[]): { ok: boolean; output: string } {
    const [verb, name, address] = args;
    const usage = { ok: false, output: `usage: ${ETCD_MEMBER_SCRIPT} remove <node name | -> [<address>] | prune-learners <address>...` };
    const pruning = verb === 'prune-learners' && args.length > 1;
    if (!pruning && (verb !== 'remove' || name === undefined || (name === '-' && address === undefined))) return usage;
    const state = this.controlPlaneOf(machine.clusterId);
    const members = [...state.etcd.keys()];
    const healthy = this.healthyMembers(machine.clusterId);
    if (![...state.etcd.values()].includes(instanceId) || machine.broken) return { ok: false, output: 'etcd is not running on this machine' };
    // etcdctl runs in the etcd container through `crictl exec`, which is `runc exec`: runc's init again.
    const execRefused = refusedContainerStart(machine.cluster, ETCDCTL_IN_ETCD, 'exec');
    if (execRefused !== undefined) return { ok: false, output: `crictl exec: ${execRefused}` };
    const peerUrl = address === undefined ? undefined : `https://${address}:${ETCD_PEER_PORT}`;
    const named = (member: string) => name !== '-' && member === name;
    // A learner does not vote: etcd removes it without a quorum check (etcd-io/etcd@v3.6.6 server.go mayRemoveMember).
    const learner = state.learner;
    if (pruning) {
      // Every voting member here started; the learner goes, started or not, unless a machine kept has its address.
      const kept = args.slice(1).map((keptAddress) => `https://${keptAddress}:${ETCD_PEER_PORT}`);
      if (learner === undefined || kept.includes(learner.peerUrl)) return { ok: true, output: 'no etcd learner outside the machines kept' };
      state.learner = undefined;
      if (this.instances.get(learner.instanceId)?.state === 'running') state.removedLearners.add(learner.instanceId);
      return { ok: true, output: `Member ${learner.member} removed from cluster` };
    }
    if (learner !== undefined && ((named(learner.member) && this.learnerStarted(learner)) || learner.peerUrl === peerUrl)) {
      state.learner = undefined;
      // Its machine's kubeadm, if it still runs, finds no member to promote.
      if (this.instances.get(learner.instanceId)?.state === 'running') state.removedLearners.add(learner.instanceId);
      return { ok: true, output: `Member ${learner.member} removed from cluster` };
    }
    const member = members.find((candidate) => {
      const owner = this.instances.get(state.etcd.get(candidate) ?? '');
      return named(candidate) || (peerUrl !== undefined && owner !== undefined && `https://${owner.privateIp}:${ETCD_PEER_PORT}` === peerUrl);
    });
    if (member === undefined) return { ok: true, output: `${[...(name === '-' ? [] : [name]), ...(peerUrl === undefined ? [] : [peerUrl])].join(' or ')} is not an etcd member` };
    if (!this.hasQuorum(machine.clusterId, members)) return { ok: false, output: 'Error: context deadline exceeded (etcdserver: request timed out: no quorum)' };
    const remaining = members.filter((candidate) => candidate !== member);
    if (healthy.filter((candidate) => remaining.includes(candidate)).length <= remaining.length / 2) {
      return { ok: false, output: 'Error: etcdserver: re-configuration failed due to not enough started members' };
    }
    state.etcd.delete(member);
    this.recordMemberChange(machine.clusterId, 'remove', member);
    return { ok: true, output: `Member ${member} removed from cluster` };
  }

  /** What the SSM agent on the instance does with an AWS-RunShellScript command. */
  run(scope: AwsScope, instanceId: string, commands: readonly string[]): Promise<{ ok: boolean; output: string }> {
    const machine = this.byInstance.get(instanceId);
    if (machine === undefined || machine.scope.accountId !== scope.accountId || machine.scope.region !== scope.region) {
      return Promise.resolve({ ok: false, output: `instance ${instanceId} is not running in ${scope.accountId}/${scope.region}` });
    }
    const [script, verb, argument, ...rest] = (commands[0] ?? '').split(' ');
    // A script the machine's user data never wrote is not there to run.
    if (script === undefined || !machine.scripts.includes(script)) return Promise.resolve({ ok: false, output: `${script ?? ''}: No such file or directory` });
    if (script === ETCD_MEMBER_SCRIPT && machine.role === 'control-plane') return Promise.resolve(this.etcdMemberCommand(instanceId, machine, [verb, argument, ...rest].filter((word) => word !== undefined)));
    if (script === ADMISSION_CONFIG_SCRIPT && machine.role === 'control-plane') return Promise.resolve(this.admissionConfigCommand(machine, verb, argument));
    if (script !== ENCRYPTION_CONFIG_SCRIPT || machine.role !== 'control-plane') {
      return Promise.resolve({ ok: false, output: `${script}: command not found` });
    }
    const config = verb === 'write' && argument !== undefined ? this.readSecret(machine.scope, argument) : machine.encryptionConfig;
    const fault = this.failingCommands.find((candidate) => candidate.verb === verb && candidate.remaining > 0 && this.targets(candidate, config));
    if (fault !== undefined) {
      fault.remaining -= 1;
      return Promise.resolve({ ok: false, output: `injected fault: ${verb} failed on ${machine.name}` });
    }
    if (verb === 'write' && argument !== undefined) {
      if (config === undefined) return Promise.resolve({ ok: false, output: `ParameterNotFound: ${argument}` });
      machine.encryptionConfig = config;
      return Promise.resolve({ ok: true, output: '' });
    }
    if (verb === 'restart') return Promise.resolve(this.restartApiServer(machine));
    return Promise.resolve({ ok: false, output: `usage: ${ENCRYPTION_CONFIG_SCRIPT} write <parameter> | restart` });
  }

  /**
   * Kiln's admission configuration script: `write <parameter>` puts the parameter's AdmissionConfiguration at
   * PATHS.admissionConfig on the machine's disk, which the running API server does not read again; `restart` restarts
   * the API server, which does. Injected faults hit it as they hit the encryption configuration's script.
   */
  private admissionConfigCommand(machine: Machine, verb: string | undefined, argument: string | undefined): { ok: boolean; output: string } {
    const written = verb === 'write' && argument !== undefined ? this.readSecret(machine.scope, argument) : undefined;
    const fault = this.failingCommands.find((candidate) => candidate.verb === verb && candidate.remaining > 0 && this.targets(candidate, verb === 'write' ? written : machine.encryptionConfig));
    if (fault !== undefined) {
      fault.remaining -= 1;
      return { ok: false, output: `injected fault: ${verb ?? ''} failed on ${machine.name}` };
    }
    if (verb === 'write' && argument !== undefined) {
      if (written === undefined) return { ok: false, output: `ParameterNotFound: ${argument}` };
      machine.apiServerAdmission?.files.set(PATHS.admissionConfig, written);
      return { ok: true, output: '' };
    }
    if (verb === 'restart') return this.restartApiServer(machine);
    return { ok: false, output: `usage: ${ADMISSION_CONFIG_SCRIPT} write <parameter> | restart` };
  }

  /** A restart of the machine's kube-apiserver: it reads its configuration files again, every one of them. */
  private restartApiServer(machine: Machine): { ok: boolean; output: string } {
    // The kubelet starts the kube-apiserver static pod again through runc; if runc's init dies, it stays down.
    machine.apiServerStopped = refusedContainerStart(machine.cluster, STATIC_POD_CONTAINERS.kubeApiServer, 'create');
    this.serveControlPlane(machine.clusterId, machine.cluster);
    if (machine.apiServerStopped !== undefined) return { ok: false, output: `kube-apiserver did not become ready: ${machine.apiServerStopped}` };
    if (machine.encryptionConfig !== undefined) {
      try {
        machine.cluster.setEncryptionConfiguration(parse(machine.encryptionConfig) as KubeObject, this.pluginsOn(machine.scope, machine.clusterId, machine.kmsPluginImage));
      } catch (error) {
        return { ok: false, output: `kube-apiserver did not become ready: ${error instanceof Error ? error.message : String(error)}` };
      }
    }
    const admission = this.loadAdmissionConfiguration(machine.cluster, machine.apiServerAdmission);
    if (admission !== undefined) return { ok: false, output: admission.replace('did not start', 'did not become ready') };
    return { ok: true, output: 'kube-apiserver ready' };
  }
}
