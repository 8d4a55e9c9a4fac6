import type { RecordedResource } from '../cloud/index.ts';

const LOAD_BALANCER = 'aws:lb/loadBalancer:LoadBalancer';
const LISTENER = 'aws:lb/listener:Listener';
const SECURITY_GROUP = 'aws:ec2/securityGroup:SecurityGroup';
const INGRESS_RULE = 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule';
const SECURITY_GROUP_RULE = 'aws:ec2/securityGroupRule:SecurityGroupRule';
const EVERYWHERE = '0.0.0.0/0';

/** One inbound permission of a security group, in whichever of the provider's three forms the stack declared it. */
interface Inbound {
  groupId: string;
  protocol: string;
  fromPort: number | undefined;
  toPort: number | undefined;
  cidrs: string[];
}

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const port = (value: unknown): number | undefined => (typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : undefined);
const texts = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);

function inboundRules(resources: readonly RecordedResource[]): Inbound[] {
  return resources.flatMap((resource): Inbound[] => {
    const { inputs } = resource;
    switch (resource.type) {
      case INGRESS_RULE: {
        const cidr = text(inputs.cidrIpv4);
        return [{ groupId: text(inputs.securityGroupId) ?? '', protocol: text(inputs.ipProtocol) ?? '', fromPort: port(inputs.fromPort), toPort: port(inputs.toPort), cidrs: cidr === undefined ? [] : [cidr] }];
      }
      case SECURITY_GROUP_RULE:
        if (inputs.type !== 'ingress') return [];
        return [{ groupId: text(inputs.securityGroupId) ?? '', protocol: text(inputs.protocol) ?? '', fromPort: port(inputs.fromPort), toPort: port(inputs.toPort), cidrs: texts(inputs.cidrBlocks) }];
      case SECURITY_GROUP: {
        const inline = Array.isArray(inputs.ingress) ? (inputs.ingress as Record<string, unknown>[]) : [];
        return inline.map((rule) => ({ groupId: resource.id, protocol: text(rule.protocol) ?? '', fromPort: port(rule.fromPort), toPort: port(rule.toPort), cidrs: texts(rule.cidrBlocks) }));
      }
      default:
        return [];
    }
  });
}

/** Whether a permission lets TCP in on `listenerPort`: protocol tcp (6) with the port in its range, or all protocols (-1). */
function coversTcp(rule: Inbound, listenerPort: number): boolean {
  const protocol = rule.protocol.toLowerCase();
  if (protocol === '-1' || protocol === 'all') return true;
  if (protocol !== 'tcp' && protocol !== '6') return false;
  return (rule.fromPort ?? 0) <= listenerPort && listenerPort <= (rule.toPort ?? 65535);
}

/**
 * The IPv4 ranges a client on the internet may reach the stack's network load balancer from on `listenerPort`, as
 * the stack declares it. As Elastic Load Balancing documents it (docs.aws.amazon.com/elasticloadbalancing/latest/network/
 * load-balancer-security-groups.html): a Network Load Balancer with security groups admits a client when an inbound
 * rule of one of its groups allows the listener's protocol and port from the client's address ("Example: Filter
 * client traffic": protocol, client IP address range, listener port); without security groups every client reaches
 * its listeners. A port with no listener takes no connection at all. Rules that name a security group or a prefix
 * list admit no internet address.
 */
export function listenerSources(resources: readonly RecordedResource[], listenerPort: number): string[] {
  const rules = inboundRules(resources);
  const admitted = new Set<string>();
  for (const balancer of resources.filter((resource) => resource.type === LOAD_BALANCER && resource.inputs.loadBalancerType === 'network')) {
    const listening = resources.some(
      (resource) =>
        resource.type === LISTENER && resource.inputs.loadBalancerArn === balancer.id && port(resource.inputs.port) === listenerPort && text(resource.inputs.protocol)?.toUpperCase() === 'TCP',
    );
    if (!listening) continue;
    const groups = texts(balancer.inputs.securityGroups);
    if (groups.length === 0) {
      admitted.add(EVERYWHERE);
      continue;
    }
    for (const rule of rules) {
      if (groups.includes(rule.groupId) && coversTcp(rule, listenerPort)) for (const cidr of rule.cidrs) admitted.add(cidr);
    }
  }
  return [...admitted];
}
