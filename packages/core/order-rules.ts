import { type ClusterSpec, PSA_MODES } from './cluster-spec.ts';
import { type FieldProblem, UnprocessableError } from './errors.ts';
import { cidrBlock } from './ipv4.ts';
import { kubernetesVersionProblem, machineOsProblem } from './kubernetes-versions.ts';

/** Key lengths (bytes) each at-rest provider accepts for a user-provided key. */
const KEY_LENGTHS: Record<'aescbc' | 'aesgcm' | 'secretbox', readonly number[]> = {
  aescbc: [32],
  aesgcm: [16, 24, 32],
  secretbox: [32],
};

export function cidrsOverlap(a: string, b: string): boolean {
  const x = cidrBlock(a);
  const y = cidrBlock(b);
  return x.first <= y.last && y.first <= x.last;
}

export interface OrderRuleOptions {
  /**
   * The spec is a stored one: Kiln sealed its write-only fields (a
   * user-provided at-rest key) on arrival and removed them, so their absence
   * is expected rather than a problem.
   */
  stored?: boolean;
  /** When the order is placed: which Kubernetes minors are offered depends on the day. */
  now?: Date;
  /** The aws-encryption-provider image Kiln's operator configured (KILN_KMS_PLUGIN_IMAGE): a new order with the kms provider needs one. */
  kmsPluginImage?: string;
  /**
   * Kiln's own AWS account (KILN_ACCOUNT_ID): a new order's role must be outside it, and a new order's KMS key in the
   * account the cluster is built in (this one when the order names no role).
   */
  kilnAccountId?: string;
}

const ACCOUNT_OF_ARN = /^arn:aws[a-z-]*:(?:iam|kms):[a-z0-9-]*:(\d{12}):/;

/** The account an IAM role or KMS key ARN names. */
function accountOfArn(arn: string): string | undefined {
  return ACCOUNT_OF_ARN.exec(arn)?.[1];
}

/** Where Kiln issues the external ID a tenant's role trusts. */
export const EXTERNAL_ID_ROUTE = 'GET /v1/account-trust';

/** The rules about whose AWS account an order reaches into: the tenant's role, its external ID, its KMS key. */
function accountProblems(spec: ClusterSpec, kilnAccountId: string | undefined): OrderProblem[] {
  const problems: OrderProblem[] = [];
  const account = spec.account;
  if (account?.externalId !== undefined) {
    problems.push({
      pointer: '/account/externalId',
      detail: `is issued by Kiln, not chosen in the order: leave it out. Kiln assumes your role with your tenant's external ID, which ${EXTERNAL_ID_ROUTE} shows; your role's trust policy requires it as sts:ExternalId`,
    });
  }
  const roleAccount = account === undefined ? undefined : accountOfArn(account.roleArn);
  if (kilnAccountId !== undefined && roleAccount === kilnAccountId) {
    problems.push({ pointer: '/account/roleArn', detail: "is a role in Kiln's own AWS account: name a role in your account that trusts Kiln's" });
  }
  const keyArn = spec.encryption.atRest.kmsKeyArn;
  const buildAccount = account === undefined ? kilnAccountId : roleAccount;
  if (keyArn !== undefined && buildAccount !== undefined && accountOfArn(keyArn) !== buildAccount) {
    problems.push({
      pointer: '/encryption/atRest/kmsKeyArn',
      detail:
        account === undefined
          ? "is a key in another AWS account than the one the cluster is built in (Kiln's, as the order names no account): leave it out for a key Kiln creates, or build in your account with account.roleArn"
          : `is a key in another AWS account than account.roleArn's (${roleAccount ?? ''}), where the cluster is built: name a key in that account`,
    });
  }
  return problems;
}

/** A rule an order breaks, at a JSON pointer into the order. */
export type OrderProblem = Extract<FieldProblem, { pointer: string }>;

/**
 * Rules that span fields and so cannot live in the zod shape. Every problem
 * names the field it is about with a JSON pointer into the order.
 */
export function orderProblems(spec: ClusterSpec, options: OrderRuleOptions = {}): OrderProblem[] {
  const problems: OrderProblem[] = [];

  // A stored spec was accepted on its day; running clusters learn about end of life through their conditions.
  if (options.stored !== true) {
    const now = options.now ?? new Date();
    // The order names no OS, Kiln picks it: with none in support, the whole order cannot be built.
    const osProblem = machineOsProblem(now);
    if (osProblem !== undefined) problems.push({ pointer: '', detail: osProblem });
    const versionProblem = kubernetesVersionProblem(spec.kubernetesVersion, now);
    if (versionProblem !== undefined) problems.push({ pointer: '/kubernetesVersion', detail: versionProblem });
    if (spec.encryption.atRest.provider === 'kms' && options.kmsPluginImage === undefined) {
      problems.push({
        pointer: '/encryption/atRest/provider',
        detail:
          "kms is not available here: it runs the AWS KMS plugin (aws-encryption-provider) beside every API server, whose project publishes no image, and this Kiln's operator has not configured one. Use aescbc, aesgcm or secretbox, with a key Kiln generates or your own.",
      });
    }
    problems.push(...accountProblems(spec, options.kilnAccountId));
  }

  if (spec.network.routingMode === 'native') {
    // autoDirectNodeRoutes installs "podCIDR via node" only towards nodes on the same L2 segment, and the VPC router
    // delivers only to addresses its route tables or the machines' interfaces hold (cilium/cilium@v1.20.2
    // Documentation/network/concepts/routing.rst; AWS VPC route tables and source/destination checking).
    problems.push({
      pointer: '/network/routingMode',
      detail:
        'native routing is not offered on AWS: the VPC delivers pod addresses only when they belong to the machines\' network interfaces (ENI IPAM) or have a route per node with the source/destination check off, and Kiln sets up neither. Use tunnel (the default), where Cilium carries pod traffic between machines in VXLAN, encrypted with WireGuard.',
    });
  }

  if (![1, 3, 5].includes(spec.controlPlane.replicas)) {
    problems.push({
      pointer: '/controlPlane/replicas',
      detail: 'must be 1, 3 or 5: an even number of etcd members tolerates no more failures than one fewer',
    });
  }

  const seenPools = new Map<string, number>();
  spec.nodePools.forEach((pool, index) => {
    const first = seenPools.get(pool.name);
    if (first !== undefined) {
      problems.push({ pointer: `/nodePools/${index}/name`, detail: `repeats the name of /nodePools/${first}` });
    } else {
      seenPools.set(pool.name, index);
    }
    const min = pool.min ?? pool.size;
    const max = pool.max ?? pool.size;
    if (min > pool.size) problems.push({ pointer: `/nodePools/${index}/min`, detail: 'must not exceed size' });
    if (max < pool.size) problems.push({ pointer: `/nodePools/${index}/max`, detail: 'must not be below size' });
  });
  if (spec.nodePools.every((pool) => pool.size === 0)) {
    problems.push({ pointer: '/nodePools', detail: 'at least one node pool needs a size above 0' });
  }

  const vpcPrefix = cidrBlock(spec.network.vpcCidr).prefix;
  if (vpcPrefix < 16 || vpcPrefix > 24) {
    problems.push({ pointer: '/network/vpcCidr', detail: 'must be between a /16 and a /24, the sizes an AWS VPC can have' });
  }

  const ranges = [
    ['vpcCidr', spec.network.vpcCidr],
    ['podCidr', spec.network.podCidr],
    ['serviceCidr', spec.network.serviceCidr],
  ] as const;
  ranges.forEach(([name, range], index) => {
    for (const [otherName, otherRange] of ranges.slice(0, index)) {
      if (cidrsOverlap(range, otherRange)) {
        problems.push({ pointer: `/network/${name}`, detail: `overlaps ${otherName} (${otherRange})` });
      }
    }
  });

  const atRest = spec.encryption.atRest;
  if ((atRest.provider === 'kms') !== (atRest.keySource === 'kms')) {
    problems.push({
      pointer: '/encryption/atRest/keySource',
      detail: 'must be kms exactly when the provider is kms',
    });
  }
  if (atRest.keySource === 'user' && atRest.key === undefined && options.stored !== true) {
    problems.push({ pointer: '/encryption/atRest/key', detail: 'is required when keySource is user' });
  }
  if (atRest.keySource !== 'user' && atRest.key !== undefined) {
    problems.push({ pointer: '/encryption/atRest/key', detail: 'may only be given when keySource is user' });
  }
  if (atRest.key !== undefined && atRest.provider !== 'kms') {
    const length = Buffer.from(atRest.key, 'base64').length;
    const allowed = KEY_LENGTHS[atRest.provider];
    if (!allowed.includes(length)) {
      problems.push({
        pointer: '/encryption/atRest/key',
        detail: `must decode to ${allowed.join(', ')} bytes for ${atRest.provider}, not ${length}`,
      });
    }
  }
  if (atRest.kmsKeyArn !== undefined && atRest.keySource !== 'kms') {
    problems.push({ pointer: '/encryption/atRest/kmsKeyArn', detail: 'may only be given when keySource is kms' });
  }

  if (spec.ssh.mode === 'self-managed' && spec.ssh.publicKey === undefined) {
    problems.push({ pointer: '/ssh/publicKey', detail: 'is required when mode is self-managed' });
  }
  if (spec.ssh.mode === 'managed' && spec.ssh.publicKey !== undefined) {
    problems.push({ pointer: '/ssh/publicKey', detail: 'may only be given when mode is self-managed' });
  }

  for (const [name, override] of Object.entries(spec.podSecurity.namespaces)) {
    const pointer = `/podSecurity/namespaces/${name}`;
    if (override.level === undefined && PSA_MODES.every((mode) => override[mode] === undefined)) {
      problems.push({ pointer, detail: 'sets no level: give level, or enforce, audit or warn' });
    }
    if (override.mode !== undefined && override.level === undefined) {
      problems.push({ pointer: `${pointer}/mode`, detail: 'says how level applies, and level is not given' });
    }
  }

  const seenIssuers = new Set<string>();
  spec.certManager.acmeIssuers.forEach((issuer, index) => {
    if (seenIssuers.has(issuer.name)) {
      problems.push({ pointer: `/certManager/acmeIssuers/${index}/name`, detail: 'repeats an issuer name' });
    }
    seenIssuers.add(issuer.name);
  });

  return problems;
}

export function assertOrderRules(spec: ClusterSpec, options: OrderRuleOptions = {}): void {
  const problems = orderProblems(spec, options);
  const [first, ...rest] = problems;
  if (first !== undefined) {
    const more = rest.length === 0 ? '' : ` (and ${rest.length} more problem${rest.length === 1 ? '' : 's'}, see errors)`;
    const where = first.pointer === '' ? '' : `${first.pointer} `;
    throw new UnprocessableError(`The order cannot be built: ${where}${first.detail}${more}`, problems);
  }
}
