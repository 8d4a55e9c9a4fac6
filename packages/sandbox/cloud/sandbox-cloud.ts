import { StepError } from '#core';
import {
  ClusterProgramInput,
  DEFAULT_PROJECT_NAME,
  INFRASTRUCTURE_STEP,
  InfrastructureOutputs,
  resourcePrefix,
  stackName,
  type ClusterRef,
  type InfrastructureDriver,
  engineStepError,
} from '#infra';
import { accountOfRole } from '../iam.ts';
import { SandboxAccountRoles } from './account-roles.ts';
import type { RecordedResource } from './mocks.ts';
import { RunnerProcess } from './runner-process.ts';

export const SANDBOX_ACCOUNT_ID = '123456789012';

export interface ProvisionedCluster extends ClusterRef {
  resources: RecordedResource[];
  outputs: InfrastructureOutputs;
  input: ClusterProgramInput;
}

export interface SandboxCloudOptions {
  /** The DNS name the API load balancer gets; point it at a local API server. Default: an AWS-looking ELB name. */
  apiHostFor?: (clusterId: string) => Promise<string> | string;
  /**
   * Rewrites the endpoint the program exported (`https://<apiHost>:6443`),
   * e.g. to the http URL of a sandbox Kubernetes API. Applied before the
   * outputs are validated, recorded, handed to `onProvisioned` and returned.
   */
  apiEndpointFor?: (clusterId: string, apiHost: string) => Promise<string> | string;
  /** Runs after every successful `up`; the sandbox boots machines here. Its errors fail the `up`. */
  onProvisioned?: (cluster: ProvisionedCluster) => Promise<void> | void;
  /**
   * Runs after every `destroy`, also for clusters the cloud does not know, so a retried teardown completes;
   * `outputs` are what the destroyed stack had exported, when it existed.
   */
  onDestroyed?: (ref: ClusterRef & { outputs?: InfrastructureOutputs }) => Promise<void> | void;
  /** Kiln's own account, where clusters without `account` are built. */
  accountId?: string;
  /**
   * What STS answers the Pulumi AWS provider, which assumes the order's role with its external ID (the driver's
   * `aws:assumeRoles` config) before it declares anything: throws as STS refuses. Without it every role is assumed.
   */
  assumeRole?: (account: { roleArn: string; externalId?: string | undefined }, sessionName: string) => void;
  /**
   * IAM roles (ARNs, any account) that exist before Kiln's first run, besides Kiln's provisioner role and the tenants'
   * roles Kiln assumes. Default: none, a fresh account, where even Auto Scaling's service-linked role does not exist yet.
   */
  existingRoles?: readonly string[];
  /** Upper bound for one program run, cold start included. */
  runTimeoutMs?: number;
  /** Keep one runner process loaded ahead of the next run (default true). */
  warmSpare?: boolean;
  /** Debian's public images (by name) deregistered before the runs: EC2 no longer lists them. */
  withdrawnImages?: readonly string[];
}

export interface RunTiming {
  clusterId: string;
  /** Whether the runner had finished loading Pulumi before the run began. */
  warm: boolean;
  durationMs: number;
}

type Operation = 'up' | 'destroy';

/**
 * The local stand-in for AWS: runs the real cluster program under Pulumi
 * mocks, one child process per run, and remembers what each cluster declared.
 */
export class SandboxCloud implements InfrastructureDriver {
  private readonly options: SandboxCloudOptions;
  private readonly clusters = new Map<string, ProvisionedCluster>();
  private readonly inFlight = new Set<string>();
  private readonly running = new Set<RunnerProcess>();
  private readonly faults: { operation: Operation; retriable: boolean; message: string }[] = [];
  /** IAM's roles outlive any one run: a role one cluster's run creates exists for every later run in its account. */
  private readonly roles: SandboxAccountRoles;
  private spare: RunnerProcess | undefined;
  private closed = false;
  private lastTiming: RunTiming | undefined;

  constructor(options: SandboxCloudOptions = {}) {
    this.options = options;
    // getCallerIdentity in the mocks answers as this role: the program runs as it in Kiln's account.
    this.roles = new SandboxAccountRoles([`arn:aws:iam::${options.accountId ?? SANDBOX_ACCOUNT_ID}:role/kiln-provisioner`, ...(options.existingRoles ?? [])]);
    this.replenish();
  }

  async up(rawInput: ClusterProgramInput): Promise<InfrastructureOutputs> {
    const parsed = ClusterProgramInput.safeParse(rawInput);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`).join('; ');
      throw new StepError(INFRASTRUCTURE_STEP, `invalid cluster program input: ${detail}`, false);
    }
    const input = parsed.data;
    const stack = stackName(input);
    // A tenant's role exists: Kiln assumes it to run the program in the tenant's account, if its trust policy lets it.
    if (input.spec.account !== undefined) {
      this.roles.add({ arn: input.spec.account.roleArn });
      try {
        this.options.assumeRole?.(input.spec.account, `kiln-${input.clusterId}`);
      } catch (error) {
        // What the AutomationDriver makes of the engine's error when the AWS provider cannot take the role.
        throw engineStepError(new Error(`error: the AWS provider could not assume ${input.spec.account.roleArn}: ${error instanceof Error ? error.message : String(error)}`), `pulumi up of stack ${stack} failed`);
      }
    }
    return this.exclusive(input.clusterId, 'up', async () => {
      const apiHost = await (this.options.apiHostFor ?? defaultApiHost(input.spec.region))(input.clusterId);
      const runner = this.takeRunner();
      const warm = runner.warm;
      const started = performance.now();
      const result = await runner
        .run(
          {
            kind: 'run',
            input,
            project: DEFAULT_PROJECT_NAME,
            stack,
            // As the production driver does, the program runs in the tenant's account when the order names one.
            context: { clusterId: input.clusterId, region: input.spec.region, accountId: this.accountOf(input.spec), apiHost, stack, roles: this.roles.all(), withdrawnImages: this.options.withdrawnImages ?? [] },
          },
          this.options.runTimeoutMs ?? 120_000,
          (role) => {
            this.roles.add(role);
          },
        )
        .finally(() => this.running.delete(runner));
      this.lastTiming = { clusterId: input.clusterId, warm, durationMs: performance.now() - started };

      const duplicate = duplicateIngressRule(result.resources);
      if (duplicate !== undefined) throw new StepError(INFRASTRUCTURE_STEP, duplicate, false);
      const exported = InfrastructureOutputs.safeParse(result.outputs);
      if (!exported.success) {
        throw new StepError(INFRASTRUCTURE_STEP, `stack ${stack} exported unexpected outputs: ${exported.error.message.slice(0, 300)}`, false);
      }
      const endpoint = this.options.apiEndpointFor ? await this.options.apiEndpointFor(input.clusterId, exported.data.apiHost) : exported.data.apiEndpoint;
      const outputs = InfrastructureOutputs.parse({ ...exported.data, apiEndpoint: endpoint });
      const cluster: ProvisionedCluster = { tenantId: input.tenantId, clusterId: input.clusterId, resources: result.resources, outputs, input };
      this.clusters.set(input.clusterId, cluster);
      await this.options.onProvisioned?.(cluster);
      return outputs;
    });
  }

  async destroy(ref: ClusterRef): Promise<void> {
    // Ids that could not name a stack fail here as they would in production.
    stackName(ref);
    await this.exclusive(ref.clusterId, 'destroy', async () => {
      // Another tenant's cluster id names a different stack, which does not exist.
      const existing = this.clusters.get(ref.clusterId);
      const destroyed = existing?.tenantId === ref.tenantId ? existing : undefined;
      if (destroyed !== undefined) this.clusters.delete(ref.clusterId);
      // Destroying a stack deletes the roles it declared (and nothing AWS created on its own); another tenant's id names another stack.
      this.roles.deleteDeclaredBy(stackName(ref));
      await this.options.onDestroyed?.({ tenantId: ref.tenantId, clusterId: ref.clusterId, ...(destroyed === undefined ? {} : { outputs: destroyed.outputs }) });
    });
  }

  /** The IAM roles that exist now, in every account. */
  iamRoles(): string[] {
    return this.roles.all().map((role) => role.arn);
  }

  /** Every resource the cluster's last `up` declared; empty once destroyed. */
  resources(clusterId: string): RecordedResource[] {
    return [...(this.clusters.get(clusterId)?.resources ?? [])];
  }

  outputs(clusterId: string): InfrastructureOutputs | undefined {
    return this.clusters.get(clusterId)?.outputs;
  }

  /** The next `up` or `destroy` fails with this error before touching anything, as a flaky AWS would. */
  failNext(operation: Operation, options: { retriable: boolean; message?: string }): void {
    this.faults.push({ operation, retriable: options.retriable, message: options.message ?? `injected ${operation} failure` });
  }

  /** How long the most recent program run took, and whether its runner was warm. */
  get lastRun(): RunTiming | undefined {
    return this.lastTiming;
  }

  close(): Promise<void> {
    this.closed = true;
    this.spare?.kill();
    this.spare = undefined;
    for (const runner of this.running) runner.kill();
    this.running.clear();
    return Promise.resolve();
  }

  private accountOf(spec: ClusterProgramInput['spec']): string {
    return (spec.account === undefined ? undefined : accountOfRole(spec.account.roleArn)) ?? this.options.accountId ?? SANDBOX_ACCOUNT_ID;
  }

  private async exclusive<T>(clusterId: string, operation: Operation, work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('the sandbox cloud is closed');
    // The S3 backend's lock answers a concurrent update the same way.
    if (this.inFlight.has(clusterId)) {
      throw new StepError(INFRASTRUCTURE_STEP, `${operation}: another update of this stack is in progress`, true);
    }
    const fault = this.faults.findIndex((candidate) => candidate.operation === operation);
    if (fault >= 0) {
      const [injected] = this.faults.splice(fault, 1);
      if (injected) throw new StepError(INFRASTRUCTURE_STEP, injected.message, injected.retriable);
    }
    this.inFlight.add(clusterId);
    try {
      return await work();
    } finally {
      this.inFlight.delete(clusterId);
    }
  }

  private takeRunner(): RunnerProcess {
    if (this.closed) throw new Error('the sandbox cloud is closed');
    const spare = this.spare?.usable ? this.spare : undefined;
    this.spare = undefined;
    const runner = spare ?? new RunnerProcess();
    this.running.add(runner);
    this.replenish();
    return runner;
  }

  private replenish(): void {
    if (this.closed || this.options.warmSpare === false || this.spare?.usable) return;
    this.spare = new RunnerProcess();
  }
}

/**
 * EC2 refuses an inbound rule a security group already has, the same protocol, ports and source, with
 * InvalidPermission.Duplicate (docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), whatever the
 * rule's description. The message, if the stack repeats one.
 */
function duplicateIngressRule(resources: readonly RecordedResource[]): string | undefined {
  const seen = new Map<string, string>();
  for (const rule of resources.filter((resource) => resource.type === 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule')) {
    const { securityGroupId, ipProtocol, fromPort, toPort, cidrIpv4, referencedSecurityGroupId } = rule.inputs;
    const source = String(cidrIpv4 ?? referencedSecurityGroupId);
    const key = [securityGroupId, ipProtocol, fromPort, toPort, source].map(String).join(' ');
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      return `creating ${rule.name}: InvalidPermission.Duplicate: the specified rule "peer: ${source}, ${String(ipProtocol).toUpperCase()}, from port: ${String(fromPort)}, to port: ${String(toPort)}, ALLOW" already exists (as ${earlier})`;
    }
    seen.set(key, rule.name);
  }
  return undefined;
}

function defaultApiHost(region: string): (clusterId: string) => string {
  return (clusterId) => `${resourcePrefix(clusterId)}-api.elb.${region}.amazonaws.com`;
}
