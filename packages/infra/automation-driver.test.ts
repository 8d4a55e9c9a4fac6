import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ClusterSpec, StepError, newId } from '#core';
import { AutomationDriver, type AutomationDriverOptions } from './automation-driver.ts';
import type { ClusterProgramInput } from './program-input.ts';

const automation = vi.hoisted(() => {
  class CommandError extends Error {}
  class ConcurrentUpdateError extends CommandError {}
  class StackNotFoundError extends CommandError {}
  return {
    CommandError,
    ConcurrentUpdateError,
    StackNotFoundError,
    createOrSelectStack: vi.fn(),
    selectStack: vi.fn(),
  };
});

vi.mock('@pulumi/pulumi/automation', () => ({
  CommandError: automation.CommandError,
  ConcurrentUpdateError: automation.ConcurrentUpdateError,
  StackNotFoundError: automation.StackNotFoundError,
  LocalWorkspace: { createOrSelectStack: automation.createOrSelectStack, selectStack: automation.selectStack },
}));

const OPTIONS: AutomationDriverOptions = {
  backendUrl: 's3://kiln-state?region=eu-central-1',
  secretsProvider: 'awskms://alias/kiln-state?region=eu-central-1',
};

function clusterInput(): ClusterProgramInput {
  return {
    tenantId: newId('tenant'),
    clusterId: newId('cluster'),
    spec: ClusterSpec.parse({ name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }] }),
    availabilityZones: ['eu-central-1a', 'eu-central-1b', 'eu-central-1c'],
    machineOs: '13',
    kilnEgressCidrs: ['198.51.100.7/32'],
    userData: { controlPlane: '#cloud-config\n', pools: { default: '#cloud-config\n' } },
  };
}

const EXPORTED = {
  vpcId: 'vpc-0123456789abcdef0',
  privateSubnetIds: ['subnet-a', 'subnet-b', 'subnet-c'],
  apiHost: 'kiln-api-123.elb.eu-central-1.amazonaws.com',
  apiEndpoint: 'https://kiln-api-123.elb.eu-central-1.amazonaws.com:6443',
  kmsKeyArn: 'arn:aws:kms:eu-central-1:123456789012:key/0d7c6b2a-1f2e-4c3d-9a8b-7c6d5e4f3a2b',
  controlPlane: { asgName: 'kiln-cp-abc', replicas: 3 },
  nodePools: [{ name: 'default', asgName: 'kiln-pool-default-abc', size: 2 }],
};

function fakeStack(exported: Record<string, unknown> = EXPORTED) {
  const calls: string[] = [];
  const stack = {
    calls,
    setConfig: vi.fn((key: string) => {
      calls.push(`config ${key}`);
      return Promise.resolve();
    }),
    up: vi.fn(() => {
      calls.push('up');
      const outputs = Object.fromEntries(Object.entries(exported).map(([key, value]) => [key, { value, secret: false }]));
      return Promise.resolve({ stdout: '', stderr: '', outputs, summary: {} });
    }),
    destroy: vi.fn(() => {
      calls.push('destroy');
      return Promise.resolve({ stdout: '', stderr: '', summary: {} });
    }),
    workspace: {
      removeStack: vi.fn((name: string) => {
        calls.push(`remove ${name}`);
        return Promise.resolve();
      }),
    },
  };
  return stack;
}

async function failureOf(work: Promise<unknown>): Promise<StepError> {
  try {
    await work;
  } catch (error) {
    if (error instanceof StepError) return error;
    throw error;
  }
  throw new Error('expected the operation to fail');
}

beforeEach(() => {
  automation.createOrSelectStack.mockReset();
  automation.selectStack.mockReset();
});

describe('AutomationDriver.up', () => {
  it('selects the cluster stack with the S3 backend and KMS secrets, sets the region, then updates', async () => {
    const stack = fakeStack();
    automation.createOrSelectStack.mockResolvedValue(stack);
    const input = clusterInput();

    const outputs = await new AutomationDriver({ ...OPTIONS, workDir: '/tmp/kiln-work' }).up(input);

    expect(outputs).toEqual(EXPORTED);
    const stackName = `${input.tenantId}.${input.clusterId}`;
    expect(automation.createOrSelectStack).toHaveBeenCalledTimes(1);
    const [args, workspace] = automation.createOrSelectStack.mock.calls[0] as [
      { stackName: string; projectName: string; program: unknown },
      Record<string, unknown>,
    ];
    expect(args).toMatchObject({ stackName, projectName: 'kiln-cluster' });
    expect(typeof args.program).toBe('function');
    expect(workspace).toEqual({
      workDir: '/tmp/kiln-work',
      secretsProvider: OPTIONS.secretsProvider,
      projectSettings: { name: 'kiln-cluster', runtime: 'nodejs', backend: { url: OPTIONS.backendUrl } },
      stackSettings: { [stackName]: { secretsProvider: OPTIONS.secretsProvider } },
    });
    expect(stack.setConfig).toHaveBeenCalledWith('aws:region', { value: 'eu-central-1' });
    expect(stack.calls).toEqual(['config aws:region', 'up']);
  });

  it('uses the configured project name', async () => {
    automation.createOrSelectStack.mockResolvedValue(fakeStack());
    await new AutomationDriver({ ...OPTIONS, projectName: 'kiln-staging' }).up(clusterInput());
    expect(automation.createOrSelectStack.mock.calls[0]?.[0]).toMatchObject({ projectName: 'kiln-staging' });
  });

  it('fails permanently on outputs that do not match the contract', async () => {
    automation.createOrSelectStack.mockResolvedValue(fakeStack({ ...EXPORTED, kmsKeyArn: 'not-an-arn' }));
    const error = await failureOf(new AutomationDriver(OPTIONS).up(clusterInput()));
    expect(error).toMatchObject({ retriable: false, step: 'infrastructure' });
    expect(error.message).toContain('kmsKeyArn');
  });

  it('rejects an input the program cannot build without touching any stack', async () => {
    const input = clusterInput();
    const error = await failureOf(new AutomationDriver(OPTIONS).up({ ...input, userData: { ...input.userData, pools: {} } }));
    expect(error).toMatchObject({ retriable: false, name: 'Kiln.Permanent' });
    expect(error.message).toContain('userData.pools.default');
    expect(automation.createOrSelectStack).not.toHaveBeenCalled();
  });

  it('refuses backends and secrets providers that are not S3 and KMS', () => {
    expect(() => new AutomationDriver({ ...OPTIONS, backendUrl: 'file:///tmp/state' })).toThrow(/s3:\/\//);
    expect(() => new AutomationDriver({ ...OPTIONS, secretsProvider: 'passphrase' })).toThrow(/awskms:\/\//);
  });
});

describe('AutomationDriver error mapping', () => {
  async function upFailingWith(error: Error): Promise<StepError> {
    const stack = fakeStack();
    stack.up.mockRejectedValue(error);
    automation.createOrSelectStack.mockResolvedValue(stack);
    return failureOf(new AutomationDriver(OPTIONS).up(clusterInput()));
  }

  it('retries a concurrent update', async () => {
    const error = await upFailingWith(new automation.ConcurrentUpdateError('code: 255\n stderr: error: the stack is currently locked by 1 lock(s)'));
    expect(error).toMatchObject({ retriable: true, name: 'Kiln.Transient', step: 'infrastructure' });
    expect(error.message).toContain('another update');
  });

  it.each([
    'error: creating EC2 VPC: operation error EC2: CreateVpc, api error Throttling: Rate exceeded',
    'error: waiting for Auto Scaling Group (kiln-cp) capacity satisfied: timeout while waiting for state',
    'error: reading KMS Key: dial tcp: lookup kms.eu-central-1.amazonaws.com: no such host',
    'error: read tcp 10.0.0.1:443: connection reset by peer',
    'error: creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient m7i.large capacity',
    'error: creating Auto Scaling Group (kiln-cp): operation error Auto Scaling: CreateAutoScalingGroup, https response error StatusCode: 400, api error ValidationError: ARN specified for Service-Linked Role does not exist.',
  ])('retries a transient engine failure: %s', async (message) => {
    const error = await upFailingWith(new automation.CommandError(`code: 255\n stdout: Updating...\n stderr: ${message}\n`));
    expect(error).toMatchObject({ retriable: true, name: 'Kiln.Transient' });
  });

  it('fails permanently otherwise, with the engine error line only, truncated and without secrets', async () => {
    const progress = Array.from({ length: 200 }, (_, index) => `    + aws:ec2:Subnet kiln-subnet-${index} creating`).join('\n');
    const log = [
      'code: 255',
      ` stdout: Updating (ten.cls):\n${progress}`,
      'Diagnostics:',
      '  aws:ec2:LaunchTemplate (kiln-cp):',
      `    error: creating EC2 Launch Template: InvalidParameterValue: user data I2Nsb3VkLWNvbmZpZwpib290c3RyYXBUb2tlbjogYWJjZGVmLjAxMjM0NTY3ODlhYmNkZWY= is invalid; token=abcdef.0123456789abcdef ${'x'.repeat(500)}`,
      '  pulumi:pulumi:Stack (kiln-cluster-ten.cls):',
      '    error: update failed',
      ' stderr: ',
    ].join('\n');
    const error = await upFailingWith(new automation.CommandError(log));
    expect(error).toMatchObject({ retriable: false, name: 'Kiln.Permanent', step: 'infrastructure' });
    expect(error.message).toContain('creating EC2 Launch Template: InvalidParameterValue');
    expect(error.message).not.toContain('I2Nsb3VkLWNvbmZpZw');
    expect(error.message).not.toContain('0123456789abcdef');
    expect(error.message).not.toContain('kiln-subnet-');
    expect(error.message.length).toBeLessThan(400);
  });
});

describe('AutomationDriver.destroy', () => {
  it('destroys the cluster stack, then removes it', async () => {
    const stack = fakeStack();
    automation.selectStack.mockResolvedValue(stack);
    const ref = { tenantId: newId('tenant'), clusterId: newId('cluster') };

    await new AutomationDriver(OPTIONS).destroy(ref);

    const name = `${ref.tenantId}.${ref.clusterId}`;
    expect(automation.selectStack.mock.calls[0]?.[0]).toMatchObject({ stackName: name, projectName: 'kiln-cluster' });
    expect(automation.selectStack.mock.calls[0]?.[1]).toMatchObject({
      secretsProvider: OPTIONS.secretsProvider,
      projectSettings: { backend: { url: OPTIONS.backendUrl } },
    });
    expect(stack.calls).toEqual(['destroy', `remove ${name}`]);
    expect(automation.createOrSelectStack).not.toHaveBeenCalled();
  });

  it('treats a missing stack as already destroyed', async () => {
    automation.selectStack.mockRejectedValue(new automation.StackNotFoundError("no stack named 'x' found"));
    await expect(new AutomationDriver(OPTIONS).destroy({ tenantId: newId('tenant'), clusterId: newId('cluster') })).resolves.toBeUndefined();
  });

  it('maps a failed destroy to a step error and keeps the stack', async () => {
    const stack = fakeStack();
    stack.destroy.mockRejectedValue(new automation.CommandError('code: 255\n stderr: error: deleting EC2 VPC: DependencyViolation: has dependencies'));
    automation.selectStack.mockResolvedValue(stack);
    const error = await failureOf(new AutomationDriver(OPTIONS).destroy({ tenantId: newId('tenant'), clusterId: newId('cluster') }));
    expect(error).toMatchObject({ retriable: false, name: 'Kiln.Permanent' });
    expect(error.message).toContain('DependencyViolation');
    expect(stack.workspace.removeStack).not.toHaveBeenCalled();
  });
});

describe("AutomationDriver in the tenant's own account", () => {
  it('builds in the order region and assumes the tenant role with its external ID', async () => {
    const stack = fakeStack();
    automation.createOrSelectStack.mockResolvedValue(stack);
    const input = {
      ...clusterInput(),
      spec: ClusterSpec.parse({
        name: 'theirs',
        region: 'us-west-2',
        nodePools: [{ name: 'default', size: 1 }],
        account: { roleArn: 'arn:aws:iam::210987654321:role/KilnProvisioner', externalId: 'kiln-ten-123' },
      }),
      availabilityZones: ['us-west-2a', 'us-west-2b', 'us-west-2c'],
    };
    await new AutomationDriver(OPTIONS).up(input);
    expect(stack.setConfig).toHaveBeenCalledWith('aws:region', { value: 'us-west-2' });
    expect(stack.setConfig).toHaveBeenCalledWith('aws:assumeRoles[0].roleArn', { value: 'arn:aws:iam::210987654321:role/KilnProvisioner' }, true);
    expect(stack.setConfig).toHaveBeenCalledWith('aws:assumeRoles[0].externalId', { value: 'kiln-ten-123' }, true);
  });
});
