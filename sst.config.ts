// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- SST's globals ($config, sst, aws) come only this way.
/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Production: declares Kiln's AWS resources and links them. Deploying needs an
 * AWS account (`npx sst deploy --stage prod`); local mode (`npm start`) does
 * not use this file. State machines are plain `aws.sfn.StateMachine`s with
 * our JSONPath ASL, because `sst.aws.StepFunctions` emits JSONata.
 */
export default $config({
  app(input) {
    return {
      name: 'kiln',
      home: 'aws',
      removal: input.stage === 'prod' ? 'retain' : 'remove',
      protect: input.stage === 'prod',
    };
  },
  async run() {
    const { renderWorkflow } = await import('./workflows/definitions.ts');
    // The same bundling `npm run build` reports on and checks (ESM, minified, Node 20 syntax, source maps, lazy chunks).
    const { LAMBDA_NODEJS: nodejs, LAMBDA_RUNTIME, REFERENCE_SCRIPT_FILE } = await import('./functions/bundling.ts');
    // Each function's, the runner's and the workflows' IAM statements (functions/permissions.test.ts evaluates them).
    const { KILN_IAM_PATH, functionPermissions, machineRoleBoundary, policyDocument, runnerPermissions, workflowPermissions } = await import('./functions/permissions.ts');

    // Every function runs on one runtime (functions/bundling.ts says until when AWS keeps it) and is traced with X-Ray
    // (active tracing), as are the workflows below. Lambda refuses active tracing for a role that may not write traces
    // (the console adds the permission; infrastructure code must), so it comes with it.
    $transform(sst.aws.Function, (args) => {
      args.runtime = LAMBDA_RUNTIME.identifier;
      args.permissions = $output(args.permissions ?? []).apply((granted) => [...granted, { actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], resources: ['*'] }]);
      const own = args.transform?.function;
      args.transform = {
        ...args.transform,
        function: (fn, options, name) => {
          if (typeof own === 'function') own(fn, options, name);
          else if (own !== undefined) Object.assign(fn, own);
          fn.tracingConfig = { mode: 'Active' };
        },
      };
    });
    // Alarms go to this topic; an operator subscribes to it (email, chat, paging).
    const alarms = new sst.aws.SnsTopic('Alarms');
    const alarm = (name: string, args: Omit<aws.cloudwatch.MetricAlarmArgs, 'alarmActions' | 'okActions' | 'evaluationPeriods' | 'comparisonOperator'> & { evaluationPeriods?: number }) =>
      new aws.cloudwatch.MetricAlarm(name, {
        comparisonOperator: 'GreaterThanOrEqualToThreshold',
        evaluationPeriods: 1,
        treatMissingData: 'notBreaching',
        alarmActions: [alarms.arn],
        okActions: [alarms.arn],
        ...args,
      });

    const sealingKey = new aws.kms.Key('SealingKey', {
      description: 'Kiln: wraps tenant secrets (data keys, bootstrap tokens, SSH keys)',
      enableKeyRotation: true,
    });
    const pulumiSecretsKey = new aws.kms.Key('PulumiSecretsKey', { description: 'Kiln: Pulumi stack secrets', enableKeyRotation: true });
    const pulumiState = new sst.aws.Bucket('PulumiState', { versioning: true });

    const table = new sst.aws.Dynamo('Table', {
      // The same keys and indexes as packages/store/table.ts (local mode creates the table from there).
      fields: { PK: 'string', SK: 'string', GSI1PK: 'string', GSI1SK: 'string', GSI2PK: 'string', GSI2SK: 'string' },
      primaryIndex: { hashKey: 'PK', rangeKey: 'SK' },
      globalIndexes: {
        GSI1: { hashKey: 'GSI1PK', rangeKey: 'GSI1SK' },
        GSI2: { hashKey: 'GSI2PK', rangeKey: 'GSI2SK', projection: 'keys-only' },
      },
      ttl: 'expiresAt',
      transform: { table: { pointInTimeRecovery: { enabled: true }, serverSideEncryption: { enabled: true } } },
    });

    const adminTokenHash = new sst.Secret('AdminTokenSha256');
    // A NAT gateway per zone, each with its own Elastic IP (sst/sst@v4.17.1 platform/src/components/aws/vpc.ts: `nat:
    // 'managed'` creates them, and routes each private subnet's traffic to its zone's gateway): everything Kiln runs in
    // the VPC reaches the internet from these fixed addresses.
    const vpc = new sst.aws.Vpc('Vpc', { nat: 'managed' });
    const runners = new sst.aws.Cluster('Runners', { vpc });
    // Kiln's egress: every cluster's API load balancer admits these, whatever the order's apiAllowedCidrs say.
    const egressCidrs = vpc.nodes.elasticIps
      .apply((addresses) => $util.all(addresses.map((address) => address.publicIp)))
      .apply((ips) => ips.map((ip) => `${ip}/32`).join(','));

    const region = aws.getRegionOutput().region;
    const account = aws.getCallerIdentityOutput().accountId;
    const partition = aws.getPartitionOutput().partition;
    // Webhooks: the dispatcher (every minute) turns events into deliveries and puts the due ones on an SQS queue; the
    // senders take batches of 5 (partial batch responses), so a slow receiver holds up only its own batch. A message
    // a sender takes and drops is back after the visibility timeout (the dispatcher's lease, 6 minutes, six times the
    // sender's timeout), and after 5 receives it goes to the dead-letter queue, kept 14 days for an operator.
    const webhookDeadLetters = new sst.aws.Queue('WebhookDeliveriesDlq', { transform: { queue: { messageRetentionSeconds: 14 * 24 * 3600 } } });
    const webhookQueue = new sst.aws.Queue('WebhookDeliveries', { visibilityTimeout: '6 minutes', dlq: { queue: webhookDeadLetters.arn, retry: 5 } });
    // The ceiling of every machine role the runner creates in Kiln's account (it may create none without it).
    const machineRoleBoundaryPolicy = new aws.iam.Policy('MachineRoleBoundary', {
      path: KILN_IAM_PATH,
      description: "Kiln: the most a cluster machine's role may do (its permissions boundary)",
      policy: $resolve({ partition, account }).apply((arns) => JSON.stringify(policyDocument(machineRoleBoundary(arns)))),
    });
    const kilnResources = $resolve({
      partition,
      region,
      account,
      namePrefix: `${$app.name}-${$app.stage}-`,
      table: table.arn,
      sealingKey: sealingKey.arn,
      pulumiSecretsKey: pulumiSecretsKey.arn,
      pulumiStateBucket: pulumiState.arn,
      webhookQueue: webhookQueue.arn,
      machineRoleBoundary: machineRoleBoundaryPolicy.arn,
    });
    /** The function's own statements: what its code calls and nothing else (no table or bucket links, which grant `dynamodb:*` and `s3:*`). */
    const grants = (name: Parameters<typeof functionPermissions>[0]) => kilnResources.apply((arns) => functionPermissions(name, arns));
    const stateMachineArn = (name: string) => $interpolate`arn:aws:states:${region}:${account}:stateMachine:${$app.name}-${$app.stage}-${name}`;

    const environment = {
      KILN_TABLE_NAME: table.name,
      KILN_SEALING_KEY_ID: sealingKey.arn,
      KILN_ACCOUNT_ID: aws.getCallerIdentityOutput().accountId,
      KILN_ADMIN_TOKEN_SHA256: adminTokenHash.value,
      KILN_PROVISION_STATE_MACHINE_ARN: stateMachineArn('provision'),
      KILN_DEPROVISION_STATE_MACHINE_ARN: stateMachineArn('deprovision'),
      KILN_UPDATE_STATE_MACHINE_ARN: stateMachineArn('update'),
      KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: stateMachineArn('rotate-encryption-key'),
      KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: stateMachineArn('remediate-node'),
      KILN_PULUMI_BACKEND_URL: $interpolate`s3://${pulumiState.name}`,
      KILN_PULUMI_SECRETS_PROVIDER: $interpolate`awskms://${pulumiSecretsKey.id}?region=${region}`,
      KILN_EGRESS_CIDRS: egressCidrs,
      KILN_MACHINE_ROLE_BOUNDARY_ARN: machineRoleBoundaryPolicy.arn,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // The portals' origins, from the deploying shell (none unless set).
      KILN_CORS_ORIGINS: process.env.KILN_CORS_ORIGINS ?? '',
      // The aws-encryption-provider image the operator built and pushed (its project publishes none), pinned by digest;
      // without it orders with the kms at-rest provider are refused.
      ...(process.env.KILN_KMS_PLUGIN_IMAGE === undefined ? {} : { KILN_KMS_PLUGIN_IMAGE: process.env.KILN_KMS_PLUGIN_IMAGE }),
    };

    // A task's code is an export of functions/tasks/<module>.ts: steps with the same clients share a module (one bundle).
    // A step that calls a cluster's API server runs in the VPC, so its calls come from Kiln's egress addresses (the only
    // ones a narrowed cluster admits besides its own); a step that calls only AWS's APIs (`reachesClusters` false) does not.
    const task = (name: Parameters<typeof grants>[0], module: string, exported: string, reachesClusters = true) =>
      new sst.aws.Function(name, {
        handler: `functions/tasks/${module}.${exported}`,
        nodejs,
        timeout: '5 minutes',
        environment,
        permissions: grants(name),
        ...(reachesClusters ? { vpc } : {}),
      });
    const tasks = {
      PlanFunctionArn: task('TaskPlan', 'bookkeeping', 'plan', false),
      BootstrapFunctionArn: task('TaskBootstrap', 'bookkeeping', 'bootstrap', false),
      NetworkFunctionArn: task('TaskNetwork', 'addons', 'network'),
      WaitForControlPlaneFunctionArn: task('TaskWaitForControlPlane', 'cluster-api', 'waitForControlPlane'),
      WaitForWorkersFunctionArn: task('TaskWaitForWorkers', 'cluster-api', 'waitForWorkers'),
      AddonsFunctionArn: task('TaskAddons', 'addons', 'addons'),
      VerifyFunctionArn: task('TaskVerify', 'addons', 'verify'),
      MarkReadyFunctionArn: task('TaskMarkReady', 'bookkeeping', 'markReady', false),
      MarkDeletedFunctionArn: task('TaskMarkDeleted', 'bookkeeping', 'markDeleted', false),
      RecordFailureFunctionArn: task('TaskRecordFailure', 'bookkeeping', 'recordFailure', false),
      AwaitInfrastructureSlotFunctionArn: task('TaskAwaitInfrastructureSlot', 'bookkeeping', 'awaitInfrastructureSlot', false),
      ReleaseInfrastructureSlotFunctionArn: task('TaskReleaseInfrastructureSlot', 'bookkeeping', 'releaseInfrastructureSlot', false),
      RotateEncryptionKeyFunctionArn: task('TaskRotateEncryptionKey', 'cluster-api', 'rotateEncryptionKey'),
      RemediateRebootFunctionArn: task('TaskRemediateReboot', 'machines', 'reboot', false),
      RemediateRecoverFunctionArn: task('TaskRemediateRecover', 'machines', 'recover'),
      RemediateDrainFunctionArn: task('TaskRemediateDrain', 'machines', 'drain'),
      RemediateReplaceFunctionArn: task('TaskRemediateReplace', 'machines', 'replace'),
      RemediateAwaitReplacementFunctionArn: task('TaskRemediateAwaitReplacement', 'machines', 'awaitReplacement'),
      RemediateRetireFunctionArn: task('TaskRemediateRetire', 'machines', 'retire'),
      RemediateFinishFunctionArn: task('TaskRemediateFinish', 'machines', 'finishRemediation', false),
      RemediateFailureFunctionArn: task('TaskRemediateFailure', 'machines', 'recordRemediationFailure', false),
      UpdateDrainNodesFunctionArn: task('TaskUpdateDrainNodes', 'machines', 'drainNodes'),
      UpdateRemoveMachinesFunctionArn: task('TaskUpdateRemoveMachines', 'machines', 'removeMachines'),
      UpdateJoinTokenFunctionArn: task('TaskUpdateJoinToken', 'machines', 'joinToken'),
      UpdateAwaitNodesFunctionArn: task('TaskUpdateAwaitNodes', 'machines', 'awaitNodes'),
      UpdateRollMachinesFunctionArn: task('TaskUpdateRollMachines', 'machines', 'rollMachines'),
      UpdateRollControlPlaneFunctionArn: task('TaskUpdateRollControlPlane', 'machines', 'rollControlPlane'),
      UpdatePodSecurityDefaultsFunctionArn: task('TaskUpdatePodSecurityDefaults', 'cluster-api', 'podSecurityDefaults'),
    };

    // Pulumi up can outlast Lambda's 15 minutes: the infrastructure step is a Fargate task.
    const infrastructure = new sst.aws.Task('Infrastructure', {
      cluster: runners,
      image: { context: '.', dockerfile: 'functions/tasks/infrastructure.Dockerfile' },
      environment,
      permissions: kilnResources.apply(runnerPermissions),
      // Its environment names no SSM parameter or secret, so the execution role (ECS's, to pull and start the
      // container) keeps AWS's managed policy without SST's reads of every parameter and secret (`*`).
      transform: {
        executionRole: (args) => {
          args.inlinePolicies = [];
        },
      },
    });

    const workflowRole = new aws.iam.Role('WorkflowRole', {
      assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: 'states.amazonaws.com' }),
    });
    new aws.iam.RolePolicy('WorkflowPolicy', {
      role: workflowRole.id,
      policy: $resolve({
        arns: kilnResources,
        taskFunctions: $resolve(Object.values(tasks).map((fn) => fn.arn)),
        runnerCluster: runners.nodes.cluster.arn,
        runnerTaskDefinition: infrastructure.nodes.taskDefinition.arn,
        runnerRoles: $resolve([infrastructure.nodes.taskRole.arn, infrastructure.nodes.executionRole.arn]),
      }).apply(({ arns, ...runner }) => JSON.stringify(policyDocument(workflowPermissions(arns, runner)))),
    });

    const substitutions = $resolve({
      ...Object.fromEntries(Object.entries(tasks).map(([placeholder, fn]) => [placeholder, fn.arn])),
      RunnerClusterArn: runners.nodes.cluster.arn,
      InfrastructureTaskDefinitionArn: infrastructure.nodes.taskDefinition.arn,
      RunnerSubnetId: vpc.privateSubnets.apply((subnets) => subnets[0] ?? ''),
      RunnerSecurityGroupId: vpc.securityGroups.apply((groups) => groups[0] ?? ''),
    });
    // Every execution logs its failures and state transitions' errors (without execution data: inputs and outputs
    // never reach the logs) and is traced with X-Ray; a failed, timed-out or aborted execution raises an alarm.
    const workflowLogs = new aws.cloudwatch.LogGroup('WorkflowLogs', { name: `/aws/vendedlogs/states/${$app.name}-${$app.stage}`, retentionInDays: 90 });
    for (const name of ['provision', 'deprovision', 'update', 'rotate-encryption-key', 'remediate-node'] as const) {
      const machine = new aws.sfn.StateMachine(`Workflow${name}`, {
        name: `${$app.name}-${$app.stage}-${name}`,
        roleArn: workflowRole.arn,
        definition: substitutions.apply((values) => JSON.stringify(renderWorkflow(name, values as Record<string, string>))),
        loggingConfiguration: { logDestination: $interpolate`${workflowLogs.arn}:*`, includeExecutionData: false, level: 'ERROR' },
        tracingConfiguration: { enabled: true },
      });
      for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted']) {
        alarm(`Workflow${name}${metric}`, {
          alarmDescription: `Kiln: a ${name} workflow execution ended ${metric.slice('Executions'.length).toLowerCase()}; its operation says why.`,
          namespace: 'AWS/States',
          metricName: metric,
          dimensions: { StateMachineArn: machine.arn },
          statistic: 'Sum',
          period: 300,
          threshold: 1,
        });
      }
    }

    // The API: a REST API (API Gateway v1) in front of the function, not an HTTP API: only REST API stages take an AWS
    // WAF web ACL ("AWS WAF currently supports only API Gateway REST APIs", AWS re:Post knowledge center
    // waf-api-gateway-rate-based-rules; API Gateway Developer Guide, "Use AWS WAF to protect your REST APIs"). WAF
    // refuses each source address past its limit before API Gateway, Lambda or DynamoDB see the request; the stage is
    // throttled as a whole behind it; the tenants' own limits are Kiln's token buckets in DynamoDB (see the README).
    // Regional, so WAF sees the client's own address (an edge-optimized API would show it CloudFront's).
    const apiFunction = new sst.aws.Function('Api', {
      handler: 'functions/api.handler',
      nodejs,
      // The reference page's script, served at /docs/scalar.js (functions/api.ts reads it from this path).
      copyFiles: [{ from: REFERENCE_SCRIPT_FILE, to: REFERENCE_SCRIPT_FILE }],
      environment,
      permissions: grants('Api'),
    });
    // Kiln answers CORS itself (KILN_CORS_ORIGINS), so API Gateway adds no routes or responses of its own.
    const api = new sst.aws.ApiGatewayV1('RestApi', { endpoint: { type: 'regional' }, cors: false, accessLog: { retention: '3 months' } });
    api.route('ANY /', apiFunction.arn);
    api.route('ANY /{proxy+}', apiFunction.arn);
    api.deploy();
    const apiStage = api.nodes.stage;
    if (apiStage === undefined) throw new Error('The REST API has no stage after deploy()');
    new aws.apigateway.MethodSettings('RestApiStageSettings', {
      restApi: api.nodes.api.id,
      stageName: apiStage.stageName,
      methodPath: '*/*',
      settings: { throttlingRateLimit: 500, throttlingBurstLimit: 1000, metricsEnabled: true },
    });
    // Per source address: 12,000 requests in any 5 minutes, twice what one tenant's default token bucket lets through
    // (20 a second), so only a flood (an unknown key sprayed from one address, a runaway script) meets it, with a 403.
    const perSourceLimit = new aws.wafv2.WebAcl('ApiPerSourceLimit', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      rules: [
        {
          name: 'PerSourceAddress',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: 12_000, evaluationWindowSec: 300, aggregateKeyType: 'IP' } },
          visibilityConfig: { cloudwatchMetricsEnabled: true, metricName: 'KilnApiPerSourceAddress', sampledRequestsEnabled: true },
        },
      ],
      visibilityConfig: { cloudwatchMetricsEnabled: true, metricName: 'KilnApi', sampledRequestsEnabled: true },
    });
    new aws.wafv2.WebAclAssociation('ApiPerSourceLimitAssociation', { resourceArn: apiStage.arn, webAclArn: perSourceLimit.arn });
    alarm('Api5xx', {
      alarmDescription: 'Kiln: the API answered 5xx (every answer Kiln means to give a client is 4xx); the access log and the function logs carry the request id.',
      namespace: 'AWS/ApiGateway',
      metricName: '5XXError',
      dimensions: { ApiName: api.nodes.api.name, Stage: apiStage.stageName },
      statistic: 'Sum',
      period: 300,
      threshold: 5,
    });
    alarm('ApiPerSourceBlocked', {
      alarmDescription: 'Kiln: WAF is refusing a source address past its per-source limit (a flood, or a client to talk to).',
      namespace: 'AWS/WAFV2',
      metricName: 'BlockedRequests',
      dimensions: { WebACL: perSourceLimit.name, Rule: 'PerSourceAddress', Region: region },
      statistic: 'Sum',
      period: 300,
      threshold: 100,
    });
    alarm('ApiThrottles', {
      alarmDescription: 'Kiln: the API function was throttled by Lambda (its concurrency is exhausted).',
      namespace: 'AWS/Lambda',
      metricName: 'Throttles',
      dimensions: { FunctionName: apiFunction.name },
      statistic: 'Sum',
      period: 300,
      threshold: 1,
    });
    alarm('ApiRateLimited', {
      alarmDescription: "Kiln: tenants' requests are being refused with 429 in numbers (a runaway client, or limits set too low).",
      namespace: 'Kiln',
      metricName: 'RateLimited',
      dimensions: { service: 'kiln' },
      statistic: 'Sum',
      period: 300,
      threshold: 100,
    });
    new sst.aws.CronV2('RotationSchedule', {
      schedule: 'rate(1 hour)',
      function: { handler: 'functions/rotation-schedule.handler', nodejs, environment, permissions: grants('RotationSchedule') },
    });
    new sst.aws.CronV2('KubernetesVersionSupport', {
      schedule: 'rate(1 day)',
      function: { handler: 'functions/version-support.handler', nodejs, environment, permissions: grants('KubernetesVersionSupport') },
    });
    new sst.aws.CronV2('KubernetesUpgrades', {
      // Every 15 minutes, so no maintenance window (30 minutes at least) is missed; it reads only minors past end of life.
      schedule: 'rate(15 minutes)',
      function: { handler: 'functions/kubernetes-upgrades.handler', nodejs, environment, permissions: grants('KubernetesUpgrades') },
    });
    webhookQueue.subscribe(
      // Reaches the tenants' receivers on the internet, never Kiln's own network (the address guard checks each connection).
      { handler: 'functions/webhook-sender.handler', nodejs, timeout: '60 seconds', environment, permissions: grants('WebhookSender') },
      { batch: { size: 5, partialResponses: true } },
    );
    // The dispatcher (functions/webhook-dispatcher.ts); the resource keeps its deployed name, renaming would replace it.
    new sst.aws.CronV2('WebhookDelivery', {
      schedule: 'rate(1 minute)',
      function: {
        handler: 'functions/webhook-dispatcher.handler',
        nodejs,
        timeout: '55 seconds',
        environment: { ...environment, KILN_WEBHOOK_QUEUE_URL: webhookQueue.url },
        permissions: grants('WebhookDelivery'),
      },
    });
    new sst.aws.CronV2('UsageReports', {
      // Each hour is reported 15 minutes after it ended; a run that finds nothing due does nothing.
      schedule: 'rate(15 minutes)',
      function: { handler: 'functions/usage-reports.handler', nodejs, environment, permissions: grants('UsageReports') },
    });
    new sst.aws.CronV2('CertificateRenewals', {
      schedule: 'rate(1 day)',
      function: { handler: 'functions/certificate-renewals.handler', nodejs, environment, permissions: grants('CertificateRenewals') },
    });
    new sst.aws.CronV2('Health', {
      schedule: 'rate(1 minute)',
      // Like the steps, it reaches the clusters' API servers (from Kiln's egress addresses) and their machines.
      function: { handler: 'functions/health.handler', nodejs, timeout: '50 seconds', environment, permissions: grants('Health'), vpc },
    });
    new sst.aws.CronV2('Recovery', {
      schedule: 'rate(1 minute)',
      // Under the minute between runs: its slot dispatch alone may take 30 s (DISPATCH_BUDGET_MS) after the operations.
      function: { handler: 'functions/recover.handler', nodejs, timeout: '55 seconds', environment, permissions: grants('Recovery') },
    });

    return { api: api.url, alarms: alarms.arn };
  },
});
