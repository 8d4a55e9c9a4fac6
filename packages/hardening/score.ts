import { parse } from 'yaml';
import { allChecks, type Benchmark, type Check } from './benchmark.ts';
import { combine, evaluateItem, findInOutput, type ItemVerdict } from './compare.ts';
import { observe } from './audit.ts';
import { buildMachines, type Machine } from './machine.ts';

export type CheckStatus = 'PASS' | 'FAIL' | 'NOT_APPLICABLE' | 'MANUAL';

export interface CheckResult {
  id: string;
  text: string;
  /** The group id, e.g. "1.2". */
  group: string;
  groupText: string;
  scored: boolean;
  type: 'automated' | 'manual' | 'skip';
  status: CheckStatus;
  reason: string;
}

export interface Totals {
  PASS: number;
  FAIL: number;
  NOT_APPLICABLE: number;
  MANUAL: number;
}

export interface Scorecard {
  /** The Kubernetes release the scored machines run (`v1.35.9`). */
  kubernetesVersion: string;
  results: CheckResult[];
  totals: Totals;
  /** Scored checks that fail: what makes `harden:report` exit 1. */
  automatedFailures: CheckResult[];
}

/** The groups Kiln is held to: master 1.1-1.4, etcd 2, node 4.1-4.2. */
export const SCORED_GROUPS: readonly string[] = ['1.1', '1.2', '1.3', '1.4', '2', '4.1', '4.2'];

/**
 * Checks with no automated test, or whose test cannot see what Kiln does
 * instead; each says what covers it. Only consulted when the check is
 * manual or unscored, so a compensation never hides a scored failure.
 */
const KILN_COVERAGE: Readonly<Record<string, (machine: Machine) => string | undefined>> = {
  '1.2.1': (machine) => {
    const path = machine.processes.get('apiserver')?.get('--authentication-config');
    const text = path === undefined ? undefined : machine.renderedFiles.get(path);
    if (text === undefined) return undefined;
    const anonymous = (parse(text) as { anonymous?: { enabled?: boolean; conditions?: { path?: string }[] } } | null)?.anonymous;
    const health = new Set(['/livez', '/readyz', '/healthz']);
    const paths = (anonymous?.conditions ?? []).map((c) => c.path ?? '');
    if (anonymous?.enabled === true && paths.length > 0 && paths.every((p) => health.has(p))) {
      return `anonymous requests are limited to ${paths.join(', ')} by ${path} (AuthenticationConfiguration), so kubelet probes work`;
    }
    return undefined;
  },
  '1.2.20': () => 'default --request-timeout=60s is kept: Kiln sets no longer timeout',
  '4.2.9': (machine) =>
    machine.kubeletConfig.serverTLSBootstrap === true
      ? 'serverTLSBootstrap: true, so the kubelet serving certificate comes from the cluster CA via CSR instead of a file'
      : undefined,
};

/** The path kubeadm's token discovery reads anonymously (cmd/kubeadm/app/discovery/token/token.go). */
const CLUSTER_INFO_PATH = '/api/v1/namespaces/kube-public/configmaps/cluster-info';

/**
 * Whether the API server lets an anonymous request read cluster-info: --anonymous-auth (default true), or, with
 * --authentication-config, its `anonymous` block (enabled, with no conditions or one for that path).
 */
function anonymousReadsClusterInfo(machine: Machine): boolean {
  const apiServer = machine.processes.get('apiserver');
  const configPath = apiServer?.get('--authentication-config');
  const config = configPath === undefined ? undefined : machine.renderedFiles.get(configPath);
  if (config !== undefined) {
    const anonymous = (parse(config) as { anonymous?: { enabled?: boolean; conditions?: { path?: string }[] } } | null)?.anonymous;
    if (anonymous !== undefined) return anonymous.enabled === true && ((anonymous.conditions ?? []).length === 0 || (anonymous.conditions ?? []).some((c) => c.path === CLUSTER_INFO_PATH));
  }
  return apiServer?.get('--anonymous-auth') !== 'false';
}

/**
 * 1.2.1 is only met by a cluster that can run with it: kubeadm's token discovery reads cluster-info anonymously, so
 * with anonymous access off every join gets 401 and the setting would have to go. `broken` says so; otherwise `note`
 * says how the joins do without anonymous access.
 */
function joinsWithoutAnonymousAccess(machines: readonly Machine[]): { broken: string } | { note: string } | undefined {
  const joining = machines.filter((machine) => machine.joinDiscovery !== undefined);
  const controlPlanes = machines.filter((machine) => machine.role === 'control-plane');
  if (joining.length === 0 || controlPlanes.every(anonymousReadsClusterInfo)) return undefined;
  const byToken = joining.filter((machine) => machine.joinDiscovery?.bootstrapToken !== undefined).map((machine) => machine.name);
  if (byToken.length > 0) {
    return { broken: `anonymous access is off, but ${byToken.join(', ')} discover the cluster with a bootstrap token (discovery.bootstrapToken), which reads ${CLUSTER_INFO_PATH} anonymously: every join would get 401` };
  }
  const byFile = joining.every((machine) => machine.joinDiscovery?.file !== undefined);
  return byFile ? { note: 'joins discover the cluster from a kubeconfig file (discovery.file) whose bootstrap token authenticates the cluster-info read, so none needs anonymous access' } : undefined;
}

function automatedVerdict(check: Check, machine: Machine): { verdict: ItemVerdict } | { absent: string } {
  const observation = observe(check, machine);
  if (observation.kind === 'absent') return { absent: observation.why };
  const items = check.tests?.test_items ?? [];
  const binOp = check.tests?.bin_op;
  if (observation.kind === 'process') {
    return { verdict: combine(binOp, items.map((item) => evaluateItem(item, observation.findings(item)))) };
  }
  const evaluateOutput = (output: string): ItemVerdict =>
    combine(binOp, items.map((item) => evaluateItem(item, findInOutput(output, item.flag ?? ''))));
  const outputs = check.use_multiple_values ? observation.lines : [observation.lines.join('\n')];
  const verdicts = outputs.map(evaluateOutput);
  const failed = verdicts.filter((v) => !v.pass);
  const pass = failed.length === 0;
  const detail = pass ? `${observation.looked}: ${observation.lines.join(', ')}` : `${observation.looked}: ${failed.map((v) => v.detail).join('; ')}`;
  return { verdict: { pass, detail } };
}

function scoreCheck(check: Check, machines: Machine[], groupId: string): Pick<CheckResult, 'status' | 'reason'> {
  const result = scoreCheckAlone(check, machines, groupId);
  if (check.id !== '1.2.1') return result;
  const joins = joinsWithoutAnonymousAccess(machines);
  if (joins !== undefined && 'broken' in joins) return { status: 'FAIL', reason: joins.broken };
  return joins !== undefined && result.status !== 'FAIL' ? { ...result, reason: `${result.reason}; ${joins.note}` } : result;
}

function scoreCheckAlone(check: Check, machines: Machine[], groupId: string): Pick<CheckResult, 'status' | 'reason'> {
  if (check.type === 'skip') return { status: 'NOT_APPLICABLE', reason: 'kube-bench marks this check skip for this benchmark' };
  const targets = groupId.startsWith('4.') ? machines : machines.filter((m) => m.role === 'control-plane');
  const coverage = KILN_COVERAGE[check.id];
  if (check.type === 'manual' || !check.tests) {
    const covered = targets.map((m) => coverage?.(m)).find((r) => r !== undefined);
    return { status: 'MANUAL', reason: covered ?? 'manual check: needs a human review of the running cluster' };
  }
  const perMachine = targets.map((machine) => ({ machine, outcome: automatedVerdict(check, machine) }));
  const failing = perMachine.filter(({ outcome }) => 'verdict' in outcome && !outcome.verdict.pass);
  if (failing.length > 0) {
    const first = failing[0];
    const detail = first && 'verdict' in first.outcome ? first.outcome.verdict.detail : '';
    const where = failing.map(({ machine }) => machine.name).join(', ');
    if (!check.scored) {
      const covered = failing.map(({ machine }) => coverage?.(machine));
      if (covered.every((r) => r !== undefined)) return { status: 'MANUAL', reason: `test not met (${detail}) but ${covered[0] ?? ''}` };
    }
    return { status: 'FAIL', reason: `${where}: ${detail}` };
  }
  const evaluated = perMachine.find(({ outcome }) => 'verdict' in outcome);
  if (evaluated && 'verdict' in evaluated.outcome) return { status: 'PASS', reason: evaluated.outcome.verdict.detail };
  const absent = perMachine.map(({ outcome }) => ('absent' in outcome ? outcome.absent : '')).filter((r) => r !== '');
  if (targets.length === 0) return { status: 'NOT_APPLICABLE', reason: 'no machine of this role is rendered' };
  return { status: 'NOT_APPLICABLE', reason: [...new Set(absent)].join('; ') };
}

export function scoreMachines(machines: Machine[], benchmark: Benchmark): Scorecard {
  const results = allChecks(benchmark)
    .filter(({ group }) => SCORED_GROUPS.includes(group.id))
    .map(({ check, group }): CheckResult => ({
      id: check.id,
      text: check.text,
      group: group.id,
      groupText: group.text,
      scored: check.scored,
      type: check.type === 'manual' ? 'manual' : check.type === 'skip' ? 'skip' : 'automated',
      ...scoreCheck(check, machines, group.id),
    }));
  const totals: Totals = { PASS: 0, FAIL: 0, NOT_APPLICABLE: 0, MANUAL: 0 };
  for (const result of results) totals[result.status] += 1;
  const automatedFailures = results.filter((r) => r.status === 'FAIL' && r.scored);
  return { kubernetesVersion: machines[0]?.kubernetesVersion ?? '', results, totals, automatedFailures };
}

/** Scores the machines kubeadm would build from a rendered cluster directory. */
export async function scoreCluster(renderedDir: string, benchmark: Benchmark): Promise<Scorecard> {
  return scoreMachines(await buildMachines(renderedDir), benchmark);
}
