import { randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import { ENCRYPTION_CONFIG_SCRIPT, machineSecretPath } from '#bootstrap';
import type { ClusterSpec } from '#core';
import type { KubeObject, SandboxCluster } from './kube/index.ts';

const JOIN_WAIT_MS = 30 * 60_000;

interface Machine {
  clusterId: string;
  cluster: SandboxCluster;
  name: string;
  role: 'control-plane' | 'worker';
  /** The EncryptionConfiguration on this machine's disk (control plane only). */
  encryptionConfig?: string;
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
  private failingCommands: { verb: string; remaining: number }[] = [];

  constructor(
    private readonly readSecret: (name: string) => string | undefined,
    private readonly bootMs: number,
  ) {}

  boot(clusterId: string, cluster: SandboxCluster, spec: ClusterSpec, alive: () => boolean): void {
    const zone = `${spec.region}a`;
    const machines = [
      ...Array.from({ length: spec.controlPlane.replicas }, (_, index) => ({ name: `control-plane-${index}`, role: 'control-plane' as const })),
      ...spec.nodePools.flatMap((pool) =>
        Array.from({ length: pool.size }, (_, index) => ({ name: `${pool.name}-${index}`, role: 'worker' as const, pool: pool.name, labels: pool.labels, taints: pool.taints })),
      ),
    ].map((machine) => ({ ...machine, providerID: `aws:///${zone}/i-${randomBytes(9).toString('hex').slice(0, 17)}` }));

    const deadline = Date.now() + JOIN_WAIT_MS;
    const waitForJoinMaterial = setInterval(() => {
      if (Date.now() > deadline || !alive()) {
        clearInterval(waitForJoinMaterial);
        return;
      }
      const joinable = (['control-plane', 'worker'] as const).every((role) => this.readSecret(machineSecretPath(clusterId, role, 'join-token')) !== undefined);
      if (!joinable) return;
      clearInterval(waitForJoinMaterial);
      const encryptionConfig = this.readSecret(machineSecretPath(clusterId, 'control-plane', 'encryption-config'));
      if (encryptionConfig !== undefined) cluster.setEncryptionConfiguration(parse(encryptionConfig) as KubeObject);
      for (const machine of machines) {
        this.byInstance.set(machine.providerID.split('/').at(-1) ?? '', {
          clusterId,
          cluster,
          name: machine.name,
          role: machine.role,
          ...(machine.role === 'control-plane' && encryptionConfig !== undefined ? { encryptionConfig } : {}),
        });
        cluster.registerNode({ ...machine, ready: false });
        setTimeout(() => {
          // The machine may be gone already (cluster deleted while booting).
          if (alive() && cluster.objects({ kind: 'Node', name: machine.name }).length > 0) cluster.setNodeReady(machine.name, 'True');
        }, this.bootMs).unref();
      }
    }, 50);
    waitForJoinMaterial.unref();
  }

  /** Fault injection: the next `times` commands with this verb (write, restart) fail as a broken machine would. */
  failCommands(verb: 'write' | 'restart', times: number): void {
    this.failingCommands.push({ verb, remaining: times });
  }

  clearCommandFaults(): void {
    this.failingCommands = [];
  }

  /** Injected command faults not yet hit. */
  unusedCommandFaults(): number {
    return this.failingCommands.reduce((sum, fault) => sum + fault.remaining, 0);
  }

  forget(clusterId: string): void {
    for (const [instanceId, machine] of this.byInstance) if (machine.clusterId === clusterId) this.byInstance.delete(instanceId);
  }

  /** What the SSM agent on the instance does with an AWS-RunShellScript command. */
  run(instanceId: string, commands: readonly string[]): Promise<{ ok: boolean; output: string }> {
    const machine = this.byInstance.get(instanceId);
    if (machine === undefined) return Promise.resolve({ ok: false, output: `instance ${instanceId} is not running` });
    const [script, verb, argument] = (commands[0] ?? '').split(' ');
    if (script !== ENCRYPTION_CONFIG_SCRIPT || machine.role !== 'control-plane') {
      return Promise.resolve({ ok: false, output: `${script ?? ''}: command not found` });
    }
    const fault = this.failingCommands.find((candidate) => candidate.verb === verb && candidate.remaining > 0);
    if (fault !== undefined) {
      fault.remaining -= 1;
      return Promise.resolve({ ok: false, output: `injected fault: ${verb} failed on ${machine.name}` });
    }
    if (verb === 'write' && argument !== undefined) {
      const config = this.readSecret(argument);
      if (config === undefined) return Promise.resolve({ ok: false, output: `ParameterNotFound: ${argument}` });
      machine.encryptionConfig = config;
      return Promise.resolve({ ok: true, output: '' });
    }
    if (verb === 'restart') {
      if (machine.encryptionConfig !== undefined) machine.cluster.setEncryptionConfiguration(parse(machine.encryptionConfig) as KubeObject);
      return Promise.resolve({ ok: true, output: 'kube-apiserver ready' });
    }
    return Promise.resolve({ ok: false, output: `usage: ${ENCRYPTION_CONFIG_SCRIPT} write <parameter> | restart` });
  }
}
