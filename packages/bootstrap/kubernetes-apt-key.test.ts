import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KUBERNETES_APT_KEYRING, kubernetesAptKeyInstall } from './kubernetes-apt-key.ts';
import { runBashScript, writeStub } from './test-support.ts';

const run = promisify(execFile);

/**
 * The key lines run for real under bash with the real gpg, on a machine played by a temporary directory: curl serves
 * what pkgs.k8s.io would (the file `served`). Throwaway keys stand in for the Kubernetes key, since only its owner
 * holds it; the pin under test is the throwaway key's fingerprint.
 */
let root: string;
let bin: string;
let gnupg: string;
let kubernetes: { fingerprint: string; armored: string };
let stranger: { fingerprint: string; armored: string };

async function gpg(...args: string[]): Promise<string> {
  const { stdout } = await run('gpg', ['--batch', '--pinentry-mode', 'loopback', '--homedir', gnupg, ...args]);
  return stdout;
}

async function throwawayKey(uid: string): Promise<{ fingerprint: string; armored: string }> {
  await gpg('--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never');
  const fingerprint = /^fpr:{9}([0-9A-F]{40}):/m.exec(await gpg('--with-colons', '--list-keys', uid))?.[1] ?? '';
  return { fingerprint, armored: await gpg('--armor', '--export', uid) };
}

async function installKey(served: string): Promise<{ code: number; stderr: string }> {
  writeFileSync(join(root, 'served'), served);
  const moved = (line: string) => line.replaceAll('/run/kiln-kubernetes-apt-key', join(root, 'run')).replaceAll('/etc/apt', join(root, 'etc/apt'));
  return runBashScript(join(root, 'install-key'), kubernetesAptKeyInstall('1.35', kubernetes.fingerprint).map(moved), bin);
}

const keyring = () => join(root, KUBERNETES_APT_KEYRING.slice(1));

beforeAll(async () => {
  gnupg = mkdtempSync(join(tmpdir(), 'kiln-gnupg-'));
  kubernetes = await throwawayKey('Not Kubernetes <not-kubernetes@example.com>');
  stranger = await throwawayKey('Stranger <stranger@example.com>');
});

afterAll(() => {
  rmSync(gnupg, { recursive: true, force: true });
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kiln-apt-key-'));
  bin = join(root, 'bin');
  mkdirSync(bin);
  stub('curl', `while [ $# -gt 0 ]; do if [ "$1" = -o ]; then cp "${root}/served" "$2"; fi; shift; done`);
});

function stub(name: string, body: string): void {
  writeStub(bin, root, name, body);
}

describe('the Kubernetes apt key a machine trusts', () => {
  it('fetches the minor’s Release.key from pkgs.k8s.io and installs it when it is exactly the pinned key', async () => {
    expect(await installKey(kubernetes.armored)).toMatchObject({ code: 0 });
    expect(readFileSync(join(root, 'calls.log'), 'utf8')).toContain('https://pkgs.k8s.io/core:/stable:/v1.35/deb/Release.key');
    const listed = await gpg('--show-keys', '--with-colons', keyring());
    expect(listed).toContain(`fpr:::::::::${kubernetes.fingerprint}:`);
    expect(existsSync(join(root, 'run'))).toBe(false);
  });

  it('stops the boot on a key with another fingerprint, trusting nothing', async () => {
    const refused = await installKey(stranger.armored);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`not exactly the Kubernetes package signing key ${kubernetes.fingerprint} (found: ${stranger.fingerprint})`);
    expect(existsSync(keyring())).toBe(false);
  });

  it('stops the boot when the pinned key comes with another key beside it, which apt would trust too', async () => {
    const refused = await installKey(`${kubernetes.armored}${stranger.armored}`);
    expect(refused.code).toBe(1);
    expect(existsSync(keyring())).toBe(false);
  });

  it('stops the boot on a file that is no key', async () => {
    const refused = await installKey('<html>503 Service Unavailable</html>\n');
    expect(refused.code).not.toBe(0);
    expect(existsSync(keyring())).toBe(false);
  });
});
