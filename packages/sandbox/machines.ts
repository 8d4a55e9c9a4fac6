import { randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import { ENCRYPTION_CONFIG_SCRIPT, KMS_PLUGIN_ENDPOINT, machineSecretPath } from '#bootstrap';
import { type ClusterSpec, isRecord } from '#core';
import { type AwsScope, accountOfRole } from './iam.ts';
import type { KmsPlugin, KubeObject, SandboxCluster } from './kube/index.ts';

const JOIN_WAIT_MS = 30 * 60_000;

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
}

/** A machine with none of it, for callers that boot no rendered configuration. */
export const BARE_MACHINE: MachineImage = { providerIdAtBoot: false, ssmManaged: false };

/** An EC2 instance of a cluster's Auto Scaling group, as EC2 and Auto Scaling describe it. */
export interface SandboxInstance {
  instanceId: string;
  clusterId: string;
  scope: AwsScope;
  autoScalingGroup: string;
  zone: string;
  launchedAt: Date;
  state: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';
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
  /** A fault that a reboot does not fix (failed disk, kernel that no longer boots). */
  broken: boolean;
}

/**
 * The sandbox's machines: what cloud-init, kubeadm and the SSM agent do on
 * each one. A machine waits for its join material in the secret store
 * (published by the bootstrap step); then the control plane comes up with the
 * EncryptionConfiguration from there and every kubelet registers its node,
 * which turns Ready once the kubelet is up. Run Commands sent to a machine
 * run its Kiln scripts here. The sandbox has one API server per cluster, so
 * restarting any control plane machine loads that machine's configuration.
 */
export class SandboxMachines {
  private readonly byInstance = new Map<string, Machine>();
  private readonly instances = new Map<string, SandboxInstance>();
  private failingCommands: CommandFault[] = [];

  constructor(
    private readonly readSecret: (scope: AwsScope, name: string) => string | undefined,
    private readonly bootMs: number,
    /** Kiln's own account, where clusters without `account` in their order run. */
    private readonly homeAccountId = '000000000000',
    /** What the aws-encryption-provider static pod does on a control plane machine, with the machine's role. */
    private readonly kmsPlugin?: (scope: AwsScope, keyArn: string) => KmsPlugin,
  ) {}

  /**
   * The KMS plugins listening on a control plane machine: the aws-encryption-provider static pod, when the machine's
   * boot found a key ARN for it in the secret store.
   */
  private pluginsOn(scope: AwsScope, clusterId: string): Map<string, KmsPlugin> {
    const keyArn = this.readSecret(scope, machineSecretPath(clusterId, 'control-plane', 'kms-key-arn'));
    const plugins = new Map<string, KmsPlugin>();
    if (keyArn !== undefined && this.kmsPlugin !== undefined) plugins.set(KMS_PLUGIN_ENDPOINT, this.kmsPlugin(scope, keyArn));
    return plugins;
  }

  boot(
    clusterId: string,
    cluster: SandboxCluster,
    spec: ClusterSpec,
    alive: () => boolean,
    images: { controlPlane: MachineImage; pools: Readonly<Record<string, MachineImage>> },
    groups: { controlPlane: string; pools: Readonly<Record<string, string>> } = { controlPlane: `${clusterId}-cp`, pools: {} },
  ): void {
    // Auto Scaling spreads each group over the plan's zones.
    const zoneOf = (index: number) => `${spec.region}${['a', 'b', 'c'][index % 3] ?? 'a'}`;
    // The instances run in the cluster's region and, with `account`, in the tenant's account: they see only the parameters there.
    const scope: AwsScope = { accountId: (spec.account === undefined ? undefined : accountOfRole(spec.account.roleArn)) ?? this.homeAccountId, region: spec.region };
    const machines = [
      ...Array.from({ length: spec.controlPlane.replicas }, (_, index) => ({ name: `control-plane-${index}`, role: 'control-plane' as const, zone: zoneOf(index), image: images.controlPlane })),
      ...spec.nodePools.flatMap((pool) =>
        Array.from({ length: pool.size }, (_, index) => ({
          name: `${pool.name}-${index}`,
          role: 'worker' as const,
          zone: zoneOf(index),
          image: images.pools[pool.name] ?? BARE_MACHINE,
          pool: pool.name,
          labels: pool.labels,
          taints: pool.taints,
        })),
      ),
    ].map((machine) => ({ ...machine, instanceId: `i-${randomBytes(9).toString('hex').slice(0, 17)}` }));
    const launchedAt = new Date();
    for (const machine of machines) {
      const autoScalingGroup = machine.role === 'control-plane' ? groups.controlPlane : (groups.pools[machine.pool] ?? `${clusterId}-pool-${machine.pool}`);
      this.instances.set(machine.instanceId, { instanceId: machine.instanceId, clusterId, scope, autoScalingGroup, zone: machine.zone, launchedAt, state: 'running' });
    }

    const deadline = Date.now() + JOIN_WAIT_MS;
    const waitForJoinMaterial = setInterval(() => {
      if (Date.now() > deadline || !alive()) {
        clearInterval(waitForJoinMaterial);
        return;
      }
      const joinable = (['control-plane', 'worker'] as const).every((role) => this.readSecret(scope, machineSecretPath(clusterId, role, 'join-token')) !== undefined);
      if (!joinable) return;
      clearInterval(waitForJoinMaterial);
      const encryptionConfig = this.readSecret(scope, machineSecretPath(clusterId, 'control-plane', 'encryption-config'));
      if (encryptionConfig !== undefined) {
        try {
          cluster.setEncryptionConfiguration(parse(encryptionConfig) as KubeObject, this.pluginsOn(scope, clusterId));
        } catch {
          // The API server does not start with a configuration it cannot load (a KMS plugin that is not there): no node joins.
          return;
        }
      }
      for (const { image, instanceId, zone, ...machine } of machines) {
        this.byInstance.set(instanceId, {
          clusterId,
          ssmManaged: image.ssmManaged,
          scope,
          cluster,
          name: machine.name,
          role: machine.role,
          broken: false,
          ...(machine.role === 'control-plane' && encryptionConfig !== undefined ? { encryptionConfig } : {}),
        });
        // A kubelet knows its provider ID only when told; nothing else in a kubeadm cluster sets it.
        cluster.registerNode({ ...machine, ...(image.providerIdAtBoot ? { providerID: `aws:///${zone}/${instanceId}` } : {}), ready: false });
        setTimeout(() => {
          // The machine may be gone already (cluster deleted while booting).
          if (alive() && cluster.objects({ kind: 'Node', name: machine.name }).length > 0) cluster.setNodeReady(machine.name, 'True');
        }, this.bootMs).unref();
      }
    }, 50);
    waitForJoinMaterial.unref();
  }

  /**
   * Fault injection: the next `times` commands with this verb (write, restart), on any control plane machine, fail as
   * a broken machine would; `target` narrows them to commands on a given config. A failed write leaves the disk as
   * it was; a failed restart reports the API server unhealthy and leaves it running the config it had.
   */
  failCommands(verb: MachineCommandVerb, times: number, target: CommandFaultTarget = {}): void {
    this.failingCommands.push({ ...target, verb, remaining: times });
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
    for (const [id, instance] of this.instances) if (instance.clusterId === clusterId) this.instances.delete(id);
    for (const [instanceId, machine] of this.byInstance) if (machine.clusterId === clusterId) this.byInstance.delete(instanceId);
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

  /** EC2 RebootInstances: the machine restarts, and its kubelet reports Ready once it is up, unless the machine is broken. */
  reboot(scope: AwsScope, instanceId: string): boolean {
    const instance = this.instances.get(instanceId);
    if (instance === undefined || instance.scope.accountId !== scope.accountId || instance.scope.region !== scope.region || instance.state !== 'running') return false;
    const machine = this.byInstance.get(instanceId);
    if (machine !== undefined) {
      machine.cluster.setNodeReady(machine.name, 'Unknown');
      setTimeout(() => {
        if (!machine.broken && this.byInstance.get(instanceId) === machine) machine.cluster.setNodeReady(machine.name, 'True');
      }, this.bootMs).unref();
    }
    return true;
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

  /** What the SSM agent on the instance does with an AWS-RunShellScript command. */
  run(scope: AwsScope, instanceId: string, commands: readonly string[]): Promise<{ ok: boolean; output: string }> {
    const machine = this.byInstance.get(instanceId);
    if (machine === undefined || machine.scope.accountId !== scope.accountId || machine.scope.region !== scope.region) {
      return Promise.resolve({ ok: false, output: `instance ${instanceId} is not running in ${scope.accountId}/${scope.region}` });
    }
    const [script, verb, argument] = (commands[0] ?? '').split(' ');
    if (script !== ENCRYPTION_CONFIG_SCRIPT || machine.role !== 'control-plane') {
      return Promise.resolve({ ok: false, output: `${script ?? ''}: command not found` });
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
    if (verb === 'restart') {
      if (machine.encryptionConfig !== undefined) {
        try {
          machine.cluster.setEncryptionConfiguration(parse(machine.encryptionConfig) as KubeObject, this.pluginsOn(machine.scope, machine.clusterId));
        } catch (error) {
          return Promise.resolve({ ok: false, output: `kube-apiserver did not become ready: ${error instanceof Error ? error.message : String(error)}` });
        }
      }
      return Promise.resolve({ ok: true, output: 'kube-apiserver ready' });
    }
    return Promise.resolve({ ok: false, output: `usage: ${ENCRYPTION_CONFIG_SCRIPT} write <parameter> | restart` });
  }
}
