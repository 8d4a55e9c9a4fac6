import { describe, expect, it } from 'vitest';
import { type ApplyOutcome, describePath, recordUpdate, serverSideApply } from './fields.ts';
import type { JsonObject } from './json.ts';

const NOW = '2025-01-01T00:00:00Z';

function applied(outcome: ApplyOutcome): JsonObject {
  if (!outcome.ok) throw new Error(`unexpected conflicts: ${outcome.conflicts.map((conflict) => describePath(conflict.path)).join(', ')}`);
  return outcome.object;
}

function apply(live: JsonObject | undefined, content: JsonObject, manager: string, force = false): ApplyOutcome {
  return serverSideApply({
    live: live ?? { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' } },
    liveExists: live !== undefined,
    applied: content,
    manager,
    force,
    apiVersion: 'v1',
    scope: 'main',
    now: NOW,
  });
}

const containers = (...names: string[]): JsonObject => ({ spec: { containers: names.map((name) => ({ name, image: `${name}:1` })) } });

describe('server-side apply field management', () => {
  it('merges keyed lists per element and drops only the elements a manager stops applying', () => {
    const first = applied(apply(undefined, containers('app'), 'kiln'));
    const both = applied(apply(first, containers('sidecar'), 'mesh'));
    expect(both.spec).toEqual({ containers: [{ name: 'app', image: 'app:1' }, { name: 'sidecar', image: 'sidecar:1' }] });

    const dropped = applied(apply(both, { spec: {} }, 'kiln'));
    expect(dropped.spec).toEqual({ containers: [{ name: 'sidecar', image: 'sidecar:1' }] });
  });

  it('shares a field two managers apply with the same value, and keeps it while either still applies it', () => {
    const first = applied(apply(undefined, { metadata: { labels: { tier: 'web' } } }, 'kiln'));
    const shared = applied(apply(first, { metadata: { labels: { tier: 'web' } } }, 'ops'));
    const afterKilnLeaves = applied(apply(shared, { metadata: {} }, 'kiln'));
    expect(afterKilnLeaves.metadata).toMatchObject({ labels: { tier: 'web' } });

    const afterOpsLeaves = applied(apply(afterKilnLeaves, { metadata: {} }, 'ops'));
    expect((afterOpsLeaves.metadata as JsonObject).labels).toBeUndefined();
  });

  it('reports a conflict for a different value unless forced, naming the field like the API server', () => {
    const first = applied(apply(undefined, containers('app'), 'kiln'));
    const rival = { spec: { containers: [{ name: 'app', image: 'app:2' }] } };

    const refused = apply(first, rival, 'other');
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.conflicts.map((conflict) => [conflict.manager, describePath(conflict.path)])).toEqual([['kiln', '.spec.containers[name="app"].image']]);

    const forced = applied(apply(first, rival, 'other', true));
    expect(forced.spec).toEqual({ containers: [{ name: 'app', image: 'app:2' }] });
    const managers = ((forced.metadata as JsonObject).managedFields as JsonObject[]).map((entry) => entry.manager);
    expect(managers).toEqual(['kiln', 'other']);
  });

  it('gives an updater the fields it changed and takes them from the applier', () => {
    const first = applied(apply(undefined, { spec: { replicas: 2, paused: false } }, 'kiln'));
    const managedFields = recordUpdate({
      previous: first,
      next: { ...first, spec: { replicas: 5, paused: false } },
      manager: 'hpa',
      apiVersion: 'v1',
      scope: 'main',
      hasStatus: false,
      now: NOW,
    });
    expect(managedFields.map((entry) => [entry.manager, entry.operation, entry.fieldsV1])).toEqual([
      ['kiln', 'Apply', { 'f:spec': { 'f:paused': {} } }],
      ['hpa', 'Update', { 'f:spec': { 'f:replicas': {} } }],
    ]);
  });
});
