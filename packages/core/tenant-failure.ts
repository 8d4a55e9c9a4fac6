import type { OperationType } from './phases.ts';

/**
 * Kiln's own identifiers as they turn up in AWS's and Kubernetes' messages: ARNs (which name Kiln's account, its roles
 * and keys) and bare 12-digit account ids. A tenant reads neither.
 */
const INTERNAL_IDENTIFIERS = [/\barn:aws[a-z-]*:[^\s"'`,;()[\]{}]*/gi, /(?<![0-9])[0-9]{12}(?![0-9])/g];

/**
 * What a tenant reads when AWS refused Kiln the order's account role (from a step's SDK call or the infrastructure
 * engine's provider): the one refusal the tenant fixes on their side, so it says how.
 */
export function accountRoleRefused(answer: string): string {
  return `Kiln could not assume the order's account role (AWS answered ${answer}): check that the role's trust policy allows Kiln's principal with the external ID GET /v1/account-trust shows.`;
}

/** Whether an AWS message is STS refusing an AssumeRole. */
export function isAssumeRoleRefusal(message: string): boolean {
  return /\bsts:AssumeRole\b/.test(message);
}

/** The text with every ARN and account id replaced by a mark that says something was left out. */
export function withoutInternalIdentifiers(text: string): string {
  return INTERNAL_IDENTIFIERS.reduce((scrubbed, pattern) => scrubbed.replace(pattern, '[internal]'), text);
}

/**
 * Why a workflow step failed, as far as a tenant may read it: `kiln` when Kiln's own code said what went wrong (a
 * StepError, written for the tenant); `dependency` when AWS, the cluster's API, a machine or the workflow engine gave
 * up, whose own words go only to Kiln's logs.
 */
export type FailureCause = { kind: 'kiln'; message: string } | { kind: 'dependency' };

/** What a tenant can do about a failed operation of each type. */
const REMEDIES: Record<OperationType, string> = {
  provision: 'The cluster is Failed and can be deleted; order it again once the cause is fixed.',
  update: 'Apply the change again once the cause is fixed; the steps that finished are not repeated.',
  'rotate-encryption-key': 'Start the rotation again: it resumes where it stopped, with every Secret still readable.',
  deprovision: 'Delete the cluster again: the deletion resumes where it stopped.',
  'remediate-node': 'Kiln starts a new remediation on a later health poll while the machine stays unhealthy.',
  'renew-certificates': 'Renew the certificates again once the cause is fixed.',
};

/** What to do when a dependency, not the order, failed: usually passing, and support can read the raw error by reference. */
const DEPENDENCY_REMEDY = 'This is usually temporary: try again in a few minutes, and if it fails the same way, give Kiln support the reference.';

/**
 * The one place a failure becomes what a tenant reads (an operation's error, a cluster's reason, the events that carry
 * them): what failed, what to do, and a reference that Kiln's log line with the raw error carries too. Kiln's own
 * messages are kept, less any internal identifier they picked up; a dependency's words never are.
 */
export function tenantFailureDetail(failure: { operationType: OperationType; step: string; cause: FailureCause; reference: string }): string {
  const what =
    failure.cause.kind === 'kiln'
      ? `Step ${failure.step} failed: ${withoutInternalIdentifiers(failure.cause.message).replace(/[.\s]+$/, '')}.`
      : `Step ${failure.step} failed: a service it depends on (AWS, the cluster's API server or a machine) did not complete it.`;
  const remedy = failure.cause.kind === 'kiln' ? REMEDIES[failure.operationType] : `${DEPENDENCY_REMEDY} ${REMEDIES[failure.operationType]}`;
  return `${what} ${remedy} Reference: ${failure.reference}.`;
}
