import { createHash } from 'node:crypto';
import type * as pulumi from '@pulumi/pulumi';

/** One resource the program declared, as the engine would have received it. */
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
export function createCloudMocks(context: MockCloudContext): { mocks: pulumi.runtime.Mocks; resources: RecordedResource[] } {
  const resources: RecordedResource[] = [];
  const { region, accountId } = context;
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
          const filters = (args.inputs as { filters?: { name: string; values: string[] }[] }).filters ?? [];
          const architecture = filters.find((filter) => filter.name === 'architecture')?.values[0] ?? 'x86_64';
          const imageId = `ami-${digest('ami', architecture).slice(0, 17)}`;
          return {
            id: imageId,
            imageId,
            architecture,
            name: `debian-12-${architecture === 'arm64' ? 'arm64' : 'amd64'}-20250101-0000`,
            rootDeviceName: '/dev/xvda',
            rootDeviceType: 'ebs',
            virtualizationType: 'hvm',
          };
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
      const { id, state } = mockState(args.type, { inputs, hash, name, arn, region, accountId, apiHost: context.apiHost, publicIp });
      const withName = AUTONAMED_TYPES.has(args.type) ? { name } : {};
      resources.push({ type: args.type, name: args.name, id, inputs });
      return { id, state: { ...inputs, ...withName, ...state } };
    },
  };
  return { mocks, resources };
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
    default:
      return { id: `${c.name}-${c.hash.slice(0, 8)}`, state: {} };
  }
}
