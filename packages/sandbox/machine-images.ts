import type { RecordedResource } from './cloud/index.ts';
import { apiServerAdmissionOf, bootBehaviour, installedKubernetesRelease, userDataText } from './cloud-init/validate.ts';
import { BARE_MACHINE, type MachineGroupShape, type MachineImage } from './machines.ts';

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
  return userDataText(template.inputs.userData);
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
    const release = installedKubernetesRelease(userDataOf(template));
    const policy = policyOf(roleSuffix);
    const admission = apiServerAdmissionOf(userDataOf(template));
    return {
      providerIdAtBoot: behaviour.providerIdFromMetadata,
      ssmManaged: behaviour.ssmAgent && typeof policy === 'string' && allows(policy, SSM_AGENT_CALLS),
      scripts: behaviour.scripts,
      ...(behaviour.joinTokenTtlMs === undefined ? {} : { joinTokenTtlMs: behaviour.joinTokenTtlMs }),
      ...(behaviour.joinTokenUsages === undefined ? {} : { joinTokenUsages: behaviour.joinTokenUsages }),
      ...(behaviour.nodeRegistration === undefined ? {} : { nodeRegistration: behaviour.nodeRegistration }),
      ...(behaviour.join === undefined ? {} : { join: behaviour.join }),
      ...(behaviour.apiServerAnonymousAuth === undefined ? {} : { apiServerAnonymousAuth: behaviour.apiServerAnonymousAuth }),
      ...(behaviour.apiServerCertSans === undefined ? {} : { apiServerCertSans: behaviour.apiServerCertSans }),
      ...(behaviour.staticPodImage === undefined ? {} : { kmsPluginImage: behaviour.staticPodImage }),
      ...(behaviour.bootProcedure === undefined ? {} : { bootProcedure: behaviour.bootProcedure }),
      ...(behaviour.kubernetesAptKeyPin === undefined ? {} : { kubernetesAptKeyPin: behaviour.kubernetesAptKeyPin }),
      ...(typeof template.inputs.instanceType === 'string' ? { instanceType: template.inputs.instanceType } : {}),
      ...(release === undefined ? {} : { kubeletVersion: release }),
      ...(admission === undefined ? {} : { apiServerAdmission: admission }),
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

function tagOf(resource: RecordedResource, key: string): string | undefined {
  const tags = resource.inputs.tags;
  if (Array.isArray(tags)) {
    const tag = (tags as { key?: unknown; value?: unknown }[]).find((entry) => entry.key === key);
    return typeof tag?.value === 'string' ? tag.value : undefined;
  }
  const value = (tags as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'string' ? value : undefined;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
}

/**
 * The stack's Auto Scaling groups as Auto Scaling would run them: each one's bounds and desired capacity as
 * declared, and the machine its launch template boots (with the instance role's policy for its role).
 */
export function machineGroupsOf(resources: readonly RecordedResource[]): MachineGroupShape[] {
  const images = machineImagesOf(resources);
  const templates = resources.filter((resource) => resource.type === 'aws:ec2/launchTemplate:LaunchTemplate');
  return resources
    .filter((resource) => resource.type === 'aws:autoscaling/group:Group')
    .map((group): MachineGroupShape => {
      const role = tagOf(group, 'kiln:role') === 'control-plane' ? 'control-plane' : 'worker';
      const pool = tagOf(group, 'kiln:node-pool');
      const templateId = (group.inputs.launchTemplate as { id?: unknown } | undefined)?.id;
      const template = templates.find((candidate) => candidate.id === templateId);
      const poolOfTemplate = template === undefined ? undefined : /-pool-([a-z0-9-]+)$/.exec(template.name)?.[1];
      const image = template === undefined ? BARE_MACHINE : role === 'control-plane' ? images.controlPlane : (images.pools[poolOfTemplate ?? ''] ?? BARE_MACHINE);
      return {
        name: group.id,
        role,
        ...(pool === undefined ? {} : { pool }),
        min: count(group.inputs.minSize),
        max: count(group.inputs.maxSize),
        desired: count(group.inputs.desiredCapacity),
        image,
      };
    });
}
