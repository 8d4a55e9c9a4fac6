import { randomBytes } from 'node:crypto';
import { AwsServiceError, type AwsCaller } from './aws-json.ts';

/** Who a set of credentials belongs to. */
export interface SandboxPrincipal {
  accountId: string;
  /** `arn:aws:iam::<account>:user/…` for long-term keys, `arn:aws:sts::<account>:assumed-role/<role>/<session>` for STS ones. */
  arn: string;
}

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/** An AWS account and region: where a regional resource (a parameter, a KMS key) lives. */
export interface AwsScope {
  accountId: string;
  region: string;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/;

/**
 * The sandbox's identities: which account each access key acts in. Kiln's own
 * keys belong to Kiln's account; STS hands out short-lived keys that act in the
 * account of the role they assumed. The regional stand-ins (SSM, KMS) use it to
 * keep every account's and region's resources apart, as AWS does, so a call made
 * in the wrong account or region misses what it looks for.
 */
export class SandboxIam {
  private readonly principals = new Map<string, SandboxPrincipal & { expiration?: Date }>();

  constructor(homeAccountId: string, homeAccessKeyId: string) {
    this.principals.set(homeAccessKeyId, { accountId: homeAccountId, arn: `arn:aws:iam::${homeAccountId}:user/kiln` });
  }

  /** Short-lived credentials acting as the role, in the role's account. */
  assumeRole(roleArn: string, sessionName: string, durationSeconds: number): IssuedCredentials & { assumedRoleArn: string } {
    const match = ROLE_ARN.exec(roleArn);
    if (match?.[1] === undefined || match[2] === undefined) throw new AwsServiceError('ValidationError', `${roleArn} is not a valid role ARN.`);
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const expiration = new Date(Date.now() + durationSeconds * 1000);
    const assumedRoleArn = `arn:aws:sts::${match[1]}:assumed-role/${match[2]}/${sessionName}`;
    this.principals.set(accessKeyId, { accountId: match[1], arn: assumedRoleArn, expiration });
    return { accessKeyId, secretAccessKey: randomBytes(20).toString('base64'), sessionToken: randomBytes(32).toString('base64'), expiration, assumedRoleArn };
  }

  /** The account and region a signed request acts in; unknown or expired keys are refused, as AWS refuses them. */
  scopeOf(caller: AwsCaller): AwsScope {
    const principal = this.principals.get(caller.accessKeyId);
    if (principal === undefined) throw new AwsServiceError('UnrecognizedClientException', 'The security token included in the request is invalid.', 400);
    if (principal.expiration !== undefined && principal.expiration.getTime() < Date.now()) {
      throw new AwsServiceError('ExpiredTokenException', 'The security token included in the request is expired', 400);
    }
    return { accountId: principal.accountId, region: caller.region };
  }
}

/** The account a role ARN lives in. */
export function accountOfRole(roleArn: string): string | undefined {
  return ROLE_ARN.exec(roleArn)?.[1];
}
