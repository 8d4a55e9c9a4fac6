import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsServiceError, callerOf, listenLocally, readBody } from '../aws-json.ts';
import type { SandboxIam } from '../iam.ts';

export interface AssumeRoleCall {
  roleArn: string;
  roleSessionName: string;
  externalId: string | undefined;
  /** The account of the caller that assumed it. */
  callerAccountId: string;
}

/** A role trust policy with one statement: `Principal: {AWS: <account>}`, `Condition: {StringEquals: {sts:ExternalId}}`. */
export interface RoleTrust {
  trustedAccountId: string;
  externalId: string;
}

export interface StsService {
  /** Give it to the STS client (`clientConfig.endpoint` of `fromTemporaryCredentials`). */
  endpoint: string;
  /** Every AssumeRole call that was answered, in order. */
  readonly calls: readonly AssumeRoleCall[];
  /**
   * Give a role the trust policy a tenant writes for Kiln: it trusts `trustedAccountId` on the condition sts:ExternalId
   * equals `externalId`. A role without one trusts no caller, as a role whose trust policy does not name its account.
   */
  trust(roleArn: string, policy: RoleTrust): void;
  /** AssumeRole as a caller of `callerAccountId` that signs in-process (the Pulumi AWS provider): throws AccessDenied as STS does. */
  assumeRoleAs(callerAccountId: string, roleArn: string, externalId: string | undefined, roleSessionName: string): void;
  close(): Promise<void>;
}

const ACCOUNT_PRINCIPAL = /^(?:arn:aws[a-z-]*:iam::(\d{12}):root|(\d{12}))$/;

/**
 * The trust a role's AssumeRolePolicyDocument (as IAM's CreateRole takes it, aws/aws-sdk-js-v3@0c9c2da
 * clients/client-iam/src/commands/CreateRoleCommand.ts) gives an account: the statement allowing sts:AssumeRole to
 * `Principal: {AWS: <account root or id>}` on the condition `StringEquals: {sts:ExternalId}`. Undefined for a document
 * without one, which the sandbox does not play.
 */
export function roleTrustOf(document: string): RoleTrust | undefined {
  let policy: unknown;
  try {
    policy = JSON.parse(document);
  } catch {
    return undefined;
  }
  const statements: unknown = typeof policy === 'object' && policy !== null ? (policy as { Statement?: unknown }).Statement : undefined;
  for (const statement of Array.isArray(statements) ? (statements as unknown[]) : [statements]) {
    const { Effect, Action, Principal, Condition } = (statement ?? {}) as { Effect?: unknown; Action?: unknown; Principal?: { AWS?: unknown }; Condition?: { StringEquals?: Record<string, unknown> } };
    const account = typeof Principal?.AWS === 'string' ? ACCOUNT_PRINCIPAL.exec(Principal.AWS) : null;
    const externalId = Condition?.StringEquals?.['sts:ExternalId'];
    if (Effect === 'Allow' && Action === 'sts:AssumeRole' && account !== null && typeof externalId === 'string') {
      return { trustedAccountId: account[1] ?? account[2] ?? '', externalId };
    }
  }
  return undefined;
}

const NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

/**
 * A local AWS STS with the one operation Kiln calls, AssumeRole, in the
 * query protocol the SDK speaks (form-encoded POST, XML answers). As STS, it
 * answers AccessDenied unless the role's trust policy trusts the caller's
 * account and the caller sends the external ID its condition requires
 * (aws/aws-sdk-js-v3@02e73bb clients/client-sts/src/commands/AssumeRoleCommand.ts:
 * "To assume a role from a different account, your Amazon Web Services account
 * must be trusted by the role"; ExternalId's documentation in @aws-sdk/nested-clients@3.998.3
 * submodules/sts/models/models_0.d.ts: "only someone with the ID can assume the role"), so the confused-deputy check
 * is exercised.
 */
export async function startStsService(iam: SandboxIam, options: { port?: number } = {}): Promise<StsService> {
  const calls: AssumeRoleCall[] = [];
  const trusted = new Map<string, RoleTrust>();

  const authorize = (callerAccountId: string, roleArn: string, externalId: string | undefined, roleSessionName: string): void => {
    const trust = trusted.get(roleArn);
    if (trust === undefined || trust.trustedAccountId !== callerAccountId || trust.externalId !== externalId) {
      // AWS names the caller by its ARN, in the caller's account ("User: arn:aws:sts::<account>:assumed-role/<role>/<session>
      // is not authorized to perform: sts:AssumeRole on resource: <role ARN>": repost.aws/knowledge-center/iam-assume-role-error).
      throw new AwsServiceError('AccessDenied', `User: arn:aws:sts::${callerAccountId}:assumed-role/kiln-steps/kiln is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, 403);
    }
    calls.push({ roleArn, roleSessionName, externalId, callerAccountId });
  };

  const assumeRole = (form: URLSearchParams, request: IncomingMessage): string => {
    const caller = iam.scopeOf(callerOf(request.headers.authorization));
    const roleArn = form.get('RoleArn') ?? '';
    const roleSessionName = form.get('RoleSessionName') ?? '';
    const externalId = form.get('ExternalId') ?? undefined;
    const durationSeconds = Number(form.get('DurationSeconds') ?? '3600');
    if (!SESSION_NAME.test(roleSessionName)) throw new AwsServiceError('ValidationError', 'RoleSessionName must be 2-64 characters of [\\w+=,.@-].');
    if (!Number.isInteger(durationSeconds) || durationSeconds < 900 || durationSeconds > 43_200) {
      throw new AwsServiceError('ValidationError', 'DurationSeconds must be between 900 and 43200.');
    }
    authorize(caller.accountId, roleArn, externalId, roleSessionName);
    const issued = iam.assumeRole(roleArn, roleSessionName, durationSeconds);
    return `<AssumeRoleResult>
  <Credentials>
    <AccessKeyId>${issued.accessKeyId}</AccessKeyId>
    <SecretAccessKey>${xml(issued.secretAccessKey)}</SecretAccessKey>
    <SessionToken>${xml(issued.sessionToken)}</SessionToken>
    <Expiration>${issued.expiration.toISOString()}</Expiration>
  </Credentials>
  <AssumedRoleUser>
    <Arn>${xml(issued.assumedRoleArn)}</Arn>
    <AssumedRoleId>AROA${issued.accessKeyId.slice(4, 20)}:${xml(roleSessionName)}</AssumedRoleId>
  </AssumedRoleUser>
</AssumeRoleResult>`;
  };

  const server = await listenLocally((request, response) => {
    handle(request, assumeRole)
      .then((result) => {
        send(response, 200, `<AssumeRoleResponse xmlns="${NAMESPACE}">${result}<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`);
      })
      .catch((error: unknown) => {
        const failure = error instanceof AwsServiceError ? error : new AwsServiceError('InternalFailure', 'Internal failure.', 500);
        const type = failure.status >= 500 ? 'Receiver' : 'Sender';
        send(
          response,
          failure.status,
          `<ErrorResponse xmlns="${NAMESPACE}"><Error><Type>${type}</Type><Code>${failure.type}</Code><Message>${xml(failure.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
        );
      });
  }, options);
  return {
    endpoint: server.endpoint,
    calls,
    trust: (roleArn, policy) => {
      trusted.set(roleArn, policy);
    },
    assumeRoleAs: authorize,
    close: () => server.close(),
  };
}

async function handle(request: IncomingMessage, assumeRole: (form: URLSearchParams, request: IncomingMessage) => string): Promise<string> {
  if (request.method !== 'POST') throw new AwsServiceError('InvalidAction', 'Only POST / is served.', 400);
  const form = new URLSearchParams((await readBody(request)).toString('utf8'));
  const action = form.get('Action');
  if (action !== 'AssumeRole') throw new AwsServiceError('InvalidAction', `The sandbox STS serves AssumeRole only, not ${String(action)}.`);
  return assumeRole(form, request);
}

function send(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': randomUUID() });
  response.end(body);
}

function xml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;');
}
