import { describe, expect, it } from 'vitest';
import { KubeApiError } from './status.ts';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';

describe('patches', () => {
  it('applies every RFC 6902 operation in order', () => {
    const document = { a: [1, 2], b: { c: 'x' } };
    const patched = jsonPatch(document, [
      { op: 'add', path: '/a/-', value: 3 },
      { op: 'add', path: '/a/0', value: 0 },
      { op: 'copy', from: '/b/c', path: '/d' },
      { op: 'move', from: '/b', path: '/e' },
      { op: 'replace', path: '/d', value: 'y' },
      { op: 'remove', path: '/a/1' },
      { op: 'test', path: '/e/c', value: 'x' },
    ]);
    expect(patched).toEqual({ a: [0, 2, 3], d: 'y', e: { c: 'x' } });
    expect(document).toEqual({ a: [1, 2], b: { c: 'x' } });
  });

  it('refuses a JSON patch that points at nothing', () => {
    expect(() => jsonPatch({ a: 1 }, [{ op: 'remove', path: '/b' }])).toThrow(KubeApiError);
    expect(() => jsonPatch({ a: 1 }, { op: 'remove' })).toThrow(/cannot unmarshal/);
  });

  it('merge patch replaces lists while strategic merge patch merges keyed ones', () => {
    const target = { containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }], labels: { x: '1' } };
    const patch = { containers: [{ name: 'b', image: 'b:2' }], labels: { x: null } };
    expect(mergePatch(target, patch)).toEqual({ containers: [{ name: 'b', image: 'b:2' }], labels: {} });
    expect(strategicMergePatch(target, patch)).toEqual({ containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:2' }], labels: {} });
    expect(strategicMergePatch(target, { containers: [{ name: 'a', $patch: 'delete' }] })).toEqual({ containers: [{ name: 'b', image: 'b:1' }], labels: { x: '1' } });
  });
});
