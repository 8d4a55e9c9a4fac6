import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../dynamodb.ts';
import { SandboxIam } from '../iam.ts';
import { type StsService, roleTrustOf, startStsService } from './server.ts';

const KILN_ACCOUNT = '000000000000';
let sts: StsService;

beforeAll(async () => {
  sts = await startStsService(new SandboxIam(KILN_ACCOUNT, LOCAL_CREDENTIALS.accessKeyId));
});
afterAll(async () => {
  await sts.close();
});

/** What Kiln does: AssumeRole with its own credentials, as fromTemporaryCredentials in functions/wiring does it. */
function assume(roleArn: string, externalId: string | undefined) {
  return fromTemporaryCredentials({
    params: { RoleArn: roleArn, RoleSessionName: 'kiln-test', DurationSeconds: 900, ...(externalId === undefined ? {} : { ExternalId: externalId }) },
    masterCredentials: LOCAL_CREDENTIALS,
    clientConfig: { region: LOCAL_REGION, endpoint: sts.endpoint },
  })();
}

describe('the sandbox STS', () => {
  it("assumes a role whose trust policy trusts Kiln's account with the external ID sent", async () => {
    const roleArn = 'arn:aws:iam::111122223333:role/trusting';
    sts.trust(roleArn, { trustedAccountId: KILN_ACCOUNT, externalId: 'kiln-right' });
    await expect(assume(roleArn, 'kiln-right')).resolves.toMatchObject({ accessKeyId: expect.stringMatching(/^ASIA/) as unknown });
    expect(sts.calls.at(-1)).toEqual({ roleArn, roleSessionName: 'kiln-test', externalId: 'kiln-right', callerAccountId: KILN_ACCOUNT });
  });

  it('refuses another external ID, or none, as the trust policy condition does', async () => {
    const roleArn = 'arn:aws:iam::111122223333:role/conditioned';
    sts.trust(roleArn, { trustedAccountId: KILN_ACCOUNT, externalId: 'kiln-right' });
    await expect(assume(roleArn, 'kiln-wrong')).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(assume(roleArn, undefined)).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it("refuses a role whose trust policy does not name Kiln's account, whatever external ID it is sent", async () => {
    await expect(assume('arn:aws:iam::111122223333:role/trusts-no-one', 'anything')).rejects.toMatchObject({ name: 'AccessDenied' });
    const roleArn = 'arn:aws:iam::111122223333:role/trusts-another-account';
    sts.trust(roleArn, { trustedAccountId: '444455556666', externalId: 'kiln-right' });
    await expect(assume(roleArn, 'kiln-right')).rejects.toMatchObject({ name: 'AccessDenied' });
  });
});

describe('a role trust policy', () => {
  it('trusts the account its sts:AssumeRole statement names, on its sts:ExternalId condition', () => {
    const policy = (principal: string, condition: Record<string, unknown>) =>
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: principal }, Action: 'sts:AssumeRole', Condition: condition }] });
    expect(roleTrustOf(policy(`arn:aws:iam::${KILN_ACCOUNT}:root`, { StringEquals: { 'sts:ExternalId': 'kiln-x' } }))).toEqual({ trustedAccountId: KILN_ACCOUNT, externalId: 'kiln-x' });
    expect(roleTrustOf(policy(KILN_ACCOUNT, { StringEquals: { 'sts:ExternalId': 'kiln-x' } }))).toEqual({ trustedAccountId: KILN_ACCOUNT, externalId: 'kiln-x' });
    expect(roleTrustOf(policy(`arn:aws:iam::${KILN_ACCOUNT}:root`, {}))).toBeUndefined();
    expect(roleTrustOf('not json')).toBeUndefined();
  });
});
