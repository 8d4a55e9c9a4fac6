/**
 * The IAM roles of the sandbox's AWS accounts, as far as cluster programs can tell: which exist, and which stack
 * declared each one. A role exists from the moment IAM (or a service on its own) creates it until it is deleted: a
 * stack's destroy deletes the roles it declared, never the ones AWS created for itself.
 */
export interface AccountRole {
  arn: string;
  /** The stack that declared the role; absent for roles that AWS created on its own or that were there before Kiln. */
  stack?: string;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/;

/** The account a role ARN lives in. */
export function roleAccount(arn: string): string | undefined {
  return ROLE_ARN.exec(arn)?.[1];
}

export class SandboxAccountRoles {
  private readonly roles = new Map<string, AccountRole>();

  /** `existing`: role ARNs that are there before any program runs (Kiln's own, a tenant's provisioning role). */
  constructor(existing: Iterable<string> = []) {
    for (const arn of existing) this.add({ arn });
  }

  /** A role IAM has created; one that already exists keeps its first owner, as IAM keeps the first role of a name. */
  add(role: AccountRole): void {
    if (!this.roles.has(role.arn)) this.roles.set(role.arn, role);
  }

  /** Every role that exists now, in every account. */
  all(): AccountRole[] {
    return [...this.roles.values()];
  }

  /** A stack's destroy deletes the roles it declared. */
  deleteDeclaredBy(stack: string): void {
    for (const [arn, role] of this.roles) if (role.stack === stack) this.roles.delete(arn);
  }
}
