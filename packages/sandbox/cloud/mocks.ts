import { createHash } from 'node:crypto';
import type * as pulumi from '@pulumi/pulumi';
import type { AccountRole } from './account-roles.ts';
import { findImage, type ImageQuery } from './public-images.ts';
import { AUTO_SCALING_SERVICE, keyPolicyError, missingServiceLinkedRole, roleName, serviceLinkedRoleArn, serviceLinkedRoleTaken } from './iam-rules.ts';
import { USER_DATA_LIMIT_BYTES, userDataBytes } from '../cloud-init/validate.ts';

/** One resource the program declared, as the engine would have received it. */
const SECRET_SIGNATURE_KEY = '4dabf18193072939515e22adb298388d';

/** Mocks see secrets wrapped in Pulumi's signature object; the sandbox wants the plain values. */
export function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  if (SECRET_SIGNATURE_KEY in record && 'value' in record) return unwrapSecrets(record.value);
  return Object.fromEntries(Object.entries(record).map(([key, entry]) => [key, unwrapSecrets(entry)]));
}

export interface RecordedResource {
  type: string;
  name: string;
  id: string;
  inputs: Record<string, unknown>;
}

export interface MockCloudContext {
  clusterId: string;
  region: string;
  accountId: string;
  /** What the API load balancer's DNS name resolves to in the sandbox. */
  apiHost: string;
  /** The stack the program runs as: the roles it declares are its own. */
  stack: string;
  /** The IAM roles that exist, in every account, when the run starts. */
  roles: readonly AccountRole[];
  /** Public images their owners have deregistered (by name): DescribeImages no longer lists them. */
  withdrawnImages?: readonly string[];
}

export interface CloudMockHooks {
  /**
   * The resources (`<type>::<name>`) a resource directly depends on, as its registration tells the engine. The engine
   * creates a resource only once those exist, and unrelated ones in parallel: a role counts as existing for a resource
   * only when it existed before the run or one of those dependencies created it.
   */
  dependenciesOf?: (type: string, name: string) => readonly string[];
  /** Told of every role as IAM creates it, so it outlives a run that fails afterwards, as in AWS. */
  onRoleCreated?: (role: AccountRole) => void;
}

/** Types whose physical name the AWS provider would generate from the logical name. */
const AUTONAMED_TYPES = new Set([
  'aws:ec2/securityGroup:SecurityGroup',
  'aws:ec2/launchTemplate:LaunchTemplate',
  'aws:lb/loadBalancer:LoadBalancer',
  'aws:lb/targetGroup:TargetGroup',
  'aws:autoscaling/group:Group',
  'aws:iam/role:Role',
  'aws:iam/rolePolicy:RolePolicy',
  'aws:iam/instanceProfile:InstanceProfile',
]);

/**
 * Mocks that answer like AWS would: ids with the right prefixes, ARNs in the
 * cluster's region and account. Ids derive from the cluster and logical name,
 * so running the same program twice yields the same ids, as a second `up` on
 * a real stack would.
 */
export function createCloudMocks(context: MockCloudContext, hooks: CloudMockHooks = {}): { mocks: pulumi.runtime.Mocks; resources: RecordedResource[] } {
  const resources: RecordedResource[] = [];
  const { region, accountId } = context;
  const roles = rolesOfRun(context, hooks);
  const digest = (...parts: string[]) => createHash('sha256').update([context.clusterId, ...parts].join('/')).digest('hex');
  const arn = (service: string, resource: string) => `arn:aws:${service}:${region}:${accountId}:${resource}`;

  // AWS never hands two Elastic IPs the same address: one taken in this run moves the next to the following one.
  const publicIps = new Set<string>();
  const publicIp = (seed: string): string => {
    for (let offset = 0; ; offset++) {
      // Documentation ranges (RFC 5737) look public without being anyone's address.
      const address = `203.0.113.${((Number.parseInt(seed.slice(0, 2), 16) + offset) % 254) + 1}`;
      if (!publicIps.has(address)) {
        publicIps.add(address);
        return address;
      }
    }
  };
  const mocks: pulumi.runtime.Mocks = {
    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
      switch (args.token) {
        case 'aws:index/getCallerIdentity:getCallerIdentity':
          return { id: accountId, accountId, arn: `arn:aws:iam::${accountId}:role/kiln-provisioner`, userId: 'AROAKILNSANDBOX:provisioner' };
        case 'aws:index/getPartition:getPartition':
          return { id: 'aws', partition: 'aws', dnsSuffix: 'amazonaws.com', reverseDnsPrefix: 'com.amazonaws' };
        case 'aws:index/getRegion:getRegion':
          return { id: region, name: region, region, endpoint: `ec2.${region}.amazonaws.com` };
        case 'aws:ec2/getAmi:getAmi': {
          const image = findImage(args.inputs as ImageQuery, context.withdrawnImages);
          return { id: image.imageId, ...image };
        }
        default:
          // A new data source in the program must get a mock on purpose, not a silent empty answer.
          throw new Error(`the sandbox cloud has no mock for ${args.token}`);
      }
    },

    newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
      const inputs = args.inputs as Record<string, unknown>;
      const hash = digest(args.type, args.name);
      const name = typeof inputs.name === 'string' ? inputs.name : `${args.name}-${hash.slice(0, 7)}`;
      roles.create(args.type, args.name, name, inputs);
      // EC2 refuses a launch template whose user data is over its limit (the message as the AWS provider reports it).
      if (args.type === 'aws:ec2/launchTemplate:LaunchTemplate' && userDataBytes(unwrapSecrets(inputs.userData)).length > USER_DATA_LIMIT_BYTES) {
        throw new Error(`creating EC2 Launch Template (${name}): InvalidUserData.Malformed: User data is limited to ${USER_DATA_LIMIT_BYTES} bytes.`);
      }
      const { id, state } = mockState(args.type, { inputs, hash, name, arn, region, accountId, apiHost: context.apiHost, publicIp });
      const withName = AUTONAMED_TYPES.has(args.type) ? { name } : {};
      resources.push({ type: args.type, name: args.name, id, inputs });
      return { id, state: { ...inputs, ...withName, ...state } };
    },
  };
  return { mocks, resources };
}

/**
 * The account's roles as one run sees them: what existed before it, and what the resources it has created so far
 * brought into being, each visible only to the resources that depend on its creator.
 */
function rolesOfRun(context: MockCloudContext, hooks: CloudMockHooks) {
  const before = new Set(context.roles.map((role) => role.arn));
  const ownBefore = new Set(context.roles.filter((role) => role.stack === context.stack).map((role) => role.arn));
  const createdBy = new Map<string, string[]>();
  const dependencies = new Map<string, readonly string[]>();

  const existingFor = (key: string): Set<string> => {
    const existing = new Set(before);
    const seen = new Set<string>();
    const pending = [...(dependencies.get(key) ?? [])];
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      if (seen.has(next)) continue;
      seen.add(next);
      for (const arn of createdBy.get(next) ?? []) existing.add(arn);
      pending.push(...(dependencies.get(next) ?? []));
    }
    return existing;
  };
  /** Whatever exists by now, whichever resource created it: a name is taken as soon as anything holds it. */
  const anywhere = (): Set<string> => new Set([...before, ...[...createdBy.values()].flat()]);
  const record = (key: string, arn: string, declared: boolean) => {
    createdBy.set(key, [...(createdBy.get(key) ?? []), arn]);
    if (!before.has(arn)) hooks.onRoleCreated?.({ arn, ...(declared ? { stack: context.stack } : {}) });
  };

  return {
    /** Refuses what AWS refuses, then records the roles the resource creates. */
    create(type: string, logicalName: string, physicalName: string, inputs: Record<string, unknown>): void {
      const key = `${type}::${logicalName}`;
      dependencies.set(key, hooks.dependenciesOf?.(type, logicalName) ?? []);
      switch (type) {
        case 'aws:kms/key:Key': {
          const existing = existingFor(key);
          const error = keyPolicyError(inputs.policy, (arn) => existing.has(arn));
          if (error) throw error;
          return;
        }
        case 'aws:iam/serviceLinkedRole:ServiceLinkedRole': {
          const service = String(inputs.awsServiceName);
          const arn = serviceLinkedRoleArn(context.accountId, service, typeof inputs.customSuffix === 'string' ? inputs.customSuffix : undefined);
          // The stack's own role from an earlier run is in its state: the engine updates it rather than creating it.
          if (anywhere().has(arn) && !ownBefore.has(arn)) throw serviceLinkedRoleTaken(service, arn);
          record(key, arn, true);
          return;
        }
        case 'aws:iam/role:Role':
          record(key, `arn:aws:iam::${context.accountId}:role/${physicalName}`, true);
          return;
        case 'aws:autoscaling/group:Group': {
          const named = inputs.serviceLinkedRoleArn;
          if (typeof named === 'string' && named !== '') {
            if (!existingFor(key).has(named)) throw missingServiceLinkedRole(physicalName);
            return;
          }
          // "By default, Amazon EC2 Auto Scaling uses a service-linked role named AWSServiceRoleForAutoScaling, which it
          // creates if it does not exist." (Auto Scaling API Reference, CreateAutoScalingGroup, ServiceLinkedRoleARN)
          const defaultRole = serviceLinkedRoleArn(context.accountId, AUTO_SCALING_SERVICE);
          if (!anywhere().has(defaultRole)) record(key, defaultRole, false);
          return;
        }
        default:
          return;
      }
    },
  };
}

interface StateContext {
  inputs: Record<string, unknown>;
  hash: string;
  name: string;
  arn: (service: string, resource: string) => string;
  region: string;
  accountId: string;
  apiHost: string;
  /** A public address no other Elastic IP of the run has. */
  publicIp: (seed: string) => string;
}

function uuidFrom(hash: string): string {
  return `${hash.slice(0, 8)}-${hash.slice(8, 12)}-4${hash.slice(13, 16)}-a${hash.slice(17, 20)}-${hash.slice(20, 32)}`;
}

function mockState(type: string, c: StateContext): { id: string; state: Record<string, unknown> } {
  const short = (prefix: string) => `${prefix}-${c.hash.slice(0, 17)}`;
  const ec2 = (prefix: string, kind: string) => {
    const id = short(prefix);
    return { id, state: { arn: c.arn('ec2', `${kind}/${id}`), ownerId: c.accountId } };
  };
  const elb = (kind: string) => {
    const suffix = `${kind}/${c.name}/${c.hash.slice(0, 16)}`;
    const arn = c.arn('elasticloadbalancing', suffix);
    return { arn, arnSuffix: suffix };
  };
  switch (type) {
    case 'aws:ec2/vpc:Vpc': {
      const vpc = ec2('vpc', 'vpc');
      return {
        id: vpc.id,
        state: { ...vpc.state, mainRouteTableId: `rtb-${c.hash.slice(17, 34)}`, defaultSecurityGroupId: `sg-${c.hash.slice(17, 34)}` },
      };
    }
    case 'aws:ec2/subnet:Subnet':
      return ec2('subnet', 'subnet');
    case 'aws:ec2/internetGateway:InternetGateway':
      return ec2('igw', 'internet-gateway');
    case 'aws:ec2/routeTable:RouteTable':
      return ec2('rtb', 'route-table');
    case 'aws:ec2/routeTableAssociation:RouteTableAssociation':
      return { id: short('rtbassoc'), state: {} };
    case 'aws:ec2/natGateway:NatGateway':
      return { id: short('nat'), state: { privateIp: '10.0.192.10' } };
    case 'aws:ec2/eip:Eip': {
      const id = short('eipalloc');
      return { id, state: { allocationId: id, publicIp: c.publicIp(c.hash), arn: c.arn('ec2', `elastic-ip/${id}`) } };
    }
    case 'aws:ec2/securityGroup:SecurityGroup':
      return ec2('sg', 'security-group');
    case 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule':
    case 'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule': {
      const id = short('sgr');
      return { id, state: { securityGroupRuleId: id, arn: c.arn('ec2', `security-group-rule/${id}`) } };
    }
    case 'aws:ec2/launchTemplate:LaunchTemplate': {
      const template = ec2('lt', 'launch-template');
      return { id: template.id, state: { ...template.state, latestVersion: 1, defaultVersion: 1 } };
    }
    case 'aws:kms/key:Key': {
      const keyId = uuidFrom(c.hash);
      return { id: keyId, state: { keyId, arn: c.arn('kms', `key/${keyId}`), keyUsage: 'ENCRYPT_DECRYPT' } };
    }
    case 'aws:kms/alias:Alias':
      return { id: c.name, state: { arn: c.arn('kms', c.name), targetKeyArn: c.arn('kms', `key/${String(c.inputs.targetKeyId)}`) } };
    case 'aws:lb/loadBalancer:LoadBalancer': {
      const { arn, arnSuffix } = elb('net');
      return { id: arn, state: { arn, arnSuffix, dnsName: c.apiHost, zoneId: 'Z3F0SRJ5LGBH90' } };
    }
    case 'aws:lb/targetGroup:TargetGroup': {
      const { arn, arnSuffix } = elb('targetgroup');
      return { id: arn, state: { arn, arnSuffix } };
    }
    case 'aws:lb/listener:Listener': {
      const arn = c.arn('elasticloadbalancing', `listener/net/${c.name}/${c.hash.slice(0, 16)}/${c.hash.slice(16, 32)}`);
      return { id: arn, state: { arn } };
    }
    case 'aws:autoscaling/group:Group':
      return { id: c.name, state: { arn: c.arn('autoscaling', `autoScalingGroup:${uuidFrom(c.hash)}:autoScalingGroupName/${c.name}`) } };
    case 'aws:iam/role:Role':
    case 'aws:iam/instanceProfile:InstanceProfile': {
      const kind = type === 'aws:iam/role:Role' ? 'role' : 'instance-profile';
      return { id: c.name, state: { arn: `arn:aws:iam::${c.accountId}:${kind}/${c.name}`, uniqueId: `AROA${c.hash.slice(0, 17).toUpperCase()}` } };
    }
    case 'aws:iam/rolePolicy:RolePolicy':
      return { id: `${String(c.inputs.role)}:${c.name}`, state: {} };
    case 'aws:iam/serviceLinkedRole:ServiceLinkedRole': {
      const service = String(c.inputs.awsServiceName);
      const arn = serviceLinkedRoleArn(c.accountId, service, typeof c.inputs.customSuffix === 'string' ? c.inputs.customSuffix : undefined);
      // The provider keeps the role's ARN as its id (terraform-provider-aws resourceServiceLinkedRoleCreate).
      return { id: arn, state: { arn, name: roleName(arn), path: `/aws-service-role/${service}/`, uniqueId: `AROA${c.hash.slice(0, 17).toUpperCase()}` } };
    }
    default:
      return { id: `${c.name}-${c.hash.slice(0, 8)}`, state: {} };
  }
}
