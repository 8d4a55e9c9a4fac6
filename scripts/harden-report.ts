// Scores what Kiln renders against the CIS Kubernetes Benchmark (kube-bench's data), once for every
// Kubernetes minor Kiln offers today, and says which benchmark profile it used and what that profile was written for.
// Usage: npm run harden:report [-- <renderedDir>]   (with a directory: score that rendering only)
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CIS_PROFILES, ClusterSpec, type KubernetesRelease, kubernetesReleaseOf, offeredKubernetesReleases } from '#core';
import { type CheckResult, type Scorecard, buildMachines, loadBenchmark, scoreMachines } from '#hardening';
import { renderCluster } from './render.ts';

const FIXTURES = join(import.meta.dirname, '../../shared/fixtures');
const REFERENCE_ORDER = join(import.meta.dirname, '../packages/bootstrap/examples/full-order.json');

function table(results: CheckResult[]): string {
  const lines: string[] = [];
  let group = '';
  for (const r of results) {
    if (r.group !== group) {
      group = r.group;
      lines.push('', `== ${r.group} ${r.groupText}`);
    }
    const marker = r.scored ? '' : ' (unscored)';
    lines.push(`${r.id.padEnd(7)} | ${r.status.padEnd(14)} | ${r.text}${marker} | ${r.reason}`);
  }
  return lines.join('\n');
}

function minorOf(patch: string): string {
  return patch.replace(/^v/, '').split('.').slice(0, 2).join('.');
}

/** The profile a release is held to, and whether it was written for that release or is the nearest published one. */
function profileLine(release: KubernetesRelease): string {
  const profile = CIS_PROFILES[release.cisProfile];
  const writtenFor = `${profile.writtenFor[0] ?? ''} to ${profile.writtenFor.at(-1) ?? ''}`;
  const fit = profile.writtenFor.includes(release.minor)
    ? `written for Kubernetes ${writtenFor}`
    : `written for Kubernetes ${writtenFor}; kube-bench publishes no profile for ${release.minor} yet, so it is scored against this, the nearest one`;
  return `Profile: ${profile.title} (kube-bench ${profile.id}), ${fit}.`;
}

async function score(dir: string): Promise<{ release: KubernetesRelease | undefined; scorecard: Scorecard }> {
  const machines = await buildMachines(dir);
  const release = kubernetesReleaseOf(minorOf(machines[0]?.kubernetesVersion ?? ''));
  const profile = release?.cisProfile ?? 'cis-1.12';
  return { release, scorecard: scoreMachines(machines, await loadBenchmark(join(FIXTURES, `kube-bench-${profile}`))) };
}

function report(label: string, release: KubernetesRelease | undefined, scorecard: Scorecard): boolean {
  console.log(`\n######## ${label}: Kubernetes ${scorecard.kubernetesVersion}`);
  console.log(release === undefined ? `Kubernetes ${scorecard.kubernetesVersion} is not in Kiln's version table.` : profileLine(release));
  console.log(table(scorecard.results));
  const t = scorecard.totals;
  console.log(`\nKubernetes ${scorecard.kubernetesVersion}: PASS ${t.PASS} / FAIL ${t.FAIL} / NOT_APPLICABLE ${t.NOT_APPLICABLE} / MANUAL ${t.MANUAL}`);
  if (scorecard.automatedFailures.length > 0) console.log(`Automated checks failing: ${scorecard.automatedFailures.map((r) => r.id).join(', ')}`);
  return release !== undefined && scorecard.automatedFailures.length === 0;
}

const argument = process.argv[2];
let passed = true;
if (argument !== undefined) {
  const { release, scorecard } = await score(argument);
  passed = report(argument, release, scorecard);
} else {
  const order = JSON.parse(readFileSync(REFERENCE_ORDER, 'utf8')) as Record<string, unknown>;
  const offered = offeredKubernetesReleases(new Date());
  if (offered.length === 0) {
    console.log('Kiln offers no Kubernetes version today: update the version table (packages/core/kubernetes-versions.ts).');
    passed = false;
  }
  const summary: string[] = [];
  for (const release of offered) {
    const dir = mkdtempSync(join(tmpdir(), `kiln-render-${release.minor}-`));
    await renderCluster(ClusterSpec.parse({ ...order, kubernetesVersion: release.minor }), dir);
    const { scorecard } = await score(dir);
    passed = report(`the reference order rendered into ${dir}`, release, scorecard) && passed;
    const t = scorecard.totals;
    summary.push(`Kubernetes ${release.minor} (${release.patch}, ${release.cisProfile}): PASS ${t.PASS} / FAIL ${t.FAIL} / NOT_APPLICABLE ${t.NOT_APPLICABLE} / MANUAL ${t.MANUAL}`);
  }
  console.log(`\nEvery Kubernetes minor Kiln offers today:\n${summary.join('\n')}`);
}
if (!passed) process.exitCode = 1;
