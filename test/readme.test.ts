import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ADDON_RELEASES, DEFAULT_KUBERNETES_VERSION, KUBERNETES_RELEASES } from '#core';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe("the README's Kubernetes versions", () => {
  it('states every minor it lists with the facts of the version table', () => {
    const rows = readme.split('\n').filter((line) => /^\| (\*\*)?1\.\d+(\*\*)? \| v1\./.test(line));
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const [minor = '', patch, maintenance, endOfLife] = row.split('|').slice(1).map((cell) => cell.trim().replace(/\*\*/g, ''));
      const release = KUBERNETES_RELEASES.find((candidate) => candidate.minor === minor);
      expect(release, minor).toBeDefined();
      expect([patch, maintenance, endOfLife], minor).toEqual([release?.patch, release?.maintenanceModeFrom, release?.endOfLife]);
      expect(row.includes('the default'), minor).toBe(minor === DEFAULT_KUBERNETES_VERSION);
    }
  });

  it('names every pinned add-on release', () => {
    for (const addon of Object.values(ADDON_RELEASES)) expect(readme, addon.name).toContain(addon.version);
  });
});
