import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterSpec } from '#core';
import { admissionConfigScript } from './api-server-scripts.ts';
import { encryptionConfigScript } from './cloud-init.ts';
import { writeStub } from './test-support.ts';

const run = promisify(execFile);
const spec = ClusterSpec.parse({ name: 'script', region: 'eu-west-1', nodePools: [{ name: 'default', size: 1 }] });
const CONFIG_YAML = 'apiVersion: apiserver.config.k8s.io/v1\nkind: Configuration\n';

/** The Run Command scripts that change what this machine's kube-apiserver reads at start: where each writes, from which parameter. */
const SCRIPTS = [
  { name: 'kiln-encryption-config', text: encryptionConfigScript, file: 'etc/kubernetes/encryption/config.yaml', parameter: '/kiln/cls_1/control-plane/encryption-config' },
  { name: 'kiln-admission-config', text: admissionConfigScript, file: 'etc/kubernetes/kiln/admission-configuration.yaml', parameter: '/kiln/cls_1/control-plane/admission-config' },
] as const;

/**
 * The control plane script runs for real under bash, on a machine played by a
 * temporary directory: /etc/kubernetes is moved there, and aws, crictl and
 * kubectl are stubs that behave as on a node (crictl lists the API server
 * while its static pod manifest is in place; kubectl answers /readyz when told
 * to) and log their arguments. sleep is a no-op so the waits run fast.
 */
let root: string;
let bin: string;

const stub = (name: string, body: string): void => {
  writeStub(bin, root, name, body);
};

async function runScript(under: (typeof SCRIPTS)[number], ...args: string[]): Promise<{ code: number; stderr: string }> {
  const text = under.text(spec).replaceAll('/etc/kubernetes', join(root, 'etc/kubernetes'));
  const file = join(root, under.name);
  writeFileSync(file, text, { mode: 0o700 });
  try {
    const { stderr } = await run('bash', [file, ...args], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    return { code: 0, stderr };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? '' };
  }
}

const calls = () => (existsSync(join(root, 'calls.log')) ? readFileSync(join(root, 'calls.log'), 'utf8') : '');
const manifest = () => join(root, 'etc/kubernetes/manifests/kube-apiserver.yaml');

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kiln-script-'));
  bin = join(root, 'bin');
  mkdirSync(bin);
  mkdirSync(join(root, 'etc/kubernetes/manifests'), { recursive: true });
  mkdirSync(join(root, 'etc/kubernetes/encryption'), { recursive: true });
  mkdirSync(join(root, 'etc/kubernetes/kiln'), { recursive: true });
  writeFileSync(manifest(), 'kind: Pod\n');
  stub('aws', `printf '%s' '${CONFIG_YAML}'`);
  stub('crictl', `[ -e "${manifest()}" ] && echo 0123abcd; exit 0`);
  stub('kubectl', `[ -e "${root}/healthy" ]`);
  stub('sleep', 'exit 0');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe.each(SCRIPTS)('the control plane script $name', (under) => {
  const script = (...args: string[]) => runScript(under, ...args);

  it('writes the configuration from the cluster parameter, readable by root only', async () => {
    expect(await script('write', under.parameter)).toEqual({ code: 0, stderr: '' });
    const written = join(root, under.file);
    expect(readFileSync(written, 'utf8').trim()).toBe(CONFIG_YAML.trim());
    expect(statSync(written).mode & 0o777).toBe(0o600);
    expect(calls()).toContain(`aws ssm get-parameter --region eu-west-1 --with-decryption --name ${under.parameter}`);
  });

  it("restarts the API server and checks this machine's own, not the load balancer's", async () => {
    writeFileSync(join(root, 'healthy'), '');
    expect((await script('restart')).code).toBe(0);
    expect(existsSync(manifest())).toBe(true);
    expect(calls()).toMatch(/crictl ps --name kube-apiserver -q/);
    expect(calls()).toContain('kubectl --kubeconfig ');
    expect(calls()).toContain('--server https://127.0.0.1:6443 --tls-server-name kubernetes get --raw /readyz');
  });

  it('fails when the API server does not come back healthy, with its manifest back in place', async () => {
    expect((await script('restart')).code).not.toBe(0);
    expect(existsSync(manifest())).toBe(true);
    expect(calls().match(/kubectl /g)?.length).toBe(90);
  });

  it('puts the manifest back when the old API server never stops', async () => {
    stub('crictl', 'echo 0123abcd');
    expect((await script('restart')).code).not.toBe(0);
    expect(existsSync(manifest())).toBe(true);
    expect(existsSync(join(root, 'etc/kubernetes/kube-apiserver.yaml.parked'))).toBe(false);
    expect(calls()).not.toContain('kubectl');
  });

  it('refuses anything else with its usage', async () => {
    const { code, stderr } = await script('rotate');
    expect(code).toBe(64);
    expect(stderr).toContain('usage:');
  });
});
