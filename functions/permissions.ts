import { CLUSTER_TAG, KILN_IAM_PATH, SSM_AGENT_ACTIONS } from '#core';

export { KILN_IAM_PATH };

/**
 * What each of Kiln's functions, the infrastructure runner and the workflows may do in AWS: plain data built from
 * resource ARNs, which sst.config.ts turns into each one's role and functions/permissions.test.ts evaluates with an
 * IAM policy simulator. Each function gets the actions its code calls, on the resources it calls them on, with the
 * condition keys AWS offers for them (Service Authorization Reference, docs.aws.amazon.com/service-authorization/
 * latest/reference/: list_awskeymanagementservice.html, list_amazondynamodb.html, list_awssystemsmanager.html,
 * list_awssecuritytokenservice.html, list_amazonec2.html, list_amazonec2autoscaling.html,
 * list_identityandaccessmanagement.html, list_amazonelasticcontainerservice.html).
 */

/** One IAM condition, as SST's `permissions` take it. */
export interface PermissionCondition {
  test: string;
  variable: string;
  values: string[];
}

/** One statement (Allow unless it says deny), as SST's `permissions` (sst.aws.Function, sst.aws.Task) take it. */
export interface Permission {
  effect?: 'deny';
  actions: string[];
  resources: string[];
  conditions?: PermissionCondition[];
}

/** The ARNs the statements are built from; sst.config.ts resolves them from its resources. */
export interface KilnResources {
  partition: string;
  region: string;
  account: string;
  /** `<app>-<stage>-`: the state machines' names start with it. */
  namePrefix: string;
  table: string;
  sealingKey: string;
  pulumiSecretsKey: string;
  pulumiStateBucket: string;
  webhookQueue: string;
  machineRoleBoundary: string;
}

/** What the workflows' role needs besides: the functions their Task states invoke and the runner's task. */
export interface WorkflowResources {
  taskFunctions: string[];
  runnerCluster: string;
  runnerTaskDefinition: string;
  /** The runner task's own role and its execution role: the only roles the workflows may hand to ECS. */
  runnerRoles: string[];
}

/** The KMS encryption-context purposes Kiln seals secrets under with its sealing key (the `purpose` key of each context). */
type SealingPurpose =
  | 'pki'
  | 'bootstrapToken'
  | 'issuerCa'
  | 'ssh-private-key'
  | 'pendingUserAtRestKey'
  | 'webhook-secret'
  | 'infrastructure-slot-task-token';

/** What the runner creates in EC2 (tags given at creation are authorized as CreateTags with ec2:CreateAction). */
const EC2_CREATE_ACTIONS = [
  'AllocateAddress',
  'AuthorizeSecurityGroupEgress',
  'AuthorizeSecurityGroupIngress',
  'CreateInternetGateway',
  'CreateLaunchTemplate',
  'CreateLaunchTemplateVersion',
  'CreateNatGateway',
  'CreateRouteTable',
  'CreateSecurityGroup',
  'CreateSubnet',
  'CreateVpc',
  'RunInstances',
] as const;

/** The item-level DynamoDB actions Kiln's store calls (TransactWriteItems is authorized item by item as these). */
const ITEM_ACTIONS = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem'] as const;
type ItemAction = (typeof ITEM_ACTIONS)[number];

/** Some item actions on the items whose partition keys match the patterns (`dynamodb:LeadingKeys`, StringLike). */
interface TableAccess {
  partitions: readonly string[];
  actions: readonly ItemAction[];
}

/** What a function's code calls, in the code's own terms; `permissionsOf` turns it into statements. */
interface Needs {
  /**
   * Its item access by partition key, or `undefined` for every item action on the whole table. The schedulers, the
   * workflow steps and recovery work across tenants and on Kiln's own partitions (ACTIVE_OPERATIONS, ROTATIONS_DUE,
   * INFRASTRUCTURE_SLOTS, ...), whose names share no prefix with the tenants' items (packages/store/table.ts), so for
   * them the key shapes allow no narrower condition.
   */
  table?: readonly TableAccess[];
  seals?: readonly SealingPurpose[];
  unseals?: readonly SealingPurpose[];
  workflows?: readonly ('start' | 'status' | 'completeTask')[];
  /**
   * It works in the cluster's own account (AWS clients built by functions/wiring/cluster-credentials.ts): with the
   * tenant's role there, assumed with its external id, and in Kiln's account for Kiln's own clusters.
   */
  clusterAccounts?: {
    /** The at-rest data keys sealed with the cluster's own key (packages/steps/cluster-secrets.ts atRestKeySealer). */
    atRestKeys?: boolean;
    /**
     * SSM parameters under /kiln/<cluster>/ (packages/bootstrap/machine-secrets.ts), encrypted with the cluster key:
     * publish = PutParameter, withdraw = DeleteParameters of named ones (join material, a history-free republish),
     * revoke = all of a cluster's, found by path.
     */
    machineSecrets?: readonly ('publish' | 'withdraw' | 'revoke')[];
    runCommand?: boolean;
    /** packages/health/fleet.ts: read = DescribeAutoScalingGroups/DescribeInstances, resize = UpdateAutoScalingGroup, terminate = TerminateInstanceInAutoScalingGroup. */
    fleet?: readonly ('read' | 'reboot' | 'resize' | 'terminate')[];
  };
  webhookQueue?: boolean;
}

/** A tenant's items and the lookups the API keeps beside them (API keys by hash, each tenant's request bucket). */
const TENANT_PARTITIONS = ['TENANT#*', 'APIKEY#*', 'RATE#*'] as const;

/**
 * Every function's needs, by its name in sst.config.ts. Task functions are named after their Task state; each line
 * says which step body it runs (functions/tasks/*.ts) and so what that body calls.
 */
export const FUNCTION_NEEDS = {
  // functions/api.ts: orders seal a user's at-rest key and webhook secrets; kubeconfigs and SSH keys unseal.
  Api: { table: [{ partitions: TENANT_PARTITIONS, actions: ITEM_ACTIONS }], seals: ['pendingUserAtRestKey', 'webhook-secret'], unseals: ['pki', 'ssh-private-key'], workflows: ['start'] },
  // functions/webhook-sender.ts: reads its endpoint (and decrypts its secrets) and deliveries and records the outcome,
  // all in the tenant's webhook partition; a disabled endpoint's event goes on the tenant's feed, a put it cannot
  // tell from other puts in the tenant's partition (IAM has no condition on the sort key), but it reads nothing there.
  WebhookSender: {
    table: [
      { partitions: ['TENANT#*#WEBHOOKS'], actions: ['dynamodb:GetItem', 'dynamodb:PutItem'] },
      { partitions: ['TENANT#*'], actions: ['dynamodb:PutItem'] },
    ],
    unseals: ['webhook-secret'],
  },
  // functions/webhook-dispatcher.ts: takes every enabled endpoint (the WEBHOOK_ENDPOINTS index), turns its tenant's
  // events (TENANT#<t>#EVENTS) into deliveries (TENANT#<t>#WEBHOOKS) and queues the due ones.
  WebhookDelivery: { table: [{ partitions: ['WEBHOOK_ENDPOINTS', 'TENANT#*'], actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'] }], webhookQueue: true },
  RotationSchedule: { workflows: ['start'] },
  KubernetesVersionSupport: {},
  KubernetesUpgrades: { workflows: ['start'] },
  UsageReports: {},
  CertificateRenewals: { workflows: ['start'] },
  // functions/recover.ts: restarts lost executions and hands out infrastructure slots (their sealed task tokens).
  Recovery: { workflows: ['start', 'status', 'completeTask'], unseals: ['infrastructure-slot-task-token'] },
  // functions/health.ts: reads every cluster's nodes (its PKI) and machines, and starts remediations.
  Health: { unseals: ['pki'], workflows: ['start'], clusterAccounts: { fleet: ['read'] } },

  TaskPlan: { seals: ['ssh-private-key'] },
  TaskBootstrap: {
    seals: ['pki', 'bootstrapToken'],
    unseals: ['pki', 'bootstrapToken', 'pendingUserAtRestKey'],
    clusterAccounts: { atRestKeys: true, machineSecrets: ['publish'] },
  },
  TaskNetwork: { seals: ['issuerCa'], unseals: ['pki', 'issuerCa'] },
  TaskAddons: { seals: ['issuerCa'], unseals: ['pki', 'issuerCa'] },
  TaskVerify: { seals: ['issuerCa'], unseals: ['pki', 'issuerCa'] },
  TaskWaitForControlPlane: { unseals: ['pki'] },
  TaskWaitForWorkers: { unseals: ['pki'] },
  TaskMarkReady: { unseals: ['pki'], clusterAccounts: { machineSecrets: ['withdraw'] } },
  TaskMarkDeleted: {},
  TaskRecordFailure: { clusterAccounts: { machineSecrets: ['withdraw'] } },
  TaskAwaitInfrastructureSlot: { seals: ['infrastructure-slot-task-token'], unseals: ['infrastructure-slot-task-token'], workflows: ['completeTask'] },
  TaskReleaseInfrastructureSlot: { unseals: ['infrastructure-slot-task-token'], workflows: ['completeTask'] },
  TaskRotateEncryptionKey: { unseals: ['pki'], clusterAccounts: { atRestKeys: true, machineSecrets: ['publish', 'withdraw'], runCommand: true, fleet: ['read'] } },
  TaskUpdatePodSecurityDefaults: { unseals: ['pki'], clusterAccounts: { machineSecrets: ['publish'], runCommand: true, fleet: ['read'] } },
  TaskRemediateReboot: { clusterAccounts: { fleet: ['reboot'] } },
  TaskRemediateRecover: { unseals: ['pki'] },
  TaskRemediateDrain: { unseals: ['pki'] },
  TaskRemediateReplace: { unseals: ['pki'], clusterAccounts: { fleet: ['read', 'terminate'], machineSecrets: ['publish'], runCommand: true } },
  TaskRemediateAwaitReplacement: { unseals: ['pki'], clusterAccounts: { fleet: ['read'] } },
  TaskRemediateRetire: { unseals: ['pki'] },
  TaskRemediateFinish: { unseals: ['pki'], clusterAccounts: { machineSecrets: ['withdraw'] } },
  TaskRemediateFailure: { clusterAccounts: { machineSecrets: ['withdraw'] } },
  TaskUpdateDrainNodes: { unseals: ['pki'], clusterAccounts: { fleet: ['read'] } },
  TaskUpdateRemoveMachines: { unseals: ['pki'], clusterAccounts: { fleet: ['resize', 'terminate'] } },
  TaskUpdateJoinToken: { unseals: ['pki'], clusterAccounts: { machineSecrets: ['publish'] } },
  TaskUpdateAwaitNodes: { unseals: ['pki'], clusterAccounts: { fleet: ['read'] } },
  TaskUpdateRollMachines: { unseals: ['pki'], clusterAccounts: { fleet: ['read', 'resize', 'terminate'] } },
  TaskUpdateRollControlPlane: { unseals: ['pki'], clusterAccounts: { fleet: ['read', 'resize', 'terminate'], runCommand: true } },
} as const satisfies Record<string, Needs>;

export type KilnFunctionName = keyof typeof FUNCTION_NEEDS;

const condition = (test: string, variable: string, values: readonly string[]): PermissionCondition => ({ test, variable, values: [...values] });
/** The request names a resource carrying Kiln's cluster tag (any cluster's: one function serves them all). */
const taggedByKiln = (variable: string) => condition('Null', `${variable}/${CLUSTER_TAG}`, ['false']);

function tablePermissions(needs: Needs, table: string): Permission[] {
  const resources = [table, `${table}/index/*`];
  if (needs.table === undefined) return [{ actions: [...ITEM_ACTIONS], resources }];
  return needs.table.map(({ partitions, actions }) => ({ actions: [...actions], resources, conditions: [condition('ForAllValues:StringLike', 'dynamodb:LeadingKeys', partitions)] }));
}

/** The sealing key, each operation only under the purposes the function's code uses, and always bound to a tenant. */
function sealingPermissions(needs: Needs, sealingKey: string): Permission[] {
  const bound = (action: string, purposes: readonly SealingPurpose[] | undefined): Permission[] =>
    purposes === undefined || purposes.length === 0
      ? []
      : [
          {
            actions: [action],
            resources: [sealingKey],
            conditions: [condition('StringEquals', 'kms:EncryptionContext:purpose', purposes), condition('Null', 'kms:EncryptionContext:tenantId', ['false'])],
          },
        ];
  return [...bound('kms:GenerateDataKey', needs.seals), ...bound('kms:Decrypt', needs.unseals)];
}

const WORKFLOW_ACTIONS = { start: 'states:StartExecution', status: 'states:DescribeExecution', completeTask: 'states:SendTaskSuccess' } as const;

function workflowCalls(needs: Needs, r: KilnResources): Permission[] {
  return (needs.workflows ?? []).map((call) => ({
    actions: [WORKFLOW_ACTIONS[call]],
    resources:
      call === 'start'
        ? [`arn:${r.partition}:states:${r.region}:${r.account}:stateMachine:${r.namePrefix}*`]
        : call === 'status'
          ? [`arn:${r.partition}:states:${r.region}:${r.account}:execution:${r.namePrefix}*:*`]
          : // SendTaskSuccess takes no resource-level scoping; the token is the capability.
            ['*'],
  }));
}

/** Calls in a cluster's account: Kiln's own (the statements below) or a tenant's (through its role, below). */
function clusterAccountPermissions(needs: Needs, r: KilnResources): Permission[] {
  const inCluster = needs.clusterAccounts;
  if (inCluster === undefined) return [];
  const { partition, account } = r;
  const clusterKeys = [`arn:${partition}:kms:*:${account}:key/*`];
  const kiln = condition('ForAnyValue:StringLike', 'kms:ResourceAliases', ['alias/kiln/*']);
  const fleet = inCluster.fleet ?? [];
  const secrets = inCluster.machineSecrets ?? [];
  const parameters = [`arn:${partition}:ssm:*:${account}:parameter/kiln/*`];
  return [
    // Tenants' accounts: only roles, only with an external id (which their trust policies check).
    { actions: ['sts:AssumeRole'], resources: [`arn:${partition}:iam::*:role/*`], conditions: [condition('Null', 'sts:ExternalId', ['false'])] },
    ...(inCluster.atRestKeys === true
      ? [{ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: clusterKeys, conditions: [kiln, condition('StringLike', 'kms:EncryptionContext:purpose', ['atRestKey*'])] }]
      : []),
    ...(secrets.includes('publish')
      ? [
          { actions: ['ssm:PutParameter'], resources: parameters },
          // SecureString parameters under the cluster's key: SSM asks KMS on the caller's behalf.
          { actions: ['kms:Encrypt', 'kms:GenerateDataKey'], resources: clusterKeys, conditions: [kiln, condition('StringLike', 'kms:ViaService', ['ssm.*.amazonaws.com'])] },
        ]
      : []),
    ...(secrets.includes('revoke') ? [{ actions: ['ssm:GetParametersByPath', 'ssm:DeleteParameters'], resources: parameters }] : []),
    ...(secrets.includes('withdraw') && !secrets.includes('revoke') ? [{ actions: ['ssm:DeleteParameters'], resources: parameters }] : []),
    ...(inCluster.runCommand === true
      ? [
          // AWS's own document (its ARN names no account; `*` matches the empty one).
          { actions: ['ssm:SendCommand'], resources: [`arn:${partition}:ssm:*:*:document/AWS-RunShellScript`] },
          { actions: ['ssm:SendCommand'], resources: [`arn:${partition}:ec2:*:${account}:instance/*`], conditions: [taggedByKiln('ssm:resourceTag')] },
          // GetCommandInvocation takes no resource-level scoping.
          { actions: ['ssm:GetCommandInvocation'], resources: ['*'] },
        ]
      : []),
    // Neither describe call takes resource-level scoping.
    ...(fleet.includes('read') ? [{ actions: ['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances'], resources: ['*'] }] : []),
    ...(fleet.includes('reboot') ? [{ actions: ['ec2:RebootInstances'], resources: [`arn:${partition}:ec2:*:${account}:instance/*`], conditions: [taggedByKiln('aws:ResourceTag')] }] : []),
    ...(fleet.includes('resize') || fleet.includes('terminate')
      ? [
          {
            actions: [...(fleet.includes('resize') ? ['autoscaling:UpdateAutoScalingGroup'] : []), ...(fleet.includes('terminate') ? ['autoscaling:TerminateInstanceInAutoScalingGroup'] : [])],
            resources: [`arn:${partition}:autoscaling:*:${account}:autoScalingGroup:*:autoScalingGroupName/kiln-*`],
            conditions: [taggedByKiln('autoscaling:ResourceTag')],
          },
        ]
      : []),
  ];
}

/** What a function with these needs may do (besides the logs and traces every function writes). */
function permissionsOf(needs: Needs, r: KilnResources): Permission[] {
  return [
    ...tablePermissions(needs, r.table),
    ...sealingPermissions(needs, r.sealingKey),
    ...workflowCalls(needs, r),
    ...clusterAccountPermissions(needs, r),
    ...(needs.webhookQueue === true ? [{ actions: ['sqs:SendMessage'], resources: [r.webhookQueue] }] : []),
  ];
}

export function functionPermissions(name: KilnFunctionName, resources: KilnResources): Permission[] {
  return permissionsOf(FUNCTION_NEEDS[name], resources);
}

/**
 * The infrastructure runner (functions/tasks/infrastructure.ts): Pulumi up and destroy of packages/infra/
 * cluster-program.ts with the S3 state backend and the KMS secrets provider, then its step's bookkeeping. It manages
 * only the resource types that program declares, named `kiln-<hash>-...` where the service lets a policy name them;
 * in a tenant's account it works through the tenant's role, and needs only AssumeRole here.
 */
export function runnerPermissions(r: KilnResources): Permission[] {
  const { partition, account } = r;
  const ec2 = `arn:${partition}:ec2:*:${account}`;
  const iam = `arn:${partition}:iam::${account}`;
  const autoScalingRole = `${iam}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_kiln-*`;
  const kilnTagged = taggedByKiln('aws:ResourceTag');
  return [
    ...permissionsOf({ clusterAccounts: { machineSecrets: ['revoke'] } }, r),
    { actions: ['s3:ListBucket'], resources: [r.pulumiStateBucket] },
    { actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], resources: [`${r.pulumiStateBucket}/*`] },
    { actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'], resources: [r.pulumiSecretsKey] },

    // EC2 (the VPC and what is in it, launch templates): describing takes no resource-level scoping; creating may name
    // only resources of Kiln's account; changing or deleting only what carries Kiln's cluster tag.
    {
      actions: [
        'ec2:DescribeAccountAttributes',
        'ec2:DescribeAddresses',
        'ec2:DescribeAddressesAttribute',
        'ec2:DescribeAvailabilityZones',
        'ec2:DescribeImages',
        'ec2:DescribeInternetGateways',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
        'ec2:DescribeNatGateways',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeRouteTables',
        'ec2:DescribeSecurityGroupRules',
        'ec2:DescribeSecurityGroups',
        'ec2:DescribeSubnets',
        'ec2:DescribeTags',
        'ec2:DescribeVpcAttribute',
        'ec2:DescribeVpcs',
        'elasticloadbalancing:DescribeListenerAttributes',
        'elasticloadbalancing:DescribeListeners',
        'elasticloadbalancing:DescribeLoadBalancerAttributes',
        'elasticloadbalancing:DescribeLoadBalancers',
        'elasticloadbalancing:DescribeTags',
        'elasticloadbalancing:DescribeTargetGroupAttributes',
        'elasticloadbalancing:DescribeTargetGroups',
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeScalingActivities',
        'autoscaling:DescribeTrafficSources',
        'kms:ListAliases',
      ],
      resources: ['*'],
    },
    {
      actions: [
        'ec2:AllocateAddress',
        'ec2:CreateInternetGateway',
        'ec2:CreateLaunchTemplate',
        'ec2:CreateNatGateway',
        'ec2:CreateRouteTable',
        'ec2:CreateSecurityGroup',
        'ec2:CreateSubnet',
        'ec2:CreateVpc',
      ],
      resources: [`${ec2}:*`],
    },
    // Tags only on what it is creating (or, below, on what already carries Kiln's tag): a tag put on anything else
    // would let the conditions below reach it.
    { actions: ['ec2:CreateTags'], resources: [`${ec2}:*`], conditions: [condition('StringEquals', 'ec2:CreateAction', EC2_CREATE_ACTIONS)] },
    {
      actions: [
        'ec2:AssociateRouteTable',
        'ec2:AttachInternetGateway',
        'ec2:AuthorizeSecurityGroupEgress',
        'ec2:AuthorizeSecurityGroupIngress',
        'ec2:CreateLaunchTemplateVersion',
        'ec2:CreateRoute',
        'ec2:CreateTags',
        'ec2:DeleteInternetGateway',
        'ec2:DeleteLaunchTemplate',
        'ec2:DeleteNatGateway',
        'ec2:DeleteRoute',
        'ec2:DeleteRouteTable',
        'ec2:DeleteSecurityGroup',
        'ec2:DeleteSubnet',
        'ec2:DeleteTags',
        'ec2:DeleteVpc',
        'ec2:DetachInternetGateway',
        'ec2:DisassociateAddress',
        'ec2:DisassociateRouteTable',
        'ec2:ModifyLaunchTemplate',
        'ec2:ModifySecurityGroupRules',
        'ec2:ModifySubnetAttribute',
        'ec2:ModifyVpcAttribute',
        'ec2:ReleaseAddress',
        'ec2:ReplaceRoute',
        'ec2:RevokeSecurityGroupEgress',
        'ec2:RevokeSecurityGroupIngress',
      ],
      resources: [`${ec2}:*`],
      conditions: [kilnTagged],
    },
    // Auto Scaling launches the groups' machines from their launch templates: the caller must be allowed RunInstances
    // on what they name (public images included).
    { actions: ['ec2:RunInstances'], resources: [`${ec2}:*`, `arn:${partition}:ec2:*::image/*`] },
    {
      actions: [
        'elasticloadbalancing:AddTags',
        'elasticloadbalancing:CreateListener',
        'elasticloadbalancing:CreateLoadBalancer',
        'elasticloadbalancing:CreateTargetGroup',
        'elasticloadbalancing:DeleteListener',
        'elasticloadbalancing:DeleteLoadBalancer',
        'elasticloadbalancing:DeleteTargetGroup',
        'elasticloadbalancing:ModifyListener',
        'elasticloadbalancing:ModifyLoadBalancerAttributes',
        'elasticloadbalancing:ModifyTargetGroup',
        'elasticloadbalancing:ModifyTargetGroupAttributes',
        'elasticloadbalancing:RemoveTags',
        'elasticloadbalancing:SetSecurityGroups',
        'elasticloadbalancing:SetSubnets',
      ],
      resources: [
        `arn:${partition}:elasticloadbalancing:*:${account}:loadbalancer/net/kiln-*`,
        `arn:${partition}:elasticloadbalancing:*:${account}:targetgroup/kiln-*`,
        `arn:${partition}:elasticloadbalancing:*:${account}:listener/net/kiln-*`,
      ],
    },
    {
      actions: [
        'autoscaling:AttachTrafficSources',
        'autoscaling:CreateAutoScalingGroup',
        'autoscaling:CreateOrUpdateTags',
        'autoscaling:DeleteAutoScalingGroup',
        'autoscaling:DeleteTags',
        'autoscaling:DetachTrafficSources',
        'autoscaling:UpdateAutoScalingGroup',
      ],
      resources: [`arn:${partition}:autoscaling:*:${account}:autoScalingGroup:*:autoScalingGroupName/kiln-*`],
    },
    // The cluster key: created with Kiln's tags (and so only then), managed only while it carries them.
    { actions: ['kms:CreateKey', 'kms:TagResource'], resources: ['*'], conditions: [taggedByKiln('aws:RequestTag')] },
    {
      actions: [
        'kms:CreateAlias',
        'kms:DeleteAlias',
        'kms:DescribeKey',
        'kms:EnableKeyRotation',
        'kms:GetKeyPolicy',
        'kms:GetKeyRotationStatus',
        'kms:ListResourceTags',
        'kms:PutKeyPolicy',
        'kms:ScheduleKeyDeletion',
        'kms:UntagResource',
        'kms:UpdateKeyDescription',
      ],
      resources: [`arn:${partition}:kms:*:${account}:key/*`],
      conditions: [kilnTagged],
    },
    { actions: ['kms:CreateAlias', 'kms:DeleteAlias'], resources: [`arn:${partition}:kms:*:${account}:alias/kiln/*`] },
    // KMS cannot tell a tag put at CreateKey from one put on an existing key, so Kiln's own keys are kept out by name:
    // tagged like a cluster's, they would otherwise come within the statement above.
    {
      effect: 'deny',
      actions: ['kms:TagResource', 'kms:UntagResource', 'kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion', 'kms:CreateAlias', 'kms:DeleteAlias', 'kms:UpdateKeyDescription'],
      resources: [r.sealingKey, r.pulumiSecretsKey],
    },

    // IAM only under Kiln's path, and a role only with the machines' boundary (it is the ceiling of whatever
    // policy the program writes into it); the boundary can be neither changed nor removed.
    {
      actions: ['iam:CreateRole', 'iam:PutRolePolicy'],
      resources: [`${iam}:role${KILN_IAM_PATH}*`],
      conditions: [condition('StringEquals', 'iam:PermissionsBoundary', [r.machineRoleBoundary])],
    },
    {
      actions: [
        'iam:DeleteRole',
        'iam:DeleteRolePolicy',
        'iam:GetRole',
        'iam:GetRolePolicy',
        'iam:ListAttachedRolePolicies',
        'iam:ListInstanceProfilesForRole',
        'iam:ListRolePolicies',
        'iam:TagRole',
        'iam:UntagRole',
      ],
      resources: [`${iam}:role${KILN_IAM_PATH}*`],
    },
    {
      actions: [
        'iam:AddRoleToInstanceProfile',
        'iam:CreateInstanceProfile',
        'iam:DeleteInstanceProfile',
        'iam:GetInstanceProfile',
        'iam:RemoveRoleFromInstanceProfile',
        'iam:TagInstanceProfile',
        'iam:UntagInstanceProfile',
      ],
      resources: [`${iam}:instance-profile${KILN_IAM_PATH}*`],
    },
    { actions: ['iam:PassRole'], resources: [`${iam}:role${KILN_IAM_PATH}*`], conditions: [condition('StringEquals', 'iam:PassedToService', ['ec2.amazonaws.com'])] },
    // The cluster's own Auto Scaling service-linked role (AWS fixes its path): created, handed to its groups, deleted.
    { actions: ['iam:CreateServiceLinkedRole'], resources: [autoScalingRole], conditions: [condition('StringEquals', 'iam:AWSServiceName', ['autoscaling.amazonaws.com'])] },
    { actions: ['iam:DeleteServiceLinkedRole', 'iam:GetRole', 'iam:GetServiceLinkedRoleDeletionStatus'], resources: [autoScalingRole] },
    { actions: ['iam:PassRole'], resources: [autoScalingRole], conditions: [condition('StringEquals', 'iam:PassedToService', ['autoscaling.amazonaws.com'])] },
    // Elastic Load Balancing creates its own service-linked role with the account's first load balancer.
    {
      actions: ['iam:CreateServiceLinkedRole'],
      resources: [`${iam}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing`],
      conditions: [condition('StringEquals', 'iam:AWSServiceName', ['elasticloadbalancing.amazonaws.com'])],
    },
  ];
}

/**
 * The permissions boundary of every machine role the runner creates in Kiln's account: the most any machine may ever
 * do, whatever policy the program writes (what packages/infra/cluster-program.ts machineInstanceProfile grants, for
 * any Kiln cluster).
 */
export function machineRoleBoundary(r: Pick<KilnResources, 'partition' | 'account'>): Permission[] {
  const { partition, account } = r;
  return [
    { actions: ['ssm:GetParameter', 'ssm:PutParameter'], resources: [`arn:${partition}:ssm:*:${account}:parameter/kiln/*`] },
    { actions: [...SSM_AGENT_ACTIONS], resources: ['*'] },
    {
      actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:DescribeKey'],
      resources: [`arn:${partition}:kms:*:${account}:key/*`],
      conditions: [condition('ForAnyValue:StringLike', 'kms:ResourceAliases', ['alias/kiln/*'])],
    },
  ];
}

/**
 * The workflows' role: invoke the Task functions, run the runner's task with `.sync` (AWS Step Functions Developer
 * Guide, "IAM policies for Amazon ECS/AWS Fargate": RunTask on the task definition, StopTask and DescribeTasks, the
 * managed StepFunctionsGetEventsForECSTaskRule), handing ECS only the runner's roles, and write logs and traces.
 */
export function workflowPermissions(r: KilnResources, w: WorkflowResources): Permission[] {
  const { partition, region, account } = r;
  const onRunnerCluster = [condition('ArnEquals', 'ecs:cluster', [w.runnerCluster])];
  return [
    { actions: ['lambda:InvokeFunction'], resources: w.taskFunctions },
    // Any revision of the runner's task definition (each deploy registers one).
    { actions: ['ecs:RunTask'], resources: [`${w.runnerTaskDefinition.replace(/:\d+$/, '')}:*`], conditions: onRunnerCluster },
    { actions: ['ecs:StopTask', 'ecs:DescribeTasks'], resources: [`arn:${partition}:ecs:${region}:${account}:task/*`], conditions: onRunnerCluster },
    { actions: ['iam:PassRole'], resources: w.runnerRoles, conditions: [condition('StringEquals', 'iam:PassedToService', ['ecs-tasks.amazonaws.com'])] },
    { actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'], resources: [`arn:${partition}:events:${region}:${account}:rule/StepFunctionsGetEventsForECSTaskRule`] },
    // Execution logs to CloudWatch Logs (log delivery takes no resource-level scoping) and traces to X-Ray.
    {
      actions: [
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ],
      resources: ['*'],
    },
    { actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'], resources: ['*'] },
  ];
}

/** An IAM policy document of the statements, as IAM reads it (the shape SST's policy documents take too). */
export function policyDocument(permissions: readonly Permission[]): { Version: '2012-10-17'; Statement: Record<string, unknown>[] } {
  return {
    Version: '2012-10-17',
    Statement: permissions.map(({ effect, actions, resources, conditions }) => {
      const grouped: Record<string, Record<string, string[]>> = {};
      for (const { test, variable, values } of conditions ?? []) grouped[test] = { ...grouped[test], [variable]: values };
      return { Effect: effect === 'deny' ? 'Deny' : 'Allow', Action: actions, Resource: resources, ...(conditions === undefined ? {} : { Condition: grouped }) };
    }),
  };
}
