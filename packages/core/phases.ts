/**
 * The cluster lifecycle. A transition not listed here is a bug, so the store
 * refuses it; Failed clusters can always be deleted.
 */
export const CLUSTER_PHASES = ['Pending', 'Provisioning', 'Ready', 'Updating', 'Deleting', 'Deleted', 'Failed'] as const;
export type ClusterPhase = (typeof CLUSTER_PHASES)[number];

const ALLOWED: Record<ClusterPhase, readonly ClusterPhase[]> = {
  Pending: ['Provisioning', 'Failed', 'Deleting'],
  Provisioning: ['Ready', 'Failed', 'Deleting'],
  Ready: ['Updating', 'Deleting', 'Failed'],
  Updating: ['Ready', 'Failed', 'Deleting'],
  Failed: ['Deleting', 'Provisioning', 'Updating'],
  Deleting: ['Deleted', 'Failed'],
  Deleted: [],
};

export function canTransition(from: ClusterPhase, to: ClusterPhase): boolean {
  return from === to || ALLOWED[from].includes(to);
}

export const OPERATION_STATES = ['pending', 'running', 'succeeded', 'failed'] as const;
export type OperationState = (typeof OPERATION_STATES)[number];

export const OPERATION_TYPES = ['provision', 'deprovision', 'update', 'rotate-encryption-key', 'remediate-node', 'renew-certificates'] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

export const STEP_STATES = ['pending', 'running', 'succeeded', 'failed'] as const;
export type StepState = (typeof STEP_STATES)[number];

/** The steps each workflow reports, in order; the ASL files name their Task states after these. */
export const WORKFLOW_STEPS = {
  provision: ['plan', 'infrastructure', 'bootstrap', 'network', 'control-plane', 'workers', 'addons', 'verify'],
  deprovision: ['destroy'],
  update: ['addons', 'verify'],
  'rotate-encryption-key': ['rotate'],
  'remediate-node': ['reboot', 'recover'],
  // The update workflow with the control plane's roll: every machine replaced, each making its certificates anew.
  'renew-certificates': ['join-token', 'roll-control-plane', 'addons', 'verify'],
} as const satisfies Record<OperationType, readonly string[]>;

/** Steps a workflow takes only on some paths, in the order it takes them (a remediation whose reboot did not help). */
export const WORKFLOW_BRANCH_STEPS = {
  provision: [],
  deprovision: [],
  update: ['drain-nodes', 'remove-machines', 'join-token', 'infrastructure', 'roll-control-plane', 'pod-security-defaults', 'await-nodes', 'roll-machines'],
  'rotate-encryption-key': [],
  'remediate-node': ['drain', 'replace', 'await-replacement', 'retire'],
  'renew-certificates': [],
} as const satisfies Record<OperationType, readonly string[]>;

/** Every step an operation of this type may report, in the order the workflow takes them. */
const WORKFLOW_STEP_ORDER: { readonly [T in OperationType]: readonly ((typeof WORKFLOW_STEPS)[T][number] | (typeof WORKFLOW_BRANCH_STEPS)[T][number])[] } = {
  provision: WORKFLOW_STEPS.provision,
  deprovision: WORKFLOW_STEPS.deprovision,
  // Machines leave (drained, then removed) before Pulumi runs, so Auto Scaling never picks which; machines that
  // join get a fresh token first and are awaited after it; machines whose launch template changed roll after that,
  // the control plane's before any worker's (a kubelet may not be newer than the API servers); new cluster-wide Pod
  // Security levels reach the API servers that stay once the launch templates render them.
  update: ['drain-nodes', 'remove-machines', 'join-token', 'infrastructure', 'roll-control-plane', 'pod-security-defaults', 'await-nodes', 'roll-machines', 'addons', 'verify'],
  'rotate-encryption-key': WORKFLOW_STEPS['rotate-encryption-key'],
  'remediate-node': ['reboot', 'recover', 'drain', 'replace', 'await-replacement', 'retire'],
  'renew-certificates': WORKFLOW_STEPS['renew-certificates'],
};

/** The workflow each operation type runs: a certificate renewal is an update that only rolls the control plane. */
const WORKFLOW_OF = {
  provision: 'provision',
  deprovision: 'deprovision',
  update: 'update',
  'rotate-encryption-key': 'rotate-encryption-key',
  'remediate-node': 'remediate-node',
  'renew-certificates': 'update',
} as const satisfies Record<OperationType, OperationType>;
export type WorkflowOf = (typeof WORKFLOW_OF)[OperationType];

export function workflowOf<T extends OperationType>(type: T): (typeof WORKFLOW_OF)[T] {
  return WORKFLOW_OF[type];
}

export function workflowStepOrder(type: OperationType): readonly string[] {
  return WORKFLOW_STEP_ORDER[type];
}
