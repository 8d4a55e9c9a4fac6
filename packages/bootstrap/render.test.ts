import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { runRender } from '../../scripts/render.ts';
import { validateCloudConfig, validateSshdDropIn } from './test-support.ts';

const FULL_ORDER = fileURLToPath(new URL('./examples/full-order.json', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'kiln-render-test-'));

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

async function render(order: unknown): Promise<{ code: number; stderr: string; dir: string }> {
  const dir = mkdtempSync(join(scratch, 'out-'));
  const orderFile = join(dir, 'order.json');
  writeFileSync(orderFile, typeof order === 'string' ? order : JSON.stringify(order));
  let stderr = '';
  const code = await runRender([orderFile, join(dir, 'rendered')], { stdout: () => undefined, stderr: (text) => (stderr += text) });
  return { code, stderr, dir: join(dir, 'rendered') };
}

const read = (dir: string, path: string) => readFileSync(join(dir, path), 'utf8');

describe('npm run render', () => {
  for (const [label, order, pools] of [
    ['smallest', { name: 'tiny', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] }, ['default']],
    ['full', JSON.parse(readFileSync(FULL_ORDER, 'utf8')) as unknown, ['general', 'batch']],
  ] as const) {
    it(`renders every artefact of the ${label} order, valid under the real validators`, { timeout: 120_000 }, async () => {
      const { code, stderr, dir } = await render(order);
      expect(code, stderr).toBe(0);
      for (const name of ['control-plane', ...pools]) {
        const result = validateCloudConfig(read(dir, `cloud-init/${name}.yaml`));
        expect(result, `${name}: ${result.output}`).toMatchObject({ ok: true });
      }
      const sshd = validateSshdDropIn(read(dir, 'sshd/kiln.conf'));
      expect(sshd, sshd.output).toMatchObject({ ok: true });

      const init = parseAllDocuments(read(dir, 'kubeadm/init-configuration.yaml')).map((doc) => (doc.toJS() as { kind: string }).kind);
      expect(init).toEqual(['InitConfiguration', 'ClusterConfiguration', 'KubeletConfiguration']);
      expect(parseAllDocuments(read(dir, 'kubeadm/join-worker.yaml'))).toHaveLength(pools.length);
      for (const file of ['kubeadm/join-control-plane.yaml', 'kubeadm/discovery.conf', 'kubeadm/kubelet-configuration.yaml', 'kubeadm/audit-policy.yaml', 'kubeadm/admission-configuration.yaml']) {
        expect(parse(read(dir, file)), file).toHaveProperty('kind');
      }

      const encryption = parse(read(dir, 'encryption/encryption-config.yaml')) as { resources: { providers: Record<string, unknown>[] }[] };
      const providers = encryption.resources[0]?.providers ?? [];
      expect(Object.keys(providers[providers.length - 1] ?? {})).toEqual(['identity']);
      expect(providers).toHaveLength(2);
      expect(read(dir, 'encryption/encryption-config.yaml')).not.toMatch(/secret: (?!<sealed-at-boot>)/);

      expect(parseAllDocuments(read(dir, 'addons/baseline.yaml')).length).toBeGreaterThan(0);
      const resources = JSON.parse(read(dir, 'infra/resources.json')) as { type: string; inputs: Record<string, unknown> }[];
      expect(resources.map((resource) => resource.type)).toEqual(expect.arrayContaining(['aws:ec2/launchTemplate:LaunchTemplate', 'aws:autoscaling/group:Group']));
      for (const resource of resources) expect(resource.inputs).toBeTypeOf('object');

      // Review output never carries key material or tokens.
      for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((path) => /\.(ya?ml|json|conf|crt)$/.test(path))) {
        expect(read(dir, file), file).not.toMatch(/PRIVATE KEY|\b[a-z0-9]{6}\.[a-z0-9]{16}\b/);
      }
    });
  }

  it('puts the full order\'s provider first in the encryption configuration', { timeout: 120_000 }, async () => {
    const { code, dir } = await render(JSON.parse(readFileSync(FULL_ORDER, 'utf8')));
    expect(code).toBe(0);
    const encryption = parse(read(dir, 'encryption/encryption-config.yaml')) as { resources: { providers: Record<string, unknown>[] }[] };
    expect(Object.keys(encryption.resources[0]?.providers[0] ?? {})).toEqual(['secretbox']);
    expect(read(dir, 'encryption/encryption-config.yaml')).not.toContain('MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=');
  });

  it('rejects a malformed order with the API\'s 400 problem and exit code 2', async () => {
    const { code, stderr } = await render({ name: 'Bad_Name', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1, colour: 'red' }] });
    expect(code).toBe(2);
    const problem = JSON.parse(stderr) as { status: number; code: string; errors: { pointer: string }[] };
    expect(problem).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(problem.errors.map((error) => error.pointer)).toEqual(expect.arrayContaining(['/name', '/nodePools/0/colour']));
  });

  it('rejects an order that breaks a cross-field rule with a 422 problem and exit code 2', async () => {
    const { code, stderr } = await render({ name: 'demo', region: 'eu-central-1', controlPlane: { replicas: 2 }, nodePools: [{ name: 'default', size: 1 }] });
    expect(code).toBe(2);
    expect(JSON.parse(stderr)).toMatchObject({ status: 422, errors: [expect.objectContaining({ pointer: '/controlPlane/replicas' })] });
  });

  it('rejects text that is not JSON', async () => {
    const { code, stderr } = await render('{ not json');
    expect(code).toBe(2);
    expect(JSON.parse(stderr)).toMatchObject({ status: 400 });
  });
});
