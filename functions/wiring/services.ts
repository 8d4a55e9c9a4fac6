import { KmsSealer } from '#encryption';
import { type KilnServices, RequestAdmission, WorkflowLauncher } from '#services';
import { createStore } from '#store';
import type { KilnConfig } from './config.ts';
import { type Observability, createObservability } from './observability.ts';
import { once } from './once.ts';

/**
 * How every AWS client connects: to `url` when given (local mode's stand-ins), and never waiting on a dead connection
 * until its Lambda function times out: a socket silent for 60 s, connecting included, fails the call, which the SDK
 * and the step's retries try again. No whole-request timeout: it would count the time a call queues for one of the
 * client's sockets. No tighter connect timeout: in the 1000-order burst (local mode runs every function in one busy
 * process) a 3 s one failed calls to a local server that was up, because the process saw the connection late.
 */
export const awsClientOptions = (url: string | undefined) => ({
  ...(url === undefined ? {} : { endpoint: url }),
  requestHandler: { socketTimeout: 60_000 },
});

/** The API's and the schedulers' services: the table, the workflows, Kiln's sealing key. */
export function createServices(config: KilnConfig, observability: Observability = createObservability(config)): KilnServices {
  const region = config.AWS_REGION;
  // Loaded on first use, so a cold start that only reads carries neither client.
  const sfn = once(async () => observability.traced(new (await import('@aws-sdk/client-sfn')).SFNClient({ region, ...awsClientOptions(config.KILN_STEPFUNCTIONS_ENDPOINT) })));
  const kms = once(async () => observability.traced(new (await import('@aws-sdk/client-kms')).KMSClient({ region, ...awsClientOptions(config.KILN_KMS_ENDPOINT) })));
  return {
    ...(config.KILN_ADMIN_TOKEN_SHA256 === undefined ? {} : { adminTokenSha256: config.KILN_ADMIN_TOKEN_SHA256 }),
    corsOrigins: config.KILN_CORS_ORIGINS,
    rateLimit: { perSecond: config.KILN_RATE_LIMIT_PER_SECOND, burst: config.KILN_RATE_LIMIT_BURST },
    admission: new RequestAdmission(),
    infrastructureConcurrency: config.KILN_INFRASTRUCTURE_CONCURRENCY,
    kilnAccountId: config.KILN_ACCOUNT_ID,
    ...(config.KILN_KMS_PLUGIN_IMAGE === undefined ? {} : { kmsPluginImage: config.KILN_KMS_PLUGIN_IMAGE }),
    webhooks: { allowLoopback: config.KILN_WEBHOOK_ALLOW_LOOPBACK, allowedPorts: config.KILN_WEBHOOK_PORTS },
    store: createStore({
      tableName: config.KILN_TABLE_NAME,
      region,
      ...awsClientOptions(config.KILN_DYNAMODB_ENDPOINT),
      defaultQuotas: { clusters: config.KILN_QUOTA_CLUSTERS, nodes: config.KILN_QUOTA_NODES },
      traced: observability.traced,
    }),
    workflows: new WorkflowLauncher(sfn, {
      provision: config.KILN_PROVISION_STATE_MACHINE_ARN,
      deprovision: config.KILN_DEPROVISION_STATE_MACHINE_ARN,
      update: config.KILN_UPDATE_STATE_MACHINE_ARN,
      'rotate-encryption-key': config.KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN,
      'remediate-node': config.KILN_REMEDIATE_NODE_STATE_MACHINE_ARN,
    }),
    sealer: new KmsSealer(kms, config.KILN_SEALING_KEY_ID),
    log: observability.log,
    metrics: observability.emf,
  };
}
