import { readFileSync } from 'node:fs';
import { type Simulation, runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from 'vitest';
import { CLUSTER_TAG, KILN_IAM_PATH, SSM_AGENT_ACTIONS } from '#core';
import { CLUSTER_TAG as PROGRAM_CLUSTER_TAG, SSM_AGENT_ACTIONS as PROGRAM_SSM_AGENT_ACTIONS } from '#infra';
import {
  FUNCTION_NEEDS,
  type KilnFunctionName,
  type KilnResources,
  type Permission,
  functionPermissions,
  machineRoleBoundary,
  policyDocument,
  runnerPermissions,
  workflowPermissions,
} from './permissions.ts';

const KILN = '111122223333';
const TENANT = '444455556666';
const REGION = 'eu-central-1';
const resources: KilnResources = {
  partition: 'aws',
  region: REGION,
  account: KILN,
  namePrefix: 'kiln-prod-',
  table: `arn:aws:dynamodb:${REGION}:${KILN}:table/kiln-prod-TableTable-abc`,
  sealingKey: `arn:aws:kms:${REGION}:${KILN}:key/0000aaaa-1111-2222-3333-444455556666`,
  pulumiSecretsKey: `arn:aws:kms:${REGION}:${KILN}:key/9999aaaa-1111-2222-3333-444455556666`,
  pulumiStateBucket: 'arn:aws:s3:::kiln-prod-pulumistatebucket-abc',
  webhookQueue: `arn:aws:sqs:${REGION}:${KILN}:kiln-prod-WebhookDeliveriesQueue`,
  machineRoleBoundary: `arn:aws:iam::${KILN}:policy${KILN_IAM_PATH}kiln-prod-MachineRoleBoundary`,
};
const workflow = {
  taskFunctions: [`arn:aws:lambda:${REGION}:${KILN}:function:kiln-prod-TaskPlanFunction`],
  runnerCluster: `arn:aws:ecs:${REGION}:${KILN}:cluster/kiln-prod-RunnersCluster`,
  runnerTaskDefinition: `arn:aws:ecs:${REGION}:${KILN}:task-definition/kiln-prod-Infrastructure:7`,
  runnerRoles: [`arn:aws:iam::${KILN}:role/kiln-prod-InfrastructureTaskRole`, `arn:aws:iam::${KILN}:role/kiln-prod-InfrastructureExecutionRole`],
};

/** One call a function might make: the action, the resource it names, and what the request context holds. */
interface Call {
  label: string;
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}
type Decision = 'allowed' | 'denied';

/** The default key policy (the account's IAM policies decide) and a tenant role's trust policy (Kiln's account, Kiln's external id). */
function resourcePolicyOf(call: Call): unknown {
  if (call.action.startsWith('kms:')) {
    return { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${KILN}:root` }, Action: 'kms:*', Resource: '*' }] };
  }
  if (call.action === 'sts:AssumeRole') {
    return {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${KILN}:root` }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'sts:ExternalId': 'kiln-issued' } } }],
    };
  }
  return undefined;
}

const accountOf = (arn: string) => /^arn:aws:[^:]*:[^:]*:(\d{12}):/.exec(arn)?.[1] ?? KILN;

async function decide(permissions: readonly Permission[], call: Call, boundary?: readonly Permission[]): Promise<Decision> {
  const resourcePolicy = resourcePolicyOf(call);
  const simulation: Simulation = {
    request: {
      principal: `arn:aws:iam::${KILN}:role/kiln-prod-function`,
      action: call.action,
      resource: { resource: call.resource, accountId: accountOf(call.resource) },
      contextVariables: call.context ?? {},
    },
    identityPolicies: [{ name: 'inline', policy: policyDocument(permissions) }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(resourcePolicy === undefined ? {} : { resourcePolicy }),
    ...(boundary === undefined ? {} : { permissionBoundaryPolicies: [{ name: 'boundary', policy: policyDocument(boundary) }] }),
  };
  const checked = await runSimulation(simulation, {});
  // A policy or request the simulator cannot read (an unknown action, a resource of the wrong type) fails the test.
  if (checked.resultType !== 'single') throw new Error(`${call.label}: ${JSON.stringify(checked.resultType === 'error' ? checked.errors : checked.resultType)}`);
  // It matches templated context keys only by their tag-like `/` form (aws:ResourceTag/<key>), so it sets aside
  // kms:EncryptionContext:<key>; any other key it sets aside is a mistake in the table. With those keys, the decision
  // is the evaluation alone (the request passed the checks above).
  const setAside = checked.result.ignoredContextKeys ?? [];
  const unknown = setAside.filter((name) => !name.startsWith('kms:EncryptionContext:'));
  if (unknown.length > 0) throw new Error(`${call.label}: no such context keys for ${call.action}: ${unknown.join(', ')}`);
  // Its unchecked run loads a plain resource policy without the name its analysis reads; the policy library's
  // validated shape (@cloud-copilot/iam-policy ValidatedPolicy) carries one.
  const named = resourcePolicy === undefined ? {} : { resourcePolicy: { __validated: true, policyDocument: resourcePolicy, metadata: { name: 'resource' }, errors: [] } };
  const result = setAside.length === 0 ? checked.overallResult : runUnsafeSimulation({ ...simulation, ...named }, {});
  return result === 'Allowed' ? 'allowed' : 'denied';
}

const key = (context: Record<string, string>) =>
  Object.fromEntries(Object.entries(context).map(([name, value]) => [`kms:EncryptionContext:${name}`, value]));
const sealed = (action: 'kms:Decrypt' | 'kms:GenerateDataKey', purpose: string, extra: Record<string, string> = { clusterId: 'cl_1' }): Call => ({
  label: `${action === 'kms:Decrypt' ? 'unseal' : 'seal'} ${purpose}`,
  action,
  resource: resources.sealingKey,
  context: key({ tenantId: 'tn_1', purpose, ...extra }),
});
const item = (action: string, partition: string): Call => ({ label: `${action} ${partition}`, action, resource: resources.table, context: { 'dynamodb:LeadingKeys': [partition] } });
const instance = `arn:aws:ec2:${REGION}:${KILN}:instance/i-0123456789abcdef0`;
const CALLS = {
  sendCommandToKilnMachine: { label: 'ssm:SendCommand to a Kiln machine', action: 'ssm:SendCommand', resource: instance, context: { [`ssm:resourceTag/${CLUSTER_TAG}`]: 'cl_1' } },
  sendCommandToOtherMachine: { label: 'ssm:SendCommand to a machine without Kiln tag', action: 'ssm:SendCommand', resource: instance },
  assumeTenantRole: { label: 'sts:AssumeRole tenant role with external id', action: 'sts:AssumeRole', resource: `arn:aws:iam::${TENANT}:role/kiln`, context: { 'sts:ExternalId': 'kiln-issued' } },
  assumeWithoutExternalId: { label: 'sts:AssumeRole without external id', action: 'sts:AssumeRole', resource: `arn:aws:iam::${TENANT}:role/kiln` },
  decryptWithoutContext: { label: 'kms:Decrypt sealing key, no context', action: 'kms:Decrypt', resource: resources.sealingKey },
  rebootKilnMachine: { label: 'ec2:RebootInstances Kiln machine', action: 'ec2:RebootInstances', resource: instance, context: { [`aws:ResourceTag/${CLUSTER_TAG}`]: 'cl_1' } },
  rebootOtherMachine: { label: 'ec2:RebootInstances untagged machine', action: 'ec2:RebootInstances', resource: instance },
  startProvision: { label: 'states:StartExecution provision', action: 'states:StartExecution', resource: `arn:aws:states:${REGION}:${KILN}:stateMachine:kiln-prod-provision` },
  startForeignMachine: { label: 'states:StartExecution another app', action: 'states:StartExecution', resource: `arn:aws:states:${REGION}:${KILN}:stateMachine:billing-prod-invoice` },
  queueWebhook: { label: 'sqs:SendMessage webhook queue', action: 'sqs:SendMessage', resource: resources.webhookQueue },
  putMachineSecret: { label: 'ssm:PutParameter /kiln/cl_1/worker/join-token', action: 'ssm:PutParameter', resource: `arn:aws:ssm:${REGION}:${KILN}:parameter/kiln/cl_1/worker/join-token` },
  putOtherParameter: { label: 'ssm:PutParameter /other', action: 'ssm:PutParameter', resource: `arn:aws:ssm:${REGION}:${KILN}:parameter/other/x` },
} satisfies Record<string, Call>;

/** The table the test prints and asserts: who, what, and the decision IAM would make. */
const FUNCTION_CALLS: Record<string, { allowed: Call[]; denied: Call[] }> = {
  Api: {
    allowed: [
      item('dynamodb:GetItem', 'TENANT#tn_1'),
      item('dynamodb:PutItem', 'APIKEY#0f3a'),
      sealed('kms:GenerateDataKey', 'webhook-secret', { webhookEndpointId: 'we_1' }),
      sealed('kms:Decrypt', 'pki'),
      CALLS.startProvision,
    ],
    denied: [
      item('dynamodb:GetItem', 'INFRASTRUCTURE_SLOTS'),
      { label: 'dynamodb:Scan (every tenant)', action: 'dynamodb:Scan', resource: resources.table },
      sealed('kms:Decrypt', 'webhook-secret', { webhookEndpointId: 'we_1' }),
      sealed('kms:Decrypt', 'bootstrapToken'),
      CALLS.decryptWithoutContext,
      CALLS.sendCommandToKilnMachine,
      CALLS.assumeTenantRole,
      CALLS.rebootKilnMachine,
      CALLS.startForeignMachine,
      CALLS.putMachineSecret,
    ],
  },
  WebhookSender: {
    allowed: [
      item('dynamodb:GetItem', 'TENANT#tn_1#WEBHOOKS'),
      item('dynamodb:PutItem', 'TENANT#tn_1#WEBHOOKS'),
      item('dynamodb:PutItem', 'TENANT#tn_1'),
      sealed('kms:Decrypt', 'webhook-secret', { webhookEndpointId: 'we_1' }),
    ],
    denied: [
      item('dynamodb:GetItem', 'TENANT#tn_1'),
      item('dynamodb:Query', 'TENANT#tn_1'),
      item('dynamodb:DeleteItem', 'TENANT#tn_1'),
      item('dynamodb:GetItem', 'APIKEY#0f3a'),
      item('dynamodb:Query', 'ACTIVE_OPERATIONS'),
      sealed('kms:Decrypt', 'pki'),
      sealed('kms:Decrypt', 'ssh-private-key'),
      sealed('kms:GenerateDataKey', 'webhook-secret', { webhookEndpointId: 'we_1' }),
      CALLS.decryptWithoutContext,
      CALLS.sendCommandToKilnMachine,
      CALLS.assumeTenantRole,
      CALLS.queueWebhook,
    ],
  },
  WebhookDelivery: {
    allowed: [
      CALLS.queueWebhook,
      item('dynamodb:Query', 'WEBHOOK_ENDPOINTS'),
      item('dynamodb:Query', 'TENANT#tn_1#EVENTS'),
      item('dynamodb:UpdateItem', 'TENANT#tn_1#WEBHOOKS'),
    ],
    denied: [
      sealed('kms:Decrypt', 'webhook-secret', { webhookEndpointId: 'we_1' }),
      item('dynamodb:GetItem', 'APIKEY#0f3a'),
      item('dynamodb:DeleteItem', 'TENANT#tn_1'),
    ],
  },
  Recovery: {
    allowed: [
      sealed('kms:Decrypt', 'infrastructure-slot-task-token', { operationId: 'op_1' }),
    ],
    denied: [
      sealed('kms:Decrypt', 'pki'),
      CALLS.assumeTenantRole,
    ],
  },
  Health: {
    allowed: [
      { label: 'ec2:DescribeInstances', action: 'ec2:DescribeInstances', resource: '*' },
      CALLS.assumeTenantRole,
    ],
    denied: [
      CALLS.assumeWithoutExternalId,
      CALLS.rebootKilnMachine,
      CALLS.sendCommandToKilnMachine,
    ],
  },
  TaskPlan: {
    allowed: [
      sealed('kms:GenerateDataKey', 'ssh-private-key'),
    ],
    denied: [
      sealed('kms:Decrypt', 'ssh-private-key'),
      CALLS.assumeTenantRole,
    ],
  },
  TaskBootstrap: {
    allowed: [
      CALLS.putMachineSecret,
    ],
    denied: [
      CALLS.putOtherParameter,
      CALLS.sendCommandToKilnMachine,
    ],
  },
  TaskRemediateReboot: {
    allowed: [
      CALLS.rebootKilnMachine,
    ],
    denied: [
      CALLS.rebootOtherMachine,
      CALLS.sendCommandToKilnMachine,
    ],
  },
  TaskRemediateReplace: {
    allowed: [
      CALLS.sendCommandToKilnMachine,
      { label: 'ssm:SendCommand AWS-RunShellScript', action: 'ssm:SendCommand', resource: `arn:aws:ssm:${REGION}:${KILN}:document/AWS-RunShellScript` },
    ],
    denied: [
      CALLS.sendCommandToOtherMachine,
      { label: 'ssm:SendCommand AWS-RunPowerShellScript', action: 'ssm:SendCommand', resource: `arn:aws:ssm:${REGION}:${KILN}:document/AWS-RunPowerShellScript` },
    ],
  },
  TaskUpdateRemoveMachines: {
    allowed: [
      { label: 'autoscaling:UpdateAutoScalingGroup Kiln group', action: 'autoscaling:UpdateAutoScalingGroup', resource: `arn:aws:autoscaling:${REGION}:${KILN}:autoScalingGroup:1f2e:autoScalingGroupName/kiln-0a1b2c3d4e-pool-general-1a2b`, context: { [`autoscaling:ResourceTag/${CLUSTER_TAG}`]: 'cl_1' } },
    ],
    denied: [
      { label: 'autoscaling:UpdateAutoScalingGroup other group', action: 'autoscaling:UpdateAutoScalingGroup', resource: `arn:aws:autoscaling:${REGION}:${KILN}:autoScalingGroup:1f2e:autoScalingGroupName/payments` },
    ],
  },
};

const iamArn = (kind: string, path: string, name: string) => `arn:aws:iam::${KILN}:${kind}${path}${name}`;
const RUNNER_CALLS: Record<string, { allowed: Call[]; denied: Call[] }> = {
  runner: {
    allowed: [
      { label: 'iam:CreateRole /kiln/ with the boundary', action: 'iam:CreateRole', resource: iamArn('role', KILN_IAM_PATH, 'kiln-0a1b2c3d4e-cp-1'), context: { 'iam:PermissionsBoundary': resources.machineRoleBoundary } },
      { label: 'iam:PutRolePolicy /kiln/ role with the boundary', action: 'iam:PutRolePolicy', resource: iamArn('role', KILN_IAM_PATH, 'x'), context: { 'iam:PermissionsBoundary': resources.machineRoleBoundary } },
      { label: 'iam:PassRole /kiln/ role to EC2', action: 'iam:PassRole', resource: iamArn('role', KILN_IAM_PATH, 'x'), context: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
      { label: 'iam:CreateInstanceProfile /kiln/', action: 'iam:CreateInstanceProfile', resource: iamArn('instance-profile', KILN_IAM_PATH, 'x') },
      { label: 'ec2:CreateTags on the VPC it creates', action: 'ec2:CreateTags', resource: `arn:aws:ec2:${REGION}:${KILN}:vpc/vpc-1`, context: { 'ec2:CreateAction': 'CreateVpc' } },
      { label: 'ec2:DeleteVpc of a Kiln cluster', action: 'ec2:DeleteVpc', resource: `arn:aws:ec2:${REGION}:${KILN}:vpc/vpc-1`, context: { [`aws:ResourceTag/${CLUSTER_TAG}`]: 'cl_1' } },
      CALLS.assumeTenantRole,
    ],
    denied: [
      { label: 'iam:CreateRole /kiln/ without a boundary', action: 'iam:CreateRole', resource: iamArn('role', KILN_IAM_PATH, 'kiln-0a1b2c3d4e-cp-1') },
      { label: 'iam:CreateRole /kiln/ with another boundary', action: 'iam:CreateRole', resource: iamArn('role', KILN_IAM_PATH, 'x'), context: { 'iam:PermissionsBoundary': 'arn:aws:iam::aws:policy/AdministratorAccess' } },
      { label: 'iam:CreateRole outside /kiln/', action: 'iam:CreateRole', resource: iamArn('role', '/', 'admin'), context: { 'iam:PermissionsBoundary': resources.machineRoleBoundary } },
      { label: 'iam:PutRolePolicy role outside /kiln/', action: 'iam:PutRolePolicy', resource: iamArn('role', '/', 'kiln-prod-ApiRole') },
      { label: 'iam:AttachRolePolicy /kiln/ role', action: 'iam:AttachRolePolicy', resource: iamArn('role', KILN_IAM_PATH, 'x'), context: { 'iam:PermissionsBoundary': resources.machineRoleBoundary, 'iam:PolicyARN': 'arn:aws:iam::aws:policy/AdministratorAccess' } },
      { label: 'iam:DeleteRolePermissionsBoundary /kiln/ role', action: 'iam:DeleteRolePermissionsBoundary', resource: iamArn('role', KILN_IAM_PATH, 'x') },
      { label: 'iam:PassRole a Kiln function role to Lambda', action: 'iam:PassRole', resource: iamArn('role', '/', 'kiln-prod-ApiRole'), context: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      { label: 'iam:CreateUser', action: 'iam:CreateUser', resource: iamArn('user', '/', 'backdoor') },
      { label: 'iam:CreateInstanceProfile outside /kiln/', action: 'iam:CreateInstanceProfile', resource: iamArn('instance-profile', '/', 'x') },
      { label: "ec2:DeleteVpc of Kiln's own VPC (untagged)", action: 'ec2:DeleteVpc', resource: `arn:aws:ec2:${REGION}:${KILN}:vpc/vpc-2` },
      { label: 'dynamodb:DeleteTable', action: 'dynamodb:DeleteTable', resource: resources.table },
      { label: "ec2:CreateTags on Kiln's own VPC", action: 'ec2:CreateTags', resource: `arn:aws:ec2:${REGION}:${KILN}:vpc/vpc-2`, context: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'cl_1' } },
      { label: 'kms:TagResource sealing key with a cluster tag', action: 'kms:TagResource', resource: resources.sealingKey, context: { [`aws:RequestTag/${CLUSTER_TAG}`]: 'cl_1' } },
      { label: 'kms:ScheduleKeyDeletion sealing key tagged like a cluster', action: 'kms:ScheduleKeyDeletion', resource: resources.sealingKey, context: { [`aws:ResourceTag/${CLUSTER_TAG}`]: 'cl_1' } },
      { label: 'kms:Decrypt sealing key', action: 'kms:Decrypt', resource: resources.sealingKey, context: key({ tenantId: 'tn_1', purpose: 'pki', clusterId: 'cl_1' }) },
      { label: 'kms:ScheduleKeyDeletion sealing key', action: 'kms:ScheduleKeyDeletion', resource: resources.sealingKey },
      CALLS.sendCommandToKilnMachine,
    ],
  },
  workflows: {
    allowed: [
      { label: 'iam:PassRole runner task role to ECS', action: 'iam:PassRole', resource: workflow.runnerRoles[0] ?? '', context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      { label: 'ecs:RunTask runner task definition', action: 'ecs:RunTask', resource: workflow.runnerTaskDefinition.replace(/:7$/, ':8'), context: { 'ecs:cluster': workflow.runnerCluster } },
    ],
    denied: [
      { label: 'iam:PassRole runner task role to Lambda', action: 'iam:PassRole', resource: workflow.runnerRoles[0] ?? '', context: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      { label: 'iam:PassRole another role to ECS', action: 'iam:PassRole', resource: iamArn('role', '/', 'admin'), context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      { label: 'ecs:RunTask another task definition', action: 'ecs:RunTask', resource: `arn:aws:ecs:${REGION}:${KILN}:task-definition/miner:1`, context: { 'ecs:cluster': workflow.runnerCluster } },
      { label: 'ecs:StopTask on another cluster', action: 'ecs:StopTask', resource: `arn:aws:ecs:${REGION}:${KILN}:task/other/abc`, context: { 'ecs:cluster': `arn:aws:ecs:${REGION}:${KILN}:cluster/other` } },
    ],
  },
};

const ALL_POLICIES: [string, Permission[]][] = [
  ...(Object.keys(FUNCTION_NEEDS) as KilnFunctionName[]).map((name): [string, Permission[]] => [name, functionPermissions(name, resources)]),
  ['runner', runnerPermissions(resources)],
  ['workflows', workflowPermissions(resources, workflow)],
  ['machine role boundary', machineRoleBoundary(resources)],
];
const policyOf = (who: string): Permission[] => {
  const found = ALL_POLICIES.find(([name]) => name === who);
  if (found === undefined) throw new Error(`no policy for ${who}`);
  return found[1];
};

describe('the IAM policies sst.config.ts gives each function, the runner and the workflows', () => {
  it('allow and deny as the table says, under an IAM policy simulator', async () => {
    const rows = Object.entries({ ...FUNCTION_CALLS, ...RUNNER_CALLS }).flatMap(([who, { allowed, denied }]) => [
      ...allowed.map((call) => ({ who, call, expected: 'allowed' as const })),
      ...denied.map((call) => ({ who, call, expected: 'denied' as const })),
    ]);
    const decided = await Promise.all(rows.map(async ({ who, call }) => ({ who, call: call.label, decision: await decide(policyOf(who), call) })));
    console.table(decided);
    expect(decided.map(({ who, call, decision }) => `${who} | ${call} | ${decision}`)).toEqual(rows.map(({ who, call, expected }) => `${who} | ${call.label} | ${expected}`));
  });

  it('grant no action by wildcard, not even within a service', () => {
    const wildcards = ALL_POLICIES.flatMap(([who, permissions]) => permissions.flatMap((permission) => permission.actions.filter((action) => action.includes('*')).map((action) => `${who}: ${action}`)));
    expect(wildcards).toEqual([]);
  });

  it("let a machine role do nothing beyond the boundary, whatever its own policy says", async () => {
    const everything: Permission[] = [{ actions: ['iam:CreateUser', 'ssm:GetParameter', 'ec2:TerminateInstances'], resources: ['*'] }];
    const parameter = `arn:aws:ssm:${REGION}:${KILN}:parameter/kiln/cl_1/worker/join-token`;
    const calls: [Call, Decision][] = [
      [{ label: 'ssm:GetParameter own join token', action: 'ssm:GetParameter', resource: parameter }, 'allowed'],
      [{ label: 'iam:CreateUser', action: 'iam:CreateUser', resource: iamArn('user', '/', 'backdoor') }, 'denied'],
      [{ label: 'ec2:TerminateInstances', action: 'ec2:TerminateInstances', resource: instance }, 'denied'],
    ];
    const decided = await Promise.all(calls.map(([call]) => decide(everything, call, machineRoleBoundary(resources))));
    expect(decided).toEqual(calls.map(([, decision]) => decision));
  });

  it('name every function sst.config.ts declares, with the tag, path and agent actions the cluster program uses', () => {
    const config = readFileSync(new URL('../sst.config.ts', import.meta.url), 'utf8');
    const declared = [...config.matchAll(/\b(?:task|grants)\('(\w+)'/g)].map((match) => match[1]);
    expect(declared.sort()).toEqual(Object.keys(FUNCTION_NEEDS).sort());
    // SST's links grant a service's every action on what they link (dynamodb:*, s3:*, sqs:*): nothing is linked.
    expect(config).not.toMatch(/\blink:/);
    expect([CLUSTER_TAG, [...SSM_AGENT_ACTIONS]]).toEqual([PROGRAM_CLUSTER_TAG, [...PROGRAM_SSM_AGENT_ACTIONS]]);
  });
});
