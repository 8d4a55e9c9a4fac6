import { createRequire } from 'node:module';
import type { WORKFLOW_BRANCH_STEPS, WORKFLOW_STEPS, WorkflowOf } from '#core';
import deprovisionDefinition from './deprovision.asl.json' with { type: 'json' };
import provisionDefinition from './provision.asl.json' with { type: 'json' };
import remediateNodeDefinition from './remediate-node.asl.json' with { type: 'json' };
import rotateEncryptionKeyDefinition from './rotate-encryption-key.asl.json' with { type: 'json' };
import updateDefinition from './update.asl.json' with { type: 'json' };

/**
 * The Step Functions workflows, as Amazon States Language (JSONPath) files
 * beside this module. Deployment-specific values are `${Placeholder}` strings:
 * sst.config.ts fills them with real ARNs, the sandbox with local ones.
 */
export const WORKFLOW_NAMES = ['provision', 'deprovision', 'update', 'rotate-encryption-key', 'remediate-node'] as const satisfies readonly WorkflowOf[];
export type WorkflowName = (typeof WORKFLOW_NAMES)[number];

const DEFINITIONS: Record<WorkflowName, Readonly<Record<string, unknown>>> = {
  provision: provisionDefinition,
  deprovision: deprovisionDefinition,
  update: updateDefinition,
  'rotate-encryption-key': rotateEncryptionKeyDefinition,
  'remediate-node': remediateNodeDefinition,
};

/** The Task state that performs each step an operation may report (see WORKFLOW_STEPS and WORKFLOW_BRANCH_STEPS in core). */
export const WORKFLOW_STEP_STATES = {
  provision: {
    plan: 'Plan',
    infrastructure: 'Infrastructure',
    bootstrap: 'Bootstrap',
    network: 'Network',
    'control-plane': 'WaitForControlPlane',
    workers: 'WaitForWorkers',
    addons: 'Addons',
    verify: 'Verify',
  },
  deprovision: { destroy: 'Destroy' },
  update: {
    'drain-nodes': 'DrainNodes',
    'remove-machines': 'RemoveMachines',
    'join-token': 'JoinToken',
    infrastructure: 'Infrastructure',
    'roll-control-plane': 'RollControlPlane',
    'pod-security-defaults': 'ApplyPodSecurityDefaults',
    'await-nodes': 'AwaitNodes',
    'roll-machines': 'RollMachines',
    addons: 'Addons',
    verify: 'Verify',
  },
  'rotate-encryption-key': { rotate: 'RotateEncryptionKey' },
  'remediate-node': { reboot: 'Reboot', recover: 'Recover', drain: 'Drain', replace: 'Replace', 'await-replacement': 'AwaitReplacement', retire: 'RetireNode' },
} as const satisfies { [N in WorkflowName]: Record<(typeof WORKFLOW_STEPS)[N][number] | (typeof WORKFLOW_BRANCH_STEPS)[N][number], string> };

/** Task states that only keep the books (no step of their own): the infrastructure slot's queue among them. */
export const WORKFLOW_BOOKKEEPING_STATES = {
  provision: ['AwaitInfrastructureSlot', 'ReleaseInfrastructureSlot', 'ReleaseInfrastructureSlotAfterFailure', 'MarkReady', 'RecordFailure'],
  deprovision: ['AwaitInfrastructureSlot', 'ReleaseInfrastructureSlot', 'ReleaseInfrastructureSlotAfterFailure', 'MarkDeleted', 'RecordFailure'],
  update: ['AwaitInfrastructureSlot', 'ReleaseInfrastructureSlot', 'ReleaseInfrastructureSlotAfterFailure', 'MarkReady', 'RecordFailure'],
  'rotate-encryption-key': ['MarkReady', 'RecordFailure'],
  'remediate-node': ['FinishRemediation', 'RecordFailure'],
} as const satisfies Record<WorkflowName, readonly string[]>;

const PLACEHOLDER = /\$\{([A-Za-z][A-Za-z0-9]*)\}/g;

export function isWorkflowName(name: string): name is WorkflowName {
  return (WORKFLOW_NAMES as readonly string[]).includes(name);
}

/** The `${X}` placeholder names the workflow file uses, sorted. */
export function workflowPlaceholders(name: WorkflowName): string[] {
  const found = new Set<string>();
  visitStrings(DEFINITIONS[name], (text) => {
    for (const match of text.matchAll(PLACEHOLDER)) {
      if (match[1] !== undefined) found.add(match[1]);
    }
  });
  return [...found].sort();
}

/**
 * The workflow definition with every `${X}` replaced from `substitutions`.
 * Extra substitutions are ignored, so one map can serve every workflow; a
 * missing one throws, because a literal `${X}` would only fail at run time.
 */
export function renderWorkflow(name: WorkflowName, substitutions: Record<string, string>): Record<string, unknown> {
  const missing = workflowPlaceholders(name).filter((placeholder) => !Object.hasOwn(substitutions, placeholder));
  if (missing.length > 0) {
    throw new Error(`Workflow '${name}' needs substitutions for: ${missing.join(', ')}`);
  }
  const rendered = substitute(DEFINITIONS[name], (text) =>
    text.replace(PLACEHOLDER, (_whole, placeholder: string) => substitutions[placeholder] ?? ''),
  );
  if (!isRecord(rendered)) throw new Error(`Workflow '${name}' is not a JSON object`);
  return rendered;
}

/**
 * Realistic values for placeholders, derived from their names
 * (`PlanFunctionArn` -> `arn:aws:lambda:<region>:<account>:function:kiln-plan`).
 * Used to validate definitions and by local mode, which binds these ARNs to handlers.
 */
export function exampleSubstitutions(
  placeholders: readonly string[],
  options: { region?: string; accountId?: string } = {},
): Record<string, string> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '123456789012';
  const entries = placeholders.map((placeholder): [string, string] => {
    const kinds: [RegExp, (resource: string) => string][] = [
      [/FunctionArn$/, (resource) => `arn:aws:lambda:${region}:${accountId}:function:kiln-${resource}`],
      [/TaskDefinitionArn$/, (resource) => `arn:aws:ecs:${region}:${accountId}:task-definition/kiln-${resource}:1`],
      [/ClusterArn$/, (resource) => `arn:aws:ecs:${region}:${accountId}:cluster/kiln-${resource}`],
      [/SubnetId$/, () => 'subnet-0a1b2c3d4e5f60718'],
      [/SecurityGroupId$/, () => 'sg-0a1b2c3d4e5f60718'],
    ];
    for (const [suffix, value] of kinds) {
      if (suffix.test(placeholder)) return [placeholder, value(kebabCase(placeholder.replace(suffix, '')))];
    }
    throw new Error(`No example value for placeholder '${placeholder}'`);
  });
  return Object.fromEntries(entries);
}

interface AslValidationResult {
  isValid: boolean;
  errorsText: (separator?: string) => string;
}
type AslValidator = (
  definition: Record<string, unknown>,
  options: { checkPaths: boolean; checkArn: boolean },
) => AslValidationResult;

/**
 * What asl-validator finds wrong with a rendered definition (paths and ARNs
 * checked); empty when it is valid. The definition is not modified.
 */
export function workflowDefinitionProblems(definition: Record<string, unknown>): string[] {
  // asl-validator is a CommonJS dev dependency without type declarations; loading
  // it here, on first use, keeps it out of deployments that only render.
  const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;
  // The validator writes QueryLanguage into every state it visits.
  const result = aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });
  if (result.isValid) return [];
  return result
    .errorsText('\n')
    .split('\n')
    .filter((line) => line.trim() !== '');
}

function kebabCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function visitStrings(value: unknown, visit: (text: string) => void): void {
  if (typeof value === 'string') {
    visit(value);
  } else if (Array.isArray(value)) {
    for (const item of value) visitStrings(item, visit);
  } else if (isRecord(value)) {
    for (const item of Object.values(value)) visitStrings(item, visit);
  }
}

function substitute(value: unknown, replace: (text: string) => string): unknown {
  if (typeof value === 'string') return replace(value);
  if (Array.isArray(value)) return value.map((item) => substitute(item, replace));
  if (isRecord(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substitute(item, replace)]));
  }
  return value;
}
