import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterSpec, KUBERNETES_RELEASES } from '#core';
import { loadBenchmark, scoreCluster } from '#hardening';
import { renderCluster } from '../scripts/render.ts';

const root = new URL('..', import.meta.url).pathname;
const orders = {
  smallest: { name: 'small', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] },
  full: JSON.parse(readFileSync(join(root, 'packages/bootstrap/examples/full-order.json'), 'utf8')) as unknown,
  kms: { name: 'kms', region: 'eu-west-1', nodePools: [{ name: 'default', size: 1 }], encryption: { atRest: { provider: 'kms', keySource: 'kms' } } },
};

async function failuresOf(order: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-harden-'));
  await renderCluster(ClusterSpec.parse(order), dir);
  const scorecard = await scoreCluster(dir, await loadBenchmark(join(root, '../shared/fixtures/kube-bench-cis-1.12')));
  for (const result of scorecard.results.filter((candidate) => candidate.status !== 'PASS')) expect(result.reason, result.id).not.toBe('');
  // Every check of master 1.1-1.4, etcd 2.x and node 4.1-4.2 was evaluated.
  expect(scorecard.results.length).toBeGreaterThanOrEqual(90);
  return { scorecard, failures: scorecard.results.filter((result) => result.status === 'FAIL').map((result) => `${result.id}: ${result.reason}`) };
}

describe('CIS Kubernetes Benchmark 1.12 on what Kiln renders', () => {
  it.each(Object.entries(orders))('leaves no check failing for the %s order, and justifies every one that is not a pass', async (_name, order) => {
    expect((await failuresOf(order)).failures).toEqual([]);
  });

  // Every minor in the version table, so a new one is scored (against kubeadm's defaults of that release) before it is offered.
  it.each(KUBERNETES_RELEASES)('leaves no check failing for the full order on Kubernetes $minor', async (release) => {
    const { scorecard, failures } = await failuresOf({ ...(orders.full as Record<string, unknown>), kubernetesVersion: release.minor });
    expect(scorecard.kubernetesVersion).toBe(release.patch);
    expect(failures).toEqual([]);
  });
});
