import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The infrastructure runner's image is read, not built (no Docker here): it must carry the Pulumi CLI and every
 * resource plugin the cluster program loads at the versions package-lock.json resolves, so the task never downloads
 * a plugin while it runs.
 */
const root = join(import.meta.dirname, '..', '..');
const dockerfile = readFileSync(join(import.meta.dirname, 'infrastructure.Dockerfile'), 'utf8');
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> };

const lockedVersion = (name: string): string | undefined => lock.packages[`node_modules/${name}`]?.version;

/**
 * The resource plugins the runtime dependencies need: a Pulumi provider package names its plugin and the plugin's
 * version in the `pulumi` field of its package.json (`{"resource": true, "name": "aws", "version": "7.48.0"}` in
 * @pulumi/aws 7.48.0), which is what the engine asks for when the program runs.
 */
function resourcePlugins(): { name: string; version: string | undefined; packageName: string }[] {
  return readdirSync(join(root, 'node_modules', '@pulumi')).flatMap((entry) => {
    const packageName = `@pulumi/${entry}`;
    if (lock.packages[`node_modules/${packageName}`]?.dev === true) return [];
    const manifest = JSON.parse(readFileSync(join(root, 'node_modules', packageName, 'package.json'), 'utf8')) as { pulumi?: { resource?: boolean; name?: string; version?: string } };
    const plugin = manifest.pulumi;
    return plugin?.resource === true && plugin.name !== undefined ? [{ name: plugin.name, version: plugin.version, packageName }] : [];
  });
}

const installedPlugins = (): { kind: string; name: string; version: string }[] =>
  [...dockerfile.matchAll(/pulumi plugin install (\S+) (\S+) (\S+)/g)].map(([, kind = '', name = '', version = '']) => ({ kind, name, version }));

describe('the infrastructure runner image', () => {
  it('runs the Pulumi CLI of the @pulumi/pulumi version package-lock.json resolves', () => {
    expect(/^FROM pulumi\/pulumi-nodejs:(\S+)$/m.exec(dockerfile)?.[1]).toBe(lockedVersion('@pulumi/pulumi'));
  });

  it('bakes in every resource plugin at the version package-lock.json resolves for its package, and no other', () => {
    const plugins = resourcePlugins();
    expect(plugins.map((plugin) => plugin.name)).toContain('aws');
    for (const plugin of plugins) expect(plugin.version, `${plugin.packageName}'s plugin version`).toBe(lockedVersion(plugin.packageName));
    const expected = plugins.map((plugin) => ({ kind: 'resource', name: plugin.name, version: plugin.version ?? '' }));
    expect(installedPlugins().map(({ kind, name, version }) => ({ kind, name, version: version.replace(/^v/, '') }))).toEqual(expected);
  });

  it('turns the CLI’s download of missing plugins off after installing them', () => {
    const install = dockerfile.indexOf('pulumi plugin install');
    const off = dockerfile.search(/^ENV [^\n]*PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true/m);
    expect(install).toBeGreaterThan(-1);
    expect(off).toBeGreaterThan(install);
  });
});
