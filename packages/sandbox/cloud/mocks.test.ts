import { describe, expect, it } from 'vitest';
import type { AccountRole } from './account-roles.ts';
import { createCloudMocks, type MockCloudContext } from './mocks.ts';

const ACCOUNT = '111122223333';
const DEFAULT_ROLE = `arn:aws:iam::${ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`;
const KEY = 'aws:kms/key:Key';
const SLR = 'aws:iam/serviceLinkedRole:ServiceLinkedRole';
const GROUP = 'aws:autoscaling/group:Group';

function keyPolicy(...principals: string[]): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
      { Effect: 'Allow', Principal: { AWS: principals }, Action: ['kms:Decrypt'], Resource: '*' },
    ],
  });
}

/** A run's mocks in an account holding `roles`, with the dependencies each resource declares. */
function account(roles: AccountRole[] = [], dependencies: Record<string, string[]> = {}) {
  const created: AccountRole[] = [];
  const context: MockCloudContext = { clusterId: 'cls_a', region: 'eu-central-1', accountId: ACCOUNT, apiHost: 'api.test', stack: 'ten_a.cls_a', roles };
  const { mocks } = createCloudMocks(context, {
    dependenciesOf: (type, name) => dependencies[`${type}::${name}`] ?? [],
    onRoleCreated: (role) => created.push(role),
  });
  // The mock monitor awaits newResource, so what it throws reaches the program as a rejection.
  const create = async (type: string, name: string, inputs: Record<string, unknown>) =>
    mocks.newResource({ type, name, inputs, custom: true });
  return { create, created };
}

describe('the sandbox IAM, KMS and Auto Scaling as one account sees them', () => {
  it('refuses a key policy naming Auto Scaling’s service-linked role before the account’s first group, as KMS does', async () => {
    const fresh = account();
    await expect(fresh.create(KEY, 'key', { policy: keyPolicy(DEFAULT_ROLE) })).rejects.toThrow(
      /MalformedPolicyDocumentException: Policy contains a statement with one or more invalid principals\./,
    );
    const used = account([{ arn: DEFAULT_ROLE }]);
    await expect(used.create(KEY, 'key', { policy: keyPolicy(DEFAULT_ROLE) })).resolves.toMatchObject({ id: expect.any(String) as unknown });
  });

  it('lets a key name a role only once the resources it depends on have created it', async () => {
    const custom = `arn:aws:iam::${ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_kiln-1`;
    const ordered = account([], { [`${KEY}::key`]: [`${SLR}::slr`] });
    await ordered.create(SLR, 'slr', { awsServiceName: 'autoscaling.amazonaws.com', customSuffix: 'kiln-1' });
    await expect(ordered.create(KEY, 'key', { policy: keyPolicy(custom) })).resolves.toBeDefined();
    expect(ordered.created).toEqual([{ arn: custom, stack: 'ten_a.cls_a' }]);

    // Created in the same run but not a dependency: the engine may create the key first.
    const unordered = account();
    await unordered.create(SLR, 'slr', { awsServiceName: 'autoscaling.amazonaws.com', customSuffix: 'kiln-1' });
    await expect(unordered.create(KEY, 'key', { policy: keyPolicy(custom) })).rejects.toThrow(/invalid principals/);
  });

  it('creates Auto Scaling’s default role with the first group that names no role, and only then', async () => {
    const fresh = account();
    await fresh.create(GROUP, 'cp', { minSize: 1, maxSize: 1 });
    await fresh.create(GROUP, 'pool', { minSize: 1, maxSize: 1 });
    expect(fresh.created).toEqual([{ arn: DEFAULT_ROLE }]);
    expect(account([{ arn: DEFAULT_ROLE }]).created).toEqual([]);
  });

  it('refuses a group naming a service-linked role that does not exist', async () => {
    const fresh = account();
    await expect(fresh.create(GROUP, 'cp', { name: 'cp-1', serviceLinkedRoleArn: `${DEFAULT_ROLE}_missing` })).rejects.toThrow(
      'creating Auto Scaling Group (cp-1): operation error Auto Scaling: CreateAutoScalingGroup, https response error StatusCode: 400, api error ValidationError: ARN specified for Service-Linked Role does not exist.',
    );
  });

  it('refuses a service-linked role whose name is taken, unless the stack already holds it', async () => {
    const inputs = { awsServiceName: 'autoscaling.amazonaws.com' };
    await expect(account([{ arn: DEFAULT_ROLE }]).create(SLR, 'slr', inputs)).rejects.toThrow(
      'InvalidInput: Service role name AWSServiceRoleForAutoScaling has been taken in this account, please try a different suffix.',
    );
    await expect(account([{ arn: DEFAULT_ROLE, stack: 'ten_b.cls_b' }]).create(SLR, 'slr', inputs)).rejects.toThrow(/has been taken/);
    const own = account([{ arn: DEFAULT_ROLE, stack: 'ten_a.cls_a' }]);
    await expect(own.create(SLR, 'slr', inputs)).resolves.toMatchObject({ id: DEFAULT_ROLE, state: { name: 'AWSServiceRoleForAutoScaling' } });
    expect(own.created).toEqual([]);
  });

  it('accepts accounts as principals and refuses roles and users that do not exist', async () => {
    const fresh = account([{ arn: `arn:aws:iam::${ACCOUNT}:role/kiln-provisioner` }]);
    await expect(fresh.create(KEY, 'a', { policy: keyPolicy('444455556666', `arn:aws:iam::${ACCOUNT}:role/kiln-provisioner`) })).resolves.toBeDefined();
    await expect(fresh.create(KEY, 'b', { policy: keyPolicy(`arn:aws:iam::${ACCOUNT}:user/nobody`) })).rejects.toThrow(/invalid principals/);
  });
});

describe('the sandbox cloud mocks', () => {
  it('give every Elastic IP of a run an address of its own', async () => {
    const { create } = account();
    const addresses = await Promise.all(
      Array.from({ length: 254 }, async (_, index) => {
        const created = await create('aws:ec2/eip:Eip', `nat-${index}`, { domain: 'vpc' });
        return (created.state as { publicIp: string }).publicIp;
      }),
    );
    expect(new Set(addresses).size).toBe(254);
  });

  it('refuses a launch template whose user data is over EC2\'s 16 KB, as EC2 does, and counts the bytes it is given', async () => {
    const { create } = account();
    const encoded = (bytes: number) => Buffer.alloc(bytes, 'a').toString('base64');
    await expect(create('aws:ec2/launchTemplate:LaunchTemplate', 'big', { userData: encoded(16_385) })).rejects.toThrow(/InvalidUserData\.Malformed: User data is limited to 16384 bytes\./);
    await expect(create('aws:ec2/launchTemplate:LaunchTemplate', 'fits', { userData: encoded(16_384) })).resolves.toBeDefined();
  });
});

