import { isRecord } from '#core';

/**
 * What IAM, KMS and Auto Scaling refuse about roles, as the cluster programs meet it: a key policy naming a principal
 * that does not exist, a service-linked role whose name is taken, a group naming a service-linked role that does not
 * exist. The errors read as the AWS provider reports them (terraform-provider-aws, which @pulumi/aws bridges).
 */

/**
 * The service-linked roles the sandbox knows, by service principal. Auto Scaling's default role is
 * AWSServiceRoleForAutoScaling; one with a custom suffix is AWSServiceRoleForAutoScaling_<suffix> (Amazon EC2 Auto
 * Scaling User Guide, "Service-linked roles for Amazon EC2 Auto Scaling", Overview).
 */
const SERVICE_LINKED_ROLE_NAMES: Readonly<Record<string, string>> = {
  'autoscaling.amazonaws.com': 'AWSServiceRoleForAutoScaling',
};

export const AUTO_SCALING_SERVICE = 'autoscaling.amazonaws.com';

/**
 * `arn:aws:iam::<account>:role/aws-service-role/<service>/<name>`: the path IAM gives every service-linked role
 * (hashicorp/terraform-provider-aws internal/service/iam/service_linked_role.go DecodeServiceLinkedRoleID expects
 * exactly `role/aws-service-role/SERVICENAME/ROLENAME`).
 */
export function serviceLinkedRoleArn(accountId: string, service: string, customSuffix?: string): string {
  const base = SERVICE_LINKED_ROLE_NAMES[service];
  if (base === undefined) throw new Error(`the sandbox cloud has no model of the service-linked role of ${service}`);
  const name = customSuffix === undefined || customSuffix === '' ? base : `${base}_${customSuffix}`;
  return `arn:aws:iam::${accountId}:role/aws-service-role/${service}/${name}`;
}

export function roleName(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

/**
 * IAM's CreateServiceLinkedRole when the name exists: InvalidInput "Service role name … has been taken in this
 * account, please try a different suffix." (awsdocs/aws-doc-sdk-examples, the JavaScript v3 IAM example of
 * CreateServiceLinkedRole, catches exactly this message), as terraform-provider-aws resourceServiceLinkedRoleCreate
 * wraps it.
 */
export function serviceLinkedRoleTaken(service: string, arn: string): Error {
  return new Error(
    `creating IAM Service Linked Role (${service}): operation error IAM: CreateServiceLinkedRole, https response error StatusCode: 400, ` +
      `InvalidInput: Service role name ${roleName(arn)} has been taken in this account, please try a different suffix.`,
  );
}

/**
 * CreateAutoScalingGroup with a ServiceLinkedRoleARN that does not exist: "ValidationError: ARN specified for
 * Service-Linked Role does not exist." (terraform-aws-modules/terraform-aws-autoscaling examples, which create the role
 * in the same run, quote the error); terraform-provider-aws resourceGroupCreate retries only "Invalid IAM Instance
 * Profile", so the error ends the run.
 */
export function missingServiceLinkedRole(groupName: string): Error {
  return new Error(
    `creating Auto Scaling Group (${groupName}): operation error Auto Scaling: CreateAutoScalingGroup, https response error StatusCode: 400, ` +
      'api error ValidationError: ARN specified for Service-Linked Role does not exist.',
  );
}

/**
 * What the runner's own policy lets it do with IAM in Kiln's account (functions/permissions.ts): roles and instance
 * profiles only under Kiln's path, and a role only with the machines' permissions boundary. A cluster in a tenant's
 * account is built with the tenant's role, whose policy the tenant writes: there the sandbox demands nothing.
 */
export interface RunnerIamRules {
  path: string;
  permissionsBoundary: string;
}

/** `arn:aws:iam::<account>:<kind><path><name>`: IAM puts the path between the kind and the name (IAM User Guide, "IAM identifiers", IAM ARNs). */
export function iamArn(accountId: string, kind: 'role' | 'instance-profile', path: unknown, name: string): string {
  return `arn:aws:iam::${accountId}:${kind}${typeof path === 'string' && path !== '' ? path : '/'}${name}`;
}

/**
 * A CreateRole or CreateInstanceProfile the runner's policy does not allow. IAM answers an implicit deny with "User:
 * <principal> is not authorized to perform: <action> on resource: <arn> because no identity-based policy allows the
 * <action> action" (IAM User Guide, "Troubleshoot access denied error messages"), and terraform-provider-aws
 * internal/service/iam/role.go resourceRoleCreate wraps it as "creating IAM Role (<name>): <error>".
 */
export function runnerIamRefusal(rules: RunnerIamRules, accountId: string, kind: 'role' | 'instance-profile', name: string, inputs: Record<string, unknown>): Error | undefined {
  const arn = iamArn(accountId, kind, inputs.path, name);
  const allowed = inputs.path === rules.path && (kind === 'instance-profile' || inputs.permissionsBoundary === rules.permissionsBoundary);
  if (allowed) return undefined;
  const action = kind === 'role' ? 'iam:CreateRole' : 'iam:CreateInstanceProfile';
  return new Error(
    `creating IAM ${kind === 'role' ? 'Role' : 'Instance Profile'} (${name}): operation error IAM: ${action.slice('iam:'.length)}, https response error StatusCode: 403, ` +
      `api error AccessDenied: User: arn:aws:sts::${accountId}:assumed-role/kiln-provisioner/runner is not authorized to perform: ${action} on resource: ${arn} ` +
      `because no identity-based policy allows the ${action} action`,
  );
}

const ACCOUNT_ROOT = /^arn:aws[a-z-]*:iam::\d{12}:root$/;
const IAM_IDENTITY = /^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/[\w+=,.@/-]+$/;

function principalsOf(statement: unknown): string[] {
  if (!isRecord(statement)) return [];
  const principal = statement.Principal;
  if (principal === '*') return ['*'];
  if (!isRecord(principal)) return [];
  const aws = principal.AWS;
  return (Array.isArray(aws) ? aws : [aws]).filter((value): value is string => typeof value === 'string');
}

/**
 * KMS CreateKey validates the key policy's principals: "The principals in the key policy must exist and be visible to
 * KMS" (KMS API Reference, CreateKey/PutKeyPolicy, Policy), else MalformedPolicyDocumentException "Policy contains a
 * statement with one or more invalid principals." (AWS re:Post knowledge center kms-policy-error-invalid-principals:
 * "make sure that the IAM entity exists"). terraform-provider-aws internal/service/kms/key.go resourceKeyCreate
 * retries that error for IAM's propagation delay only ("AWS requires any principal in the policy to exist before the
 * key is created"), then fails the run. Accounts (`<id>`, `:root`) and `*` are always valid principals; a role or
 * user must exist; a principal the sandbox cannot judge is refused loudly rather than accepted.
 */
export function keyPolicyError(policy: unknown, exists: (arn: string) => boolean): Error | undefined {
  let document: unknown;
  try {
    document = typeof policy === 'string' ? JSON.parse(policy) : policy;
  } catch {
    return new Error('creating KMS Key: MalformedPolicyDocumentException: The policy is not valid JSON.');
  }
  const statements = isRecord(document) ? (Array.isArray(document.Statement) ? document.Statement : [document.Statement]) : [];
  for (const principal of statements.flatMap(principalsOf)) {
    if (principal === '*' || /^\d{12}$/.test(principal) || ACCOUNT_ROOT.test(principal)) continue;
    if (!IAM_IDENTITY.test(principal)) throw new Error(`the sandbox cloud cannot judge the key policy principal ${principal}`);
    if (!exists(principal)) {
      return new Error(
        'creating KMS Key: operation error KMS: CreateKey, https response error StatusCode: 400, ' +
          'MalformedPolicyDocumentException: Policy contains a statement with one or more invalid principals.',
      );
    }
  }
  return undefined;
}
