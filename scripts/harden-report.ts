// Scores a rendered cluster against the CIS Kubernetes Benchmark 1.12 (kube-bench data).
// Usage: npm run harden:report [-- <renderedDir>]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Relative until the lead adds "#hardening" to package.json imports; then use '#hardening'.
import { type CheckResult, loadBenchmark, scoreCluster } from '#hardening';

const BENCHMARK_DIR = join(import.meta.dirname, '../../shared/fixtures/kube-bench-cis-1.12');
const FIXTURE_DIR = join(import.meta.dirname, '../packages/hardening/testdata/hardened');
const RENDER_SCRIPT = join(import.meta.dirname, 'render.ts');
const REFERENCE_ORDER = join(import.meta.dirname, '../packages/bootstrap/examples/full-order.json');

function renderedDirectory(argument: string | undefined): string {
  if (argument !== undefined) return argument;
  if (existsSync(RENDER_SCRIPT) && existsSync(REFERENCE_ORDER)) {
    const out = mkdtempSync(join(tmpdir(), 'kiln-render-'));
    const run = spawnSync('npx', ['tsx', RENDER_SCRIPT, REFERENCE_ORDER, out], { stdio: 'inherit' });
    if (run.status !== 0) throw new Error(`render failed with exit code ${String(run.status)}`);
    console.log(`Scoring the reference order rendered into ${out}`);
    return out;
  }
  console.log(`scripts/render.ts or the reference order is missing: scoring the test fixture ${FIXTURE_DIR} instead`);
  return FIXTURE_DIR;
}

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

const dir = renderedDirectory(process.argv[2]);
const scorecard = await scoreCluster(dir, await loadBenchmark(BENCHMARK_DIR));
console.log(table(scorecard.results));
const t = scorecard.totals;
console.log(`\nPASS ${t.PASS} / FAIL ${t.FAIL} / NOT_APPLICABLE ${t.NOT_APPLICABLE} / MANUAL ${t.MANUAL}`);
if (scorecard.automatedFailures.length > 0) {
  console.log(`Automated checks failing: ${scorecard.automatedFailures.map((r) => r.id).join(', ')}`);
  process.exitCode = 1;
}
