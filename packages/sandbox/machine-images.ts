import type { RecordedResource } from './cloud/index.ts';
import { bootBehaviour } from './cloud-init/validate.ts';
import type { MachineImage } from './machines.ts';

/**
 * What the SSM agent calls to register an instance and take commands, as AWS
 * documents for AmazonSSMManagedInstanceCore. An instance whose role cannot
 * call them never shows up in SSM, and Run Command refuses it.
 */
const SSM_AGENT_CALLS = [
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
  'ec2messages:AcknowledgeMessage',
  'ec2messages:DeleteMessage',
  'ec2messages:FailMessage',
  'ec2messages:GetEndpoint',
  'ec2messages:GetMessages',
  'ec2messages:SendReply',
];

interface Statement {
  Effect?: string;
  Action?: string | string[];
}

function actionMatches(pattern: string, action: string): boolean {
  const expression = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return expression.test(action);
}

/** Whether an identity policy allows every one of the actions (no conditions modelled: Kiln writes none here). */
function allows(policyJson: string, actions: readonly string[]): boolean {
  let statements: Statement[] = [];
  try {
    const policy = JSON.parse(policyJson) as { Statement?: Statement | Statement[] };
    statements = Array.isArray(policy.Statement) ? policy.Statement : policy.Statement === undefined ? [] : [policy.Statement];
  } catch {
    return false;
  }
  const allowed = statements.filter((statement) => statement.Effect === 'Allow').flatMap((statement) => (Array.isArray(statement.Action) ? statement.Action : statement.Action === undefined ? [] : [statement.Action]));
  return actions.every((action) => allowed.some((pattern) => actionMatches(pattern, action)));
}

function userDataOf(template: RecordedResource): string {
  const encoded = template.inputs.userData;
  return typeof encoded === 'string' ? Buffer.from(encoded, 'base64').toString('utf8') : '';
}

/**
 * Each launch template's machine as EC2 would boot it: what its user data
 * does, and whether its role's policy lets the SSM agent register. Control
 * plane machines take the `-cp` role's policy, workers the `-worker` one,
 * as the cluster program names them.
 */
export function machineImagesOf(resources: readonly RecordedResource[]): { controlPlane: MachineImage; pools: Record<string, MachineImage> } {
  const policyOf = (suffix: string) =>
    resources.find((resource) => resource.type === 'aws:iam/rolePolicy:RolePolicy' && resource.name.endsWith(suffix))?.inputs.policy;
  const imageOf = (template: RecordedResource, roleSuffix: string): MachineImage => {
    const behaviour = bootBehaviour(userDataOf(template));
    const policy = policyOf(roleSuffix);
    return {
      providerIdAtBoot: behaviour.providerIdFromMetadata,
      ssmManaged: behaviour.ssmAgent && typeof policy === 'string' && allows(policy, SSM_AGENT_CALLS),
      scripts: behaviour.scripts,
      ...(behaviour.joinTokenTtlMs === undefined ? {} : { joinTokenTtlMs: behaviour.joinTokenTtlMs }),
    };
  };
  const templates = resources.filter((resource) => resource.type === 'aws:ec2/launchTemplate:LaunchTemplate');
  const controlPlane = templates.find((template) => (template.inputs.tags as Record<string, string> | undefined)?.['kiln:role'] === 'control-plane');
  const pools = Object.fromEntries(
    templates.flatMap((template) => {
      const pool = /-pool-([a-z0-9-]+)$/.exec(template.name)?.[1];
      return pool === undefined ? [] : [[pool, imageOf(template, '-worker')]];
    }),
  );
  return { controlPlane: controlPlane === undefined ? { providerIdAtBoot: false, ssmManaged: false } : imageOf(controlPlane, '-cp'), pools };
}
