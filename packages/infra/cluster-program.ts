import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { type ClusterSpec, type MachineOsRelease, cidrBlock, machineOsReleaseByVersion, numberToIpv4 } from '#core';
import type { InfrastructureOutputs } from './outputs.ts';
import { ClusterProgramInput } from './program-input.ts';
import { planSubnets, type SubnetPlan } from './subnets.ts';

export const API_PORT = 6443;
export const SSH_PORT = 22;
export const ETCD_PORTS = { from: 2379, to: 2380 } as const;
export const KUBELET_PORT = 10250;
export const WIREGUARD_PORT = 51871;
export const VXLAN_PORT = 8472;
export const CILIUM_HEALTH_PORT = 4240;

export const TENANT_TAG = 'kiln:tenant-id';
export const CLUSTER_TAG = 'kiln:cluster-id';

const ROOT_DEVICE = '/dev/xvda';
const ROOT_VOLUME_GIB = 50;

/** Stack outputs as the program returns them; the engine resolves them to `InfrastructureOutputs`. */
export type ClusterProgramOutputs = { [K in keyof InfrastructureOutputs]: pulumi.Output<InfrastructureOutputs[K]> };

/**
 * A short prefix that makes every logical and physical name unique per
 * cluster while leaving room for the provider's random suffix inside the
 * 32-character limit of load balancer and target group names.
 */
export function resourcePrefix(clusterId: string): string {
  return `kiln-${createHash('sha256').update(clusterId).digest('hex').slice(0, 10)}`;
}

/**
 * The Pulumi inline program for one cluster. Input is validated when the
 * program is built, so a bad order fails before any stack is touched.
 */
export function clusterProgram(rawInput: ClusterProgramInput): () => Promise<ClusterProgramOutputs> {
  const input = ClusterProgramInput.parse(rawInput);
  const subnets = planSubnets(input.spec.network.vpcCidr, input.availabilityZones.length);
  return () => Promise.resolve(declareCluster(input, subnets));
}

/** What every part of the program shares: the spec, the name prefix and the tags. */
interface Scope {
  input: ClusterProgramInput;
  spec: ClusterSpec;
  prefix: string;
  tags: (name: string, extra?: Record<string, string>) => Record<string, string>;
}

function declareCluster(input: ClusterProgramInput, subnets: SubnetPlan): ClusterProgramOutputs {
  const prefix = resourcePrefix(input.clusterId);
  const scope: Scope = {
    input,
    spec: input.spec,
    prefix,
    tags: (name, extra = {}) => ({ [TENANT_TAG]: input.tenantId, [CLUSTER_TAG]: input.clusterId, Name: name, ...extra }),
  };
  const network = declareNetwork(scope, subnets);
  const firewall = declareFirewall(scope, network);
  const autoScalingRole = declareAutoScalingRole(scope);
  const key = declareClusterKey(scope, autoScalingRole);
  const api = declareApiLoadBalancer(scope, network, firewall.loadBalancer);
  const machines = declareMachines(scope, network, firewall, key, autoScalingRole, api.targetGroup);

  return {
    vpcId: network.vpc.id,
    privateSubnetIds: pulumi.all(network.privateSubnetIds),
    apiHost: api.loadBalancer.dnsName,
    apiEndpoint: pulumi.interpolate`https://${api.loadBalancer.dnsName}:${API_PORT}`,
    kmsKeyArn: key.arn,
    controlPlane: pulumi.output({ asgName: machines.controlPlane.name, replicas: scope.spec.controlPlane.replicas }),
    nodePools: pulumi.output(machines.pools.map((pool) => ({ name: pool.name, asgName: pool.group.name, size: pool.size }))),
  };
}

type Network = ReturnType<typeof declareNetwork>;

/** Machines live in private subnets; the public subnets hold only the NAT gateways and the load balancer. */
function declareNetwork({ input, prefix, tags }: Scope, subnets: SubnetPlan) {
  const vpcName = `${prefix}-vpc`;
  const vpc = new aws.ec2.Vpc(vpcName, {
    cidrBlock: input.spec.network.vpcCidr,
    enableDnsHostnames: true,
    enableDnsSupport: true,
    tags: tags(vpcName),
  });
  const igwName = `${prefix}-igw`;
  const internetGateway = new aws.ec2.InternetGateway(igwName, { vpcId: vpc.id, tags: tags(igwName) });
  const publicRouteTableName = `${prefix}-public`;
  const publicRouteTable = new aws.ec2.RouteTable(publicRouteTableName, {
    vpcId: vpc.id,
    routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: internetGateway.id }],
    tags: tags(publicRouteTableName, { 'kiln:tier': 'public' }),
  });

  const zones = input.availabilityZones.map((zone, index) => {
    const letter = zone.slice(-1);
    const publicName = `${prefix}-public-${letter}`;
    const publicSubnet = new aws.ec2.Subnet(publicName, {
      vpcId: vpc.id,
      availabilityZone: zone,
      cidrBlock: subnets.publicCidrs[index],
      mapPublicIpOnLaunch: false,
      tags: tags(publicName, { 'kiln:tier': 'public' }),
    });
    new aws.ec2.RouteTableAssociation(publicName, { subnetId: publicSubnet.id, routeTableId: publicRouteTable.id });

    const natName = `${prefix}-nat-${letter}`;
    const natAddress = new aws.ec2.Eip(natName, { domain: 'vpc', tags: tags(natName) }, { dependsOn: [internetGateway] });
    const natGateway = new aws.ec2.NatGateway(natName, {
      allocationId: natAddress.allocationId,
      subnetId: publicSubnet.id,
      connectivityType: 'public',
      tags: tags(natName),
    });

    const privateName = `${prefix}-private-${letter}`;
    const privateSubnet = new aws.ec2.Subnet(privateName, {
      vpcId: vpc.id,
      availabilityZone: zone,
      cidrBlock: subnets.privateCidrs[index],
      mapPublicIpOnLaunch: false,
      tags: tags(privateName, { 'kiln:tier': 'private' }),
    });
    // One NAT gateway per zone keeps a zone's egress alive when another zone fails.
    const privateRouteTable = new aws.ec2.RouteTable(privateName, {
      vpcId: vpc.id,
      routes: [{ cidrBlock: '0.0.0.0/0', natGatewayId: natGateway.id }],
      tags: tags(privateName, { 'kiln:tier': 'private' }),
    });
    new aws.ec2.RouteTableAssociation(privateName, { subnetId: privateSubnet.id, routeTableId: privateRouteTable.id });
    return { publicSubnet, privateSubnet, natAddress };
  });

  return {
    vpc,
    publicSubnetIds: zones.map((zone) => zone.publicSubnet.id),
    privateSubnetIds: zones.map((zone) => zone.privateSubnet.id),
    natAddresses: zones.map((zone) => zone.natAddress),
  };
}

type Peer = { cidr: pulumi.Input<string> } | { securityGroupId: pulumi.Input<string> };
type Ports = { from: number; to: number };

interface IngressRule {
  protocol: 'tcp' | 'udp' | '-1';
  ports?: Ports;
  source: Peer;
  description: string;
}

type Firewall = ReturnType<typeof declareFirewall>;

/**
 * One security group for the load balancer and one per machine role. Only
 * the load balancer takes traffic from outside; machines accept the API from
 * the load balancer, SSH from the order's ranges (none by default), and the
 * Kubernetes and Cilium ports from each other.
 */
function declareFirewall({ input, spec, prefix, tags }: Scope, network: Network) {
  const securityGroup = (name: string, description: string) =>
    new aws.ec2.SecurityGroup(name, { vpcId: network.vpc.id, description, tags: tags(name) });
  const loadBalancer = securityGroup(`${prefix}-api-lb`, 'Kubernetes API load balancer: the only internet entrypoint');
  const controlPlane = securityGroup(`${prefix}-control-plane`, 'Kubernetes control plane machines');
  const workers = securityGroup(`${prefix}-workers`, 'Kubernetes worker machines');

  const allowIngress = (name: string, groupId: pulumi.Input<string>, rule: IngressRule) =>
    new aws.vpc.SecurityGroupIngressRule(name, {
      securityGroupId: groupId,
      ipProtocol: rule.protocol,
      fromPort: rule.ports?.from,
      toPort: rule.ports?.to,
      cidrIpv4: 'cidr' in rule.source ? rule.source.cidr : undefined,
      referencedSecurityGroupId: 'securityGroupId' in rule.source ? rule.source.securityGroupId : undefined,
      description: rule.description,
      tags: tags(name),
    });
  const allowEgress = (name: string, groupId: pulumi.Input<string>, destination: Peer, ports?: Ports) =>
    new aws.vpc.SecurityGroupEgressRule(name, {
      securityGroupId: groupId,
      ipProtocol: ports ? 'tcp' : '-1',
      fromPort: ports?.from,
      toPort: ports?.to,
      cidrIpv4: 'cidr' in destination ? destination.cidr : undefined,
      referencedSecurityGroupId: 'securityGroupId' in destination ? destination.securityGroupId : undefined,
      tags: tags(name),
    });
  const apiPorts = { from: API_PORT, to: API_PORT };

  // Kiln's own calls (the workflow steps, the health poller, remediation, key rotation) come from Kiln's egress
  // addresses: admitted whatever the order says, so narrowing the order's ranges never locks Kiln out. The load
  // balancer's group is what filters clients: targets see the load balancer's address (no client IP preservation) and
  // admit only its group.
  const kilnEgress = new Set(input.kilnEgressCidrs.map(canonicalCidr));
  input.kilnEgressCidrs.forEach((cidr, index) => {
    allowIngress(`${prefix}-api-lb-in-kiln-${index}`, loadBalancer.id, {
      protocol: 'tcp',
      ports: apiPorts,
      source: { cidr },
      description: 'Kubernetes API from Kiln (its NAT gateways)',
    });
  });
  spec.network.apiAllowedCidrs.forEach((cidr, index) => {
    // EC2 refuses a rule that repeats one the group has (InvalidPermission.Duplicate); Kiln's own rule admits it already.
    if (kilnEgress.has(canonicalCidr(cidr))) return;
    allowIngress(`${prefix}-api-lb-in-${index}`, loadBalancer.id, {
      protocol: 'tcp',
      ports: apiPorts,
      source: { cidr },
      description: 'Kubernetes API from an allowed range',
    });
  });
  // Machines reach the internet-facing load balancer through their NAT gateway, so its address must be let in.
  network.natAddresses.forEach((address, index) => {
    allowIngress(`${prefix}-api-lb-in-nat-${index}`, loadBalancer.id, {
      protocol: 'tcp',
      ports: apiPorts,
      source: { cidr: pulumi.interpolate`${address.publicIp}/32` },
      description: 'Kubernetes API from the cluster machines via NAT',
    });
  });
  allowEgress(`${prefix}-api-lb-out`, loadBalancer.id, { securityGroupId: controlPlane.id }, apiPorts);

  allowIngress(`${prefix}-cp-in-api-from-lb`, controlPlane.id, {
    protocol: 'tcp',
    ports: apiPorts,
    source: { securityGroupId: loadBalancer.id },
    description: 'Kubernetes API from the load balancer only',
  });
  allowIngress(`${prefix}-cp-in-etcd-from-cp`, controlPlane.id, {
    protocol: 'tcp',
    ports: ETCD_PORTS,
    source: { securityGroupId: controlPlane.id },
    description: 'etcd peers and clients among control plane machines',
  });

  const roles = [
    { role: 'cp', groupId: controlPlane.id },
    { role: 'workers', groupId: workers.id },
  ];
  for (const { role, groupId } of roles) {
    const fromEveryMachine = (name: string, rule: Omit<IngressRule, 'source'>) => {
      for (const peer of roles) {
        allowIngress(`${prefix}-${role}-in-${name}-from-${peer.role}`, groupId, { ...rule, source: { securityGroupId: peer.groupId } });
      }
    };
    allowIngress(`${prefix}-${role}-in-kubelet-from-cp`, groupId, {
      protocol: 'tcp',
      ports: { from: KUBELET_PORT, to: KUBELET_PORT },
      source: { securityGroupId: controlPlane.id },
      description: 'kubelet API from the control plane',
    });
    fromEveryMachine('wireguard', {
      protocol: 'udp',
      ports: { from: WIREGUARD_PORT, to: WIREGUARD_PORT },
      description: 'Cilium WireGuard between machines',
    });
    fromEveryMachine('cilium-health', {
      protocol: 'tcp',
      ports: { from: CILIUM_HEALTH_PORT, to: CILIUM_HEALTH_PORT },
      description: 'Cilium health checks between machines',
    });
    // Tunnel routing only: the order rules refuse native routing.
    fromEveryMachine('vxlan', {
      protocol: 'udp',
      ports: { from: VXLAN_PORT, to: VXLAN_PORT },
      description: 'Cilium VXLAN overlay between machines',
    });
    spec.ssh.allowedCidrs.forEach((cidr, index) => {
      allowIngress(`${prefix}-${role}-in-ssh-${index}`, groupId, {
        protocol: 'tcp',
        ports: { from: SSH_PORT, to: SSH_PORT },
        source: { cidr },
        description: 'SSH from an allowed range',
      });
    });
    // Machines pull packages and images through the NAT gateway.
    allowEgress(`${prefix}-${role}-out`, groupId, { cidr: '0.0.0.0/0' });
  }

  return { loadBalancer, controlPlane, workers };
}

/** A CIDR as EC2 compares rules: the network address with its prefix (10.0.0.1/16 and 10.0.0.0/16 are one range). */
function canonicalCidr(cidr: string): string {
  const block = cidrBlock(cidr);
  return `${numberToIpv4(block.first)}/${block.prefix}`;
}

/**
 * The service-linked role the cluster's Auto Scaling groups launch machines with, the cluster's own
 * (AWSServiceRoleForAutoScaling_<prefix>). Auto Scaling's default role does not exist in an account until its first
 * group, and KMS refuses a key policy naming a principal that does not exist; the default role cannot be declared by
 * each cluster either, since the second one would find its name taken. A custom-suffix role, which Auto Scaling
 * documents for exactly this ("You can specify either role when you edit your AWS KMS key policies", Amazon EC2 Auto
 * Scaling User Guide, "Service-linked roles"), is created before the key names it and goes with the cluster, and the
 * key admits only this cluster's groups rather than every group in the account.
 */
function declareAutoScalingRole({ input, prefix, tags }: Scope) {
  const name = `${prefix}-autoscaling`;
  return new aws.iam.ServiceLinkedRole(name, {
    awsServiceName: 'autoscaling.amazonaws.com',
    customSuffix: prefix,
    description: `Auto Scaling of Kiln cluster ${input.clusterId}`,
    tags: tags(name),
  });
}

/**
 * The cluster key encrypts machine disks and the machines' SSM parameters, and wraps the cluster's at-rest data keys
 * (or, with the KMS provider and no key named in the order, Secrets' data keys through the plugin); the cluster's Auto
 * Scaling role must be able to use it to launch machines.
 */
function declareClusterKey({ input, prefix, tags }: Scope, autoScalingRole: aws.iam.ServiceLinkedRole) {
  const identity = aws.getCallerIdentityOutput();
  const partition = aws.getPartitionOutput();
  const name = `${prefix}-key`;
  const key = new aws.kms.Key(name, {
    description: `Kiln cluster ${input.clusterId} disks`,
    enableKeyRotation: true,
    deletionWindowInDays: 30,
    // Naming the role's output makes the key depend on it: the engine creates the key only once the role exists.
    policy: pulumi
      .all([identity.accountId, partition.partition, autoScalingRole.arn])
      .apply(([accountId, awsPartition, autoScalingRoleArn]) => keyPolicy(accountId, awsPartition, autoScalingRoleArn)),
    tags: tags(name),
  });
  new aws.kms.Alias(name, { name: `alias/kiln/${input.clusterId}`, targetKeyId: key.keyId });
  return key;
}

/** The statements Auto Scaling's key policy example gives (Amazon EC2 Auto Scaling User Guide, "Required AWS KMS key policy for use with encrypted volumes", Example 1). */
function keyPolicy(accountId: string, partition: string, autoScalingRole: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'AccountAdministersKey',
        Effect: 'Allow',
        Principal: { AWS: `arn:${partition}:iam::${accountId}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
      {
        Sid: 'AutoScalingEncryptsVolumes',
        Effect: 'Allow',
        Principal: { AWS: autoScalingRole },
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
        Resource: '*',
      },
      {
        Sid: 'AutoScalingGrantsForVolumes',
        Effect: 'Allow',
        Principal: { AWS: autoScalingRole },
        Action: 'kms:CreateGrant',
        Resource: '*',
        Condition: { Bool: { 'kms:GrantIsForAWSResource': true } },
      },
    ],
  });
}

/** An internet-facing network load balancer with one TCP listener: the cluster's only entrypoint. */
function declareApiLoadBalancer({ prefix, tags }: Scope, network: Network, securityGroup: aws.ec2.SecurityGroup) {
  const name = `${prefix}-api`;
  const loadBalancer = new aws.lb.LoadBalancer(name, {
    loadBalancerType: 'network',
    internal: false,
    subnets: network.publicSubnetIds,
    securityGroups: [securityGroup.id],
    enableCrossZoneLoadBalancing: true,
    tags: tags(name),
  });
  const targetGroupName = `${prefix}-api-tg`;
  const targetGroup = new aws.lb.TargetGroup(targetGroupName, {
    vpcId: network.vpc.id,
    port: API_PORT,
    protocol: 'TCP',
    targetType: 'instance',
    // A control plane machine calling the API through the balancer can land on itself; that only works without client IP preservation.
    preserveClientIp: 'false',
    healthCheck: { protocol: 'TCP', port: String(API_PORT), healthyThreshold: 3, unhealthyThreshold: 3, interval: 10 },
    tags: tags(targetGroupName),
  });
  const listenerName = `${prefix}-api-${API_PORT}`;
  new aws.lb.Listener(listenerName, {
    loadBalancerArn: loadBalancer.arn,
    port: API_PORT,
    protocol: 'TCP',
    defaultActions: [{ type: 'forward', targetGroupArn: targetGroup.arn }],
    tags: tags(listenerName),
  });
  return { loadBalancer, targetGroup };
}

/** Graviton families carry a `g` right after the generation digit (m7g, c7gn, r8gd). */
function architectureOf(instanceType: string): 'arm64' | 'x86_64' {
  return /^[a-z]+\d+[a-z]*g[a-z]*\./.test(instanceType) ? 'arm64' : 'x86_64';
}

/** The actions an SSM agent calls to register and to run commands. */
export const SSM_AGENT_ACTIONS = [
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
  'ec2messages:AcknowledgeMessage',
  'ec2messages:DeleteMessage',
  'ec2messages:FailMessage',
  'ec2messages:GetEndpoint',
  'ec2messages:GetMessages',
  'ec2messages:SendReply',
] as const;

interface MachineRole {
  name: string;
  role: 'control-plane' | 'worker';
  instanceType: string;
  userData: string;
  securityGroupId: pulumi.Output<string>;
  instanceProfileArn?: pulumi.Output<string>;
}

/**
 * The control plane as one Auto Scaling group spread over every private
 * subnet and registered with the API target group; one group per node pool.
 */
function declareMachines(scope: Scope, network: Network, firewall: Firewall, key: aws.kms.Key, autoScalingRole: aws.iam.ServiceLinkedRole, apiTargets: aws.lb.TargetGroup) {
  const { input, spec, prefix, tags } = scope;
  const os = machineOsOf(input);
  const images = new Map<string, pulumi.Output<string>>();
  const imageFor = (instanceType: string) => {
    const architecture = architectureOf(instanceType);
    // Debian's official images of the release the step chose, the newest build (`debian-<release>-<arch>-<build>`),
    // built no earlier than the release's reviewed point release: a withdrawn newest build must not mean an older image.
    const image =
      images.get(architecture) ??
      aws.ec2
        .getAmiOutput({
          owners: [os.image.owner],
          mostRecent: true,
          filters: [
            { name: 'name', values: [`${os.image.namePrefix}-${architecture === 'arm64' ? 'arm64' : 'amd64'}-*`] },
            { name: 'architecture', values: [architecture] },
            { name: 'root-device-type', values: ['ebs'] },
            { name: 'virtualization-type', values: ['hvm'] },
          ],
        })
        .apply((found) => {
          if (found.creationDate.slice(0, 10) < os.image.builtOnOrAfter) {
            throw new Error(`Debian's newest ${os.image.namePrefix} ${architecture} image, ${found.name}, was built ${found.creationDate}, before ${os.image.builtOnOrAfter}, the point release Kiln's version table names; no machine boots it.`);
          }
          return found.id;
        });
    images.set(architecture, image);
    return image;
  };

  const launchTemplate = (machine: MachineRole) => {
    const machineTags = tags(machine.name, { 'kiln:role': machine.role });
    return new aws.ec2.LaunchTemplate(machine.name, {
      imageId: imageFor(machine.instanceType),
      instanceType: machine.instanceType,
      // EC2 takes at most 16 KB of user data (docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html)
      // and a control plane's cloud-config is more; cloud-init decompresses gzip before it reads anything
      // (canonical/cloud-init@25.1.4 cloudinit/user_data.py convert_string). gzip is deterministic here (no name, mtime 0),
      // so an unchanged order leaves the launch template unchanged. The stack state keeps it encrypted all the same.
      userData: pulumi.secret(gzipSync(Buffer.from(machine.userData, 'utf8'), { level: 9 }).toString('base64')),
      updateDefaultVersion: true,
      iamInstanceProfile: machine.instanceProfileArn ? { arn: machine.instanceProfileArn } : undefined,
      metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1, instanceMetadataTags: 'disabled' },
      networkInterfaces: [{ deviceIndex: 0, associatePublicIpAddress: 'false', deleteOnTermination: 'true', securityGroups: [machine.securityGroupId] }],
      blockDeviceMappings: [
        {
          deviceName: ROOT_DEVICE,
          ebs: { encrypted: 'true', kmsKeyId: key.arn, volumeSize: ROOT_VOLUME_GIB, volumeType: 'gp3', deleteOnTermination: 'true' },
        },
      ],
      tagSpecifications: ['instance', 'volume', 'network-interface'].map((resourceType) => ({ resourceType, tags: machineTags })),
      tags: machineTags,
    });
  };
  const groupTags = (name: string, extra: Record<string, string>) =>
    Object.entries(tags(name, extra)).map(([tagKey, value]) => ({ key: tagKey, value, propagateAtLaunch: true }));

  const atRest = spec.encryption.atRest;
  const controlPlaneName = `${prefix}-cp`;
  const controlPlaneTemplate = launchTemplate({
    name: controlPlaneName,
    role: 'control-plane',
    instanceType: spec.controlPlane.instanceType,
    userData: input.userData.controlPlane,
    securityGroupId: firewall.controlPlane.id,
    instanceProfileArn: machineInstanceProfile(scope, 'control-plane', key.arn, atRest.provider === 'kms' ? (atRest.kmsKeyArn ?? key.arn) : undefined).arn,
  });
  const controlPlane = new aws.autoscaling.Group(controlPlaneName, {
    minSize: spec.controlPlane.replicas,
    maxSize: spec.controlPlane.replicas,
    desiredCapacity: spec.controlPlane.replicas,
    vpcZoneIdentifiers: network.privateSubnetIds,
    launchTemplate: { id: controlPlaneTemplate.id, version: controlPlaneTemplate.latestVersion.apply(String) },
    targetGroupArns: [apiTargets.arn],
    serviceLinkedRoleArn: autoScalingRole.arn,
    // The group replaces a machine EC2 reports impaired; Kiln's node health removes the dead etcd member and Node
    // it leaves (a Node whose machine is gone) and mints the join token its replacement needs. Rebalancing stays off:
    // it would terminate healthy members for zone balance alone.
    healthCheckType: 'EC2',
    suspendedProcesses: ['AZRebalance'],
    tags: groupTags(controlPlaneName, { 'kiln:role': 'control-plane' }),
  });

  const workerProfile = machineInstanceProfile(scope, 'worker', key.arn, undefined);
  const pools = spec.nodePools.map((pool) => {
    const poolName = `${prefix}-pool-${pool.name}`;
    const template = launchTemplate({
      name: poolName,
      role: 'worker',
      instanceType: pool.instanceType,
      userData: poolUserData(input, pool.name),
      securityGroupId: firewall.workers.id,
      instanceProfileArn: workerProfile.arn,
    });
    const group = new aws.autoscaling.Group(poolName, {
      minSize: pool.min ?? pool.size,
      maxSize: pool.max ?? pool.size,
      desiredCapacity: pool.size,
      vpcZoneIdentifiers: network.privateSubnetIds,
      launchTemplate: { id: template.id, version: template.latestVersion.apply(String) },
      serviceLinkedRoleArn: autoScalingRole.arn,
      healthCheckType: 'EC2',
      // Rebalancing would terminate workers without draining them.
      suspendedProcesses: ['AZRebalance'],
      tags: groupTags(poolName, { 'kiln:role': 'worker', 'kiln:node-pool': pool.name }),
    });
    return { name: pool.name, size: pool.size, group };
  });

  return { controlPlane, pools };
}

function machineOsOf(input: ClusterProgramInput): MachineOsRelease {
  const os = machineOsReleaseByVersion(input.machineOs);
  if (os === undefined) throw new Error(`machine OS ${input.machineOs} is not in the version table`);
  return os;
}

function poolUserData(input: ClusterProgramInput, poolName: string): string {
  const userData = input.userData.pools[poolName];
  if (userData === undefined) throw new Error(`node pool ${poolName} has no user data`);
  return userData;
}

/**
 * Each role's machines may read only their own path of the cluster's secret
 * store (where the bootstrap step publishes join material) and decrypt it with
 * the cluster key. Control plane machines may also create the `leader`
 * parameter (the first one runs `kubeadm init`) and, with the KMS at-rest
 * provider, use the at-rest key for the API servers' encryption plugin.
 */
function machineInstanceProfile(
  { input, prefix, tags }: Scope,
  role: 'control-plane' | 'worker',
  clusterKeyArn: pulumi.Input<string>,
  atRestKeyArn: pulumi.Input<string> | undefined,
) {
  const name = `${prefix}-${role === 'control-plane' ? 'cp' : 'worker'}`;
  const identity = aws.getCallerIdentityOutput();
  const partition = aws.getPartitionOutput();
  const iamRole = new aws.iam.Role(name, {
    assumeRolePolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    }),
    tags: tags(name),
  });
  new aws.iam.RolePolicy(name, {
    role: iamRole.name,
    policy: pulumi
      .all([identity.accountId, partition.partition, clusterKeyArn, atRestKeyArn])
      .apply(([accountId, awsPartition, clusterKey, atRestKey]) => {
        const parameters = `arn:${awsPartition}:ssm:${input.spec.region}:${accountId}:parameter/kiln/${input.clusterId}/${role}`;
        return JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: `${parameters}/*` },
            // What the SSM agent needs to receive Run Command and nothing else (AmazonSSMManagedInstanceCore without
            // parameter and document reads); these actions take no resource-level scoping.
            { Effect: 'Allow', Action: [...SSM_AGENT_ACTIONS], Resource: '*' },
            { Effect: 'Allow', Action: ['kms:Decrypt'], Resource: clusterKey },
            ...(role === 'control-plane' ? [{ Effect: 'Allow', Action: ['ssm:PutParameter'], Resource: `${parameters}/leader` }] : []),
            ...(atRestKey === undefined ? [] : [{ Effect: 'Allow', Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey'], Resource: atRestKey }]),
          ],
        });
      }),
  });
  return new aws.iam.InstanceProfile(name, { role: iamRole.name, tags: tags(name) });
}
