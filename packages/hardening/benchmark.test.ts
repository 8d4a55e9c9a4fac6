import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allChecks, BENCHMARK_FILES, indentQuotedContinuations, loadBenchmark, parseControls } from './benchmark.ts';
import { compareOp } from './compare.ts';

const BENCHMARK_DIR = join(import.meta.dirname, '../../../shared/fixtures/kube-bench-cis-1.12');

describe('loadBenchmark', () => {
  it('parses every check of every kube-bench file', async () => {
    const benchmark = await loadBenchmark(BENCHMARK_DIR);
    const counts = Object.fromEntries(benchmark.controls.map((c) => [c.type, c.groups.reduce((n, g) => n + g.checks.length, 0)]));
    // master 21+30+7+2, etcd 7, node 10+14+1; controlplane and policies are checked by the scan below.
    expect(counts.master).toBe(60);
    expect(counts.etcd).toBe(7);
    expect(counts.node).toBe(25);
    const checks = allChecks(benchmark);
    expect(checks.length).toBe(Object.values(counts).reduce((a, b) => a + b, 0));
    expect(checks.map(({ check }) => check.id)).toContain('2.4');
  });

  it('counts checks the same way a plain scan of the files does', async () => {
    for (const file of BENCHMARK_FILES) {
      const source = await readFile(join(BENCHMARK_DIR, file), 'utf8');
      const controls = parseControls(source, file);
      const parsed = controls.groups.reduce((n, g) => n + g.checks.length, 0);
      expect(parsed, file).toBe(source.match(/^ {6}- id: /gm)?.length ?? 0);
    }
  });

  it('keeps ids like 1.2.10 and 2.10 as strings', () => {
    const controls = parseControls('id: 2\ntext: t\ntype: etcd\ngroups:\n  - id: 2\n    text: g\n    checks:\n      - id: 2.10\n        text: c\n', 'x.yaml');
    expect(controls.groups[0]?.checks[0]?.id).toBe('2.10');
  });

  it('accepts a quoted scalar continued at its key indentation, as go-yaml does', () => {
    const fixed = indentQuotedContinuations('a:\n  text: "one\n  two"\n  b: 1\n');
    expect(fixed).toBe('a:\n  text: "one\n    two"\n  b: 1\n');
  });
});

describe('compareOp', () => {
  it.each([
    ['bitmask', '600', '600', true],
    ['bitmask', '644', '600', false],
    ['bitmask', '400', '600', true],
    ['eq', 'False', 'false', true],
    ['noteq', '0', '0', false],
    ['gte', '30', '30', true],
    ['gte', '7', '30', false],
    ['gt', 'abc', '1', false],
    ['lt', '1', '2', true],
    ['lte', '3', '2', false],
    ['has', 'Node,RBAC', 'RBAC', true],
    ['nothave', 'Node,AlwaysAllow', 'AlwaysAllow', false],
    ['valid_elements', 'aescbc', 'aescbc,kms,secretbox', true],
    ['valid_elements', 'identity', 'aescbc,kms,secretbox', false],
    ['regex', 'VersionTLS13', '^VersionTLS1[23]$', true],
  ])('%s %s %s -> %s', (op, actual, expected, result) => {
    expect(compareOp(op, actual, expected)).toBe(result);
  });
});
