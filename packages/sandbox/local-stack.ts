import './polyfills.ts';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, KMSClient, NotFoundException } from '@aws-sdk/client-kms';
import { serve } from '@hono/node-server';
import { type LogLevel, StepError, createLogger, sha256 } from '#core';
import { type KilnServices, checkKubernetesVersionSupport, createTenant, recoverOperations, reportUsage, startDueCertificateRenewals, startDueKubernetesUpgrades, startDueRotations } from '#services';
import { type StepServices, runInfrastructureContainer } from '#steps';
import { API_PORT } from '#infra';
import { type HealthPollServices, pollNodeHealth } from '#health';
import { type DispatchReport, type SendReport, SqsWebhookQueue, dispatchWebhooks, handleWebhookBatch } from '#webhooks';
import { SQSClient } from '@aws-sdk/client-sqs';
import { WORKFLOW_NAMES, renderWorkflow } from '#workflows';
import { cloudConfigProblems, installedKubernetesRelease, userDataText } from './cloud-init/validate.ts';
import { machineGroupsOf } from './machine-images.ts';
import { SandboxCloud } from './cloud/index.ts';
import { LOCAL_AWS_ENVIRONMENT, LOCAL_CREDENTIALS, LOCAL_REGION, connectLocalDynamoDb, ensureTable, startLocalDynamoDb } from './dynamodb.ts';
import { FaultInjector } from './faults.ts';
import { SandboxIam } from './iam.ts';
import { type KmsService, kmsV2Plugin, startKmsService } from './kms/index.ts';
import { LOAD_BALANCER_ADDRESS, type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { LOCAL_KMS_PLUGIN_IMAGE, SandboxContainerRegistry } from './container-registry.ts';
import { startHelmController } from './kube/helm-controller.ts';
import { SandboxMachines } from './machines.ts';
import { type SsmService, startSsmService } from './ssm/index.ts';
import { type SqsService, runEventSource, startSqsService } from './sqs/index.ts';
import { startEc2Service } from './ec2/index.ts';
import { type SandboxNetworkLoadBalancer, listenerSources, startNetworkLoadBalancer } from './elb/index.ts';
import { chaosRoutes } from './chaos.ts';
import { Hono } from 'hono';
import { type ExecutionView, startStepFunctionsService } from './stepfunctions/index.ts';
import { type StsService, startStsService } from './sts/index.ts';

const ACCOUNT_ID = '000000000000';
const SEALING_KEY_ALIAS = 'alias/kiln-local-sealing';
const functionArn = (name: string) => `arn:aws:lambda:${LOCAL_REGION}:${ACCOUNT_ID}:function:kiln-${name}`;
const INFRASTRUCTURE_TASK_DEFINITION = `arn:aws:ecs:${LOCAL_REGION}:${ACCOUNT_ID}:task-definition/kiln-infrastructure:1`;
/**
 * The public address every connection from this machine reaches a cluster's load balancer from: Kiln's functions'
 * egress in local mode, as the NAT gateways' addresses are in production (a documentation address, RFC 5737, outside
 * the range the sandbox's Elastic IPs come from).
 */
export const LOCAL_EGRESS_ADDRESS = '192.0.2.10';

/** Each Lambda-backed Task state, the function it invokes, and the module and export that handle it in production. */
const LAMBDA_TASKS = {
  Plan: { placeholder: 'PlanFunctionArn', name: 'plan', module: 'bookkeeping', exported: 'plan' },
  Bootstrap: { placeholder: 'BootstrapFunctionArn', name: 'bootstrap', module: 'bookkeeping', exported: 'bootstrap' },
  Network: { placeholder: 'NetworkFunctionArn', name: 'network', module: 'addons', exported: 'network' },
  WaitForControlPlane: { placeholder: 'WaitForControlPlaneFunctionArn', name: 'wait-for-control-plane', module: 'cluster-api', exported: 'waitForControlPlane' },
  WaitForWorkers: { placeholder: 'WaitForWorkersFunctionArn', name: 'wait-for-workers', module: 'cluster-api', exported: 'waitForWorkers' },
  Addons: { placeholder: 'AddonsFunctionArn', name: 'addons', module: 'addons', exported: 'addons' },
  Verify: { placeholder: 'VerifyFunctionArn', name: 'verify', module: 'addons', exported: 'verify' },
  MarkReady: { placeholder: 'MarkReadyFunctionArn', name: 'mark-ready', module: 'bookkeeping', exported: 'markReady' },
  MarkDeleted: { placeholder: 'MarkDeletedFunctionArn', name: 'mark-deleted', module: 'bookkeeping', exported: 'markDeleted' },
  RecordFailure: { placeholder: 'RecordFailureFunctionArn', name: 'record-failure', module: 'bookkeeping', exported: 'recordFailure' },
  AwaitInfrastructureSlot: { placeholder: 'AwaitInfrastructureSlotFunctionArn', name: 'await-infrastructure-slot', module: 'bookkeeping', exported: 'awaitInfrastructureSlot' },
  ReleaseInfrastructureSlot: { placeholder: 'ReleaseInfrastructureSlotFunctionArn', name: 'release-infrastructure-slot', module: 'bookkeeping', exported: 'releaseInfrastructureSlot' },
  RotateEncryptionKey: { placeholder: 'RotateEncryptionKeyFunctionArn', name: 'rotate-encryption-key', module: 'cluster-api', exported: 'rotateEncryptionKey' },
  Reboot: { placeholder: 'RemediateRebootFunctionArn', name: 'remediate-reboot', module: 'machines', exported: 'reboot' },
  Recover: { placeholder: 'RemediateRecoverFunctionArn', name: 'remediate-recover', module: 'machines', exported: 'recover' },
  Drain: { placeholder: 'RemediateDrainFunctionArn', name: 'remediate-drain', module: 'machines', exported: 'drain' },
  Replace: { placeholder: 'RemediateReplaceFunctionArn', name: 'remediate-replace', module: 'machines', exported: 'replace' },
  AwaitReplacement: { placeholder: 'RemediateAwaitReplacementFunctionArn', name: 'remediate-await-replacement', module: 'machines', exported: 'awaitReplacement' },
  RetireNode: { placeholder: 'RemediateRetireFunctionArn', name: 'remediate-retire', module: 'machines', exported: 'retire' },
  FinishRemediation: { placeholder: 'RemediateFinishFunctionArn', name: 'remediate-finish', module: 'machines', exported: 'finishRemediation' },
  RecordRemediationFailure: { placeholder: 'RemediateFailureFunctionArn', name: 'remediate-failure', module: 'machines', exported: 'recordRemediationFailure' },
  DrainNodes: { placeholder: 'UpdateDrainNodesFunctionArn', name: 'update-drain-nodes', module: 'machines', exported: 'drainNodes' },
  RemoveMachines: { placeholder: 'UpdateRemoveMachinesFunctionArn', name: 'update-remove-machines', module: 'machines', exported: 'removeMachines' },
  JoinToken: { placeholder: 'UpdateJoinTokenFunctionArn', name: 'update-join-token', module: 'machines', exported: 'joinToken' },
  AwaitNodes: { placeholder: 'UpdateAwaitNodesFunctionArn', name: 'update-await-nodes', module: 'machines', exported: 'awaitNodes' },
  RollMachines: { placeholder: 'UpdateRollMachinesFunctionArn', name: 'update-roll-machines', module: 'machines', exported: 'rollMachines' },
  RollControlPlane: { placeholder: 'UpdateRollControlPlaneFunctionArn', name: 'update-roll-control-plane', module: 'machines', exported: 'rollControlPlane' },
  ApplyPodSecurityDefaults: { placeholder: 'UpdatePodSecurityDefaultsFunctionArn', name: 'update-pod-security-defaults', module: 'cluster-api', exported: 'podSecurityDefaults' },
} as const;

type TaskModule = Record<string, ((event: unknown) => Promise<unknown>) | undefined>;

export interface LocalStackOptions {
  /** API port; 0 picks a free one. */
  port?: number;
  /** Keep DynamoDB's data here instead of in memory. */
  dataDir?: string;
  /** Use this running DynamoDB Local (with its own table) instead of starting one: a test run shares one JVM. */
  dynamoDbEndpoint?: string;
  adminToken?: string;
  /** Seconds between node polls while waiting for machines. */
  pollSeconds?: number;
  /** Scales Wait states and Retry backoff (1 = real seconds). */
  waitTimeScale?: number;
  /** How often the health poller runs (production: every minute); 0 leaves polling to the caller, as tests that move the clock do. */
  healthPollSeconds?: number;
  /**
   * How often the webhook dispatcher runs (production: every minute), with the senders taking from the queue as SQS
   * triggers them; 0 runs neither, and leaves webhooks to the caller (`webhooks.run`).
   */
  webhookDeliverySeconds?: number;
  /** Infrastructure tasks (Fargate) that may run at once, as the account's quota allows; 16 by default. */
  infrastructureTaskLimit?: number;
  /** Milliseconds a sandbox machine takes from launch to a Ready node. */
  machineBootMs?: number;
  logLevel?: LogLevel;
  /** Write `export KILN=…` lines for a shell to this file while the stack runs. */
  envFile?: string;
}

export interface LocalStack {
  url: string;
  adminToken: string;
  devTenant: { id: string; name: string; apiKey: string };
  /** The workflow steps' services (a superset of the API's), as the task functions build them. */
  services: StepServices;
  /** The health poller's services, as functions/health.ts builds them. */
  health: HealthPollServices;
  faults: FaultInjector;
  cloud: SandboxCloud;
  /** The KMS stand-in (keys of every account and region, fault injection). */
  kms: KmsService;
  /** Kiln's own AWS account: clusters without an account of their own are built in it. */
  accountId: string;
  /** The SSM stand-in: Parameter Store (with every version a parameter keeps) and Run Command (which instances got commands). */
  ssm: SsmService;
  /** The STS stand-in: which roles Kiln assumed, and which external IDs roles require. */
  sts: StsService;
  /** The sandbox machines (their boot, and what Run Commands do on them). */
  machines: SandboxMachines;
  /** The sandbox Kubernetes API of each provisioned cluster, by cluster id. */
  clusters: Map<string, SandboxCluster>;
  /** Each cluster's API load balancer (its endpoint), filtered by the security groups its stack declares, by cluster id. */
  apiLoadBalancers: Map<string, SandboxNetworkLoadBalancer>;
  /** Every workflow execution so far, oldest first, with the states it went through (the Step Functions stand-in's). */
  executions(): ExecutionView[];
  /** The webhook queue (SQS stand-in) and, for tests on a clock of their own, one dispatch and drain. */
  webhooks: {
    sqs: SqsService;
    queueUrl: string;
    deadLetterQueueUrl: string;
    /** Dispatches what is due at `now`, then sends from the queue until it is empty, on the same clock. */
    run(now?: Date): Promise<DispatchReport & SendReport>;
  };
  stop(): Promise<void>;
}

/** Wait states and Retry backoff locally run at a quarter of their real length. */
const DEFAULT_WAIT_TIME_SCALE = 0.25;

/** The webhook queue's names, and how often a message may be received before it goes to the dead-letter queue (as in sst.config.ts). */
const WEBHOOK_QUEUE = 'kiln-webhook-deliveries';
const WEBHOOK_DEAD_LETTER_QUEUE = 'kiln-webhook-deliveries-dlq';
const WEBHOOK_MAX_RECEIVES = 5;
/** Locally a message a sender took and dropped is back after 10 s (production: 6 minutes, the dispatcher's lease). */
const WEBHOOK_VISIBILITY_SECONDS = 10;

/**
 * Kiln's production code against local stand-ins: DynamoDB Local, a Step
 * Functions service running the workflow JSON, a KMS stand-in, the Pulumi
 * program under mocks, and a sandbox Kubernetes API per cluster. One stack
 * per process: the Lambda modules read their configuration from the
 * environment once, as they do in AWS.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const stopper of stoppers.reverse()) {
      await stopper().catch(() => undefined);
    }
  };
  try {
    if (options.dataDir !== undefined) mkdirSync(options.dataDir, { recursive: true });
    const dynamo =
      options.dynamoDbEndpoint === undefined
        ? await startLocalDynamoDb(options.dataDir === undefined ? {} : { dataDir: join(options.dataDir, 'dynamodb') })
        : connectLocalDynamoDb(options.dynamoDbEndpoint);
    stoppers.push(() => dynamo.close());
    // A DynamoDB Local of its own holds one table; a shared one a table per stack.
    const tableName = options.dynamoDbEndpoint === undefined ? 'kiln' : `kiln-${randomBytes(4).toString('hex')}`;
    await ensureTable(dynamo.client, tableName);

    // Kiln's credentials act in Kiln's account; STS credentials in the account of the role they assumed.
    const iam = new SandboxIam(ACCOUNT_ID, LOCAL_CREDENTIALS.accessKeyId);
    const sts = await startStsService(iam);
    stoppers.push(() => sts.close());
    // With a data directory the keys are kept there, so what they sealed (kubeconfig material, SSH keys, webhook
    // secrets) still opens after a restart; the sealing key is found again by its alias.
    const kms = await startKmsService({ iam, ...(options.dataDir === undefined ? {} : { keyFile: join(options.dataDir, 'kms-keys.json') }) });
    stoppers.push(() => kms.close());
    const kmsClient = new KMSClient({ endpoint: kms.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const sealingKeyId = await kmsClient
      .send(new DescribeKeyCommand({ KeyId: SEALING_KEY_ALIAS }))
      .then((described) => described.KeyMetadata?.KeyId ?? '')
      .catch(async (error: unknown) => {
        if (!(error instanceof NotFoundException)) throw error;
        const created = await kmsClient.send(new CreateKeyCommand({ Description: 'Kiln local sealing key' }));
        const keyId = created.KeyMetadata?.KeyId ?? '';
        await kmsClient.send(new CreateAliasCommand({ AliasName: SEALING_KEY_ALIAS, TargetKeyId: keyId }));
        return keyId;
      });
    kmsClient.destroy();

    // SSM's wait before a deleted name is taken again passes at the pace of the workflows' Wait states.
    const ssm = await startSsmService({ iam, kmsKeys: kms.keys, recreateAfterMs: 30_000 * (options.waitTimeScale ?? DEFAULT_WAIT_TIME_SCALE) });
    stoppers.push(() => ssm.close());
    // Local mode plays the operator who built the KMS plugin and pushed it where the machines pull from.
    const registry = new SandboxContainerRegistry();
    registry.push(LOCAL_KMS_PLUGIN_IMAGE);
    const machines = new SandboxMachines(
      (scope, name) => ssm.read(scope, name),
      options.machineBootMs ?? 300,
      ACCOUNT_ID,
      (scope, keyArn) => kmsV2Plugin(kms.keys, scope, keyArn),
      (image) => registry.serves(image),
    );
    ssm.onCommand((scope, instanceId, commands) => machines.run(scope, instanceId, commands), (scope, instanceId) => machines.managed(scope, instanceId));
    const ec2 = await startEc2Service({ machines, iam });
    stoppers.push(() => ec2.close());
    const sqs = await startSqsService({ accountId: ACCOUNT_ID, region: LOCAL_REGION });
    stoppers.push(() => sqs.close());
    const deadLetterQueueUrl = sqs.createQueue({ name: WEBHOOK_DEAD_LETTER_QUEUE, visibilityTimeoutSeconds: WEBHOOK_VISIBILITY_SECONDS });
    const webhookQueueUrl = sqs.createQueue({
      name: WEBHOOK_QUEUE,
      visibilityTimeoutSeconds: WEBHOOK_VISIBILITY_SECONDS,
      deadLetter: { queueName: WEBHOOK_DEAD_LETTER_QUEUE, maxReceiveCount: WEBHOOK_MAX_RECEIVES },
    });

    const faults = new FaultInjector();
    const clusters = new Map<string, SandboxCluster>();
    const apiLoadBalancers = new Map<string, SandboxNetworkLoadBalancer>();
    const chartRunners = new Map<string, () => Promise<void>>();
    const log = createLogger(options.logLevel ?? 'info', { service: 'kiln-sandbox' });

    // Lambda modules are imported only after the environment below is set, as a Lambda cold start would.
    const loaded: { services?: StepServices } = {};
    const servicesOf = (): StepServices => {
      if (loaded.services === undefined) throw new Error('The local stack is not ready yet.');
      return loaded.services;
    };
    const clusterName = async (event: unknown): Promise<string | undefined> => {
      const { tenantId, clusterId } = (event ?? {}) as { tenantId?: string; clusterId?: string };
      if (tenantId === undefined || clusterId === undefined) return undefined;
      return (await servicesOf().store.getCluster(tenantId, clusterId))?.name;
    };

    const cloud = new SandboxCloud({
      accountId: ACCOUNT_ID,
      // The program runs with Kiln's credentials, which assume the tenant's role through STS.
      assumeRole: (account, sessionName) => {
        sts.assumeRoleAs(ACCOUNT_ID, account.roleArn, account.externalId, sessionName);
      },
      // The endpoint is the cluster's load balancer, in front of its API server: what reaches the API from outside the
      // cluster's network (Kiln, a customer's kubeconfig) passes its security groups. In-cluster clients (the chart
      // runner, the machines) reach the API server itself, as they do on AWS.
      apiEndpointFor: async (clusterId) => {
        const existing = apiLoadBalancers.get(clusterId);
        if (existing !== undefined) return `https://${LOAD_BALANCER_ADDRESS}:${existing.port}`;
        // As kubeadm's API server: TLS from kubeadm init on, client certificates the cluster CA signed, no anonymous access.
        const started = await startSandboxCluster({ name: clusterId, secure: true });
        const target = new URL(started.url);
        const balancer = await startNetworkLoadBalancer({ target: { host: target.hostname, port: Number(target.port) }, clientAddress: LOCAL_EGRESS_ADDRESS });
        // helm-controller as upstream runs it, from the Deployment Kiln applies: its install Jobs install each chart.
        const { stop: stopCharts } = startHelmController(started);
        clusters.set(clusterId, started);
        apiLoadBalancers.set(clusterId, balancer);
        chartRunners.set(clusterId, stopCharts);
        return `https://${LOAD_BALANCER_ADDRESS}:${balancer.port}`;
      },
      onProvisioned: async (provisioned) => {
        // A machine boots only if cloud-init would accept its user data.
        const userData = provisioned.resources
          .filter((resource) => resource.type === 'aws:ec2/launchTemplate:LaunchTemplate')
          .map((template) => ({ name: template.name, text: userDataText(template.inputs.userData) }));
        const invalid = userData.flatMap(({ name, text }) => cloudConfigProblems(text).map((problem) => `${name}: ${problem}`));
        if (invalid.length > 0) {
          throw new StepError('infrastructure', `Machines did not boot: their user data is not valid cloud-config (${invalid.slice(0, 5).join('; ')}).`, false);
        }
        // Machines run the Kubernetes their user data installs, and kubeadm refuses to join a kubelet of another release.
        const releases = new Set(userData.map(({ text }) => installedKubernetesRelease(text)));
        const [release, ...others] = [...releases];
        if (release === undefined || others.length > 0) {
          throw new StepError('infrastructure', `Machines did not boot: their user data installs ${release === undefined ? 'no kubelet' : `different kubelets (${[...releases].join(', ')})`}.`, false);
        }
        // The load balancer filters by the security group rules the stack now declares (an update changes them in place).
        apiLoadBalancers.get(provisioned.clusterId)?.admit(listenerSources(provisioned.resources, API_PORT));
        // What AWS does for the stack's KMS key: it exists, in the cluster's account and region, from now on.
        kms.keys.ensureKey(provisioned.outputs.kmsKeyArn, `Kiln cluster ${provisioned.clusterId}`);
        const cluster = clusters.get(provisioned.clusterId);
        const record = await servicesOf().store.getCluster(provisioned.tenantId, provisioned.clusterId);
        if (cluster !== undefined && record !== undefined) {
          machines.boot(provisioned.clusterId, cluster, record.spec, () => clusters.get(provisioned.clusterId) === cluster, machineGroupsOf(provisioned.resources));
        }
      },
      onDestroyed: async ({ clusterId, outputs }) => {
        // The destroyed stack schedules its key's deletion: whatever it wrapped can no longer be opened.
        if (outputs !== undefined) kms.keys.scheduleKeyDeletion(outputs.kmsKeyArn);
        const cluster = clusters.get(clusterId);
        clusters.delete(clusterId);
        await apiLoadBalancers.get(clusterId)?.close();
        apiLoadBalancers.delete(clusterId);
        await chartRunners.get(clusterId)?.();
        chartRunners.delete(clusterId);
        machines.forget(clusterId);
        await cluster?.close();
      },
    });
    stoppers.push(async () => {
      await Promise.all([...chartRunners.values()].map((stopCharts) => stopCharts()));
      await cloud.close();
      await Promise.all([...apiLoadBalancers.values()].map((balancer) => balancer.close()));
      await Promise.all([...clusters.values()].map((cluster) => cluster.close()));
    });

    const lambdas = Object.fromEntries(
      Object.entries(LAMBDA_TASKS).map(([task, binding]) => [
        functionArn(binding.name),
        async (event: unknown) => {
          faults.check(task, await clusterName(event));
          const module = (await import(`../../functions/tasks/${binding.module}.ts`)) as TaskModule;
          const handler = module[binding.exported];
          if (handler === undefined) throw new Error(`functions/tasks/${binding.module}.ts has no handler for ${task}`);
          return handler(event);
        },
      ]),
    );
    const substitutions: Record<string, string> = {
      ...Object.fromEntries(Object.values(LAMBDA_TASKS).map((binding) => [binding.placeholder, functionArn(binding.name)])),
      RunnerClusterArn: `arn:aws:ecs:${LOCAL_REGION}:${ACCOUNT_ID}:cluster/kiln-runners`,
      InfrastructureTaskDefinitionArn: INFRASTRUCTURE_TASK_DEFINITION,
      RunnerSubnetId: 'subnet-0sandbox',
      RunnerSecurityGroupId: 'sg-0sandbox',
    };
    const stepFunctions = await startStepFunctionsService({
      region: LOCAL_REGION,
      accountId: ACCOUNT_ID,
      stateMachines: Object.fromEntries(WORKFLOW_NAMES.map((name) => [`kiln-${name}`, renderWorkflow(name, substitutions)])),
      lambdas,
      ecsTasks: {
        // The production container runs this same function with the Automation API driver.
        [INFRASTRUCTURE_TASK_DEFINITION]: async (environment) => {
          const input = JSON.parse(environment.KILN_STEP_INPUT ?? '{}') as unknown;
          faults.check(environment.KILN_STEP_ACTION === 'destroy' ? 'Destroy' : 'Infrastructure', await clusterName(input));
          await runInfrastructureContainer(servicesOf(), cloud, environment);
        },
      },
      // An account's Fargate capacity is finite: past it RunTask is refused, and the workflows wait their turn.
      ecsTaskLimit: options.infrastructureTaskLimit ?? 16,
      waitTimeScale: options.waitTimeScale ?? DEFAULT_WAIT_TIME_SCALE,
      log: (entry) => {
        log.debug('execution finished', entry);
      },
    });
    stoppers.push(() => stepFunctions.close());

    const adminToken = options.adminToken ?? keptAdminToken(options.dataDir);
    Object.assign(process.env, {
      ...LOCAL_AWS_ENVIRONMENT,
      KILN_TABLE_NAME: tableName,
      KILN_DYNAMODB_ENDPOINT: dynamo.endpoint,
      KILN_STEPFUNCTIONS_ENDPOINT: stepFunctions.endpoint,
      KILN_KMS_ENDPOINT: kms.endpoint,
      KILN_SSM_ENDPOINT: ssm.endpoint,
      KILN_STS_ENDPOINT: sts.endpoint,
      KILN_EC2_ENDPOINT: ec2.endpoint,
      KILN_SQS_ENDPOINT: sqs.endpoint,
      KILN_WEBHOOK_QUEUE_URL: webhookQueueUrl,
      KILN_PROVISION_STATE_MACHINE_ARN: stepFunctions.stateMachineArn('kiln-provision'),
      KILN_DEPROVISION_STATE_MACHINE_ARN: stepFunctions.stateMachineArn('kiln-deprovision'),
      KILN_UPDATE_STATE_MACHINE_ARN: stepFunctions.stateMachineArn('kiln-update'),
      KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: stepFunctions.stateMachineArn('kiln-rotate-encryption-key'),
      KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: stepFunctions.stateMachineArn('kiln-remediate-node'),
      KILN_SEALING_KEY_ID: sealingKeyId,
      // Kiln's account is the sandbox's: tenants' roles trust it, and no order may name a role in it.
      KILN_ACCOUNT_ID: ACCOUNT_ID,
      KILN_ADMIN_TOKEN_SHA256: sha256(adminToken),
      KILN_POLL_SECONDS: String(options.pollSeconds ?? 1),
      // Where Kiln's calls to the clusters' load balancers come from here, as the NAT gateways' addresses in production.
      KILN_EGRESS_CIDRS: `${LOCAL_EGRESS_ADDRESS}/32`,
      // The boundary the runner gives the machines' roles, as sst.config.ts passes the one it creates.
      KILN_MACHINE_ROLE_BOUNDARY_ARN: cloud.machineRoleBoundaryArn,
      // The KMS plugin's image, as an operator configures the one they built (its project publishes none).
      KILN_KMS_PLUGIN_IMAGE: LOCAL_KMS_PLUGIN_IMAGE,
      // Within the sandbox's Fargate capacity, as a deployment sets it within its account's quota.
      KILN_INFRASTRUCTURE_CONCURRENCY: String(options.infrastructureTaskLimit ?? 16),
      KILN_LOG_LEVEL: options.logLevel ?? 'info',
      // So a customer can test with a receiver on this machine; the metadata address stays refused.
      KILN_WEBHOOK_ALLOW_LOOPBACK: 'true',
      // CloudWatch metrics (EMF lines on stdout) only when asked for: locally no one collects them.
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
    });
    const entry = await import('../../functions/api.ts');
    const { services } = await import('../../functions/tasks/services.ts');
    const { services: health } = await import('../../functions/health.ts');
    loaded.services = services;

    // Local mode only: the chaos controls sit in front of the production app, which never has them.
    const chaos = new Hono().route('/v1/sandbox', chaosRoutes({ adminToken, machines, clusters, sts }));
    const server = serve({
      fetch: (request) => (new URL(request.url).pathname.startsWith('/v1/sandbox/') ? chaos.fetch(request) : entry.app.fetch(request)),
      port: options.port ?? 8787,
      hostname: '127.0.0.1',
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    stoppers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
          if ('closeAllConnections' in server) server.closeAllConnections();
        }),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const devTenant = await seedDevTenant(services, options.dataDir);
    if (options.envFile !== undefined) {
      // Local mode only: lets a shell `source` the connection details (the README walk-through does).
      writeFileSync(
        options.envFile,
        `export KILN=${url}\nexport KILN_ADMIN_TOKEN=${adminToken}\nexport KILN_DEV_API_KEY=${devTenant.apiKey}\n`,
        { mode: 0o600 },
      );
      stoppers.push(() => {
        rmSync(options.envFile ?? '', { force: true });
        return Promise.resolve();
      });
    }

    // Executions live in memory: after a restart, operations still active have none, and recovery restarts them.
    await recoverOperations(services, { graceMs: 0, sweep: true });
    // What the scheduled functions do in production: recovery every 15 s here, due key rotations, end-of-life upgrades and usage reports every minute, version support and certificate renewals hourly.
    // A recovery pass still going when the next is due (a busy stack) is not joined by a second one.
    let recovering = false;
    const recovery = setInterval(() => {
      if (recovering) return;
      recovering = true;
      recoverOperations(servicesOf())
        .catch((error: unknown) => {
          log.warn('recovery pass failed', { error });
        })
        .finally(() => {
          recovering = false;
        });
    }, 15_000);
    const rotations = setInterval(() => {
      startDueRotations(servicesOf()).catch((error: unknown) => {
        log.warn('rotation schedule pass failed', { error });
      });
      startDueKubernetesUpgrades(servicesOf()).catch((error: unknown) => {
        log.warn('kubernetes upgrade schedule pass failed', { error });
      });
      reportUsage(servicesOf()).catch((error: unknown) => {
        log.warn('usage report pass failed', { error });
      });
    }, 60_000);
    // Daily in production; at start and hourly here, so clusters kept in KILN_DATA_DIR learn of an end of life the day
    // it comes, and renew their certificates before they expire.
    const checkVersionSupport = () => {
      checkKubernetesVersionSupport(servicesOf()).catch((error: unknown) => {
        log.warn('kubernetes version support pass failed', { error });
      });
      startDueCertificateRenewals(servicesOf()).catch((error: unknown) => {
        log.warn('certificate renewal pass failed', { error });
      });
    };
    checkVersionSupport();
    const versionSupport = setInterval(checkVersionSupport, 3_600_000);
    // Every minute in production; every 10 s here unless told otherwise.
    const healthPollSeconds = options.healthPollSeconds ?? 10;
    const healthPolls =
      healthPollSeconds > 0
        ? setInterval(() => {
            pollNodeHealth(health).catch((error: unknown) => {
              log.warn('node health poll failed', { error });
            });
          }, healthPollSeconds * 1000)
        : undefined;
    healthPolls?.unref();
    // The dispatcher every minute in production, every 2 s here unless told otherwise; the senders as SQS triggers them.
    const sqsClient = new SQSClient({ region: LOCAL_REGION, endpoint: sqs.endpoint, credentials: LOCAL_CREDENTIALS });
    stoppers.push(() => {
      sqsClient.destroy();
      return Promise.resolve();
    });
    const webhookDeliverySeconds = options.webhookDeliverySeconds ?? 2;
    let webhookDispatches: NodeJS.Timeout | undefined;
    if (webhookDeliverySeconds > 0) {
      const dispatcher = await import('../../functions/webhook-dispatcher.ts');
      const sender = await import('../../functions/webhook-sender.ts');
      webhookDispatches = setInterval(() => {
        dispatcher.handler().catch((error: unknown) => {
          log.warn('webhook dispatch failed', { error });
        });
      }, webhookDeliverySeconds * 1000);
      webhookDispatches.unref();
      const senders = runEventSource({ sqs: sqsClient, queueUrl: webhookQueueUrl, handler: sender.handler, batchSize: 10 });
      senders.done.catch((error: unknown) => {
        log.warn('webhook senders stopped', { error });
      });
      stoppers.push(() => senders.stop());
    }
    const webhookQueue = new SqsWebhookQueue(sqsClient, webhookQueueUrl);
    const webhooks: LocalStack['webhooks'] = {
      sqs,
      queueUrl: webhookQueueUrl,
      deadLetterQueueUrl,
      run: async (now = new Date()) => {
        const dispatched = await dispatchWebhooks(servicesOf(), webhookQueue, now);
        const sent: SendReport = { attempted: 0, succeeded: 0, failed: 0, skipped: 0, disabled: [] };
        await runEventSource({ sqs: sqsClient, queueUrl: webhookQueueUrl, handler: (event) => handleWebhookBatch(servicesOf(), event, now, sent), untilEmpty: true }).done;
        return { ...dispatched, ...sent };
      },
    };
    rotations.unref();
    recovery.unref();
    versionSupport.unref();
    stoppers.push(() => {
      clearInterval(recovery);
      clearInterval(rotations);
      clearInterval(versionSupport);
      clearInterval(healthPolls);
      clearInterval(webhookDispatches);
      return Promise.resolve();
    });

    return { url, adminToken, devTenant, services, health, faults, accountId: ACCOUNT_ID, kms, ssm, sts, cloud, machines, clusters, apiLoadBalancers, executions: () => stepFunctions.executions(), webhooks, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A new admin token; with a data directory the first one is kept there and used again, so a restart keeps it. */
function keptAdminToken(dataDir: string | undefined): string {
  const saved = dataDir === undefined ? undefined : join(dataDir, 'admin-token');
  if (saved !== undefined && existsSync(saved)) return readFileSync(saved, 'utf8').trim();
  const token = `kiln_admin_${randomBytes(24).toString('base64url')}`;
  if (saved !== undefined) writeFileSync(saved, token, { mode: 0o600 });
  return token;
}

/** The `dev` tenant; with a data directory its key is kept there, because Kiln itself keeps only the hash. */
async function seedDevTenant(services: KilnServices, dataDir: string | undefined): Promise<{ id: string; name: string; apiKey: string }> {
  const saved = dataDir === undefined ? undefined : join(dataDir, 'dev-tenant.json');
  if (saved !== undefined && existsSync(saved)) {
    return JSON.parse(readFileSync(saved, 'utf8')) as { id: string; name: string; apiKey: string };
  }
  const tenant = await createTenant(services, 'dev');
  const dev = { id: tenant.id, name: tenant.name, apiKey: tenant.apiKey };
  if (saved !== undefined) writeFileSync(saved, JSON.stringify(dev), { mode: 0o600 });
  return dev;
}
