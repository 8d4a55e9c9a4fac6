import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Runs the real validators the machines themselves use. Used by tests only;
 * a missing binary is a failure, never a skip, so CI cannot pass silently.
 */

const INSTALL_HINT = "install Debian's cloud-init and openssh-server (apt-get install -y cloud-init openssh-server)";

function locate(binary: string, candidates: readonly string[]): string {
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new Error(`${binary} is not installed (looked in ${candidates.join(', ')}): ${INSTALL_HINT}`);
  return found;
}

export interface ValidatorResult {
  ok: boolean;
  output: string;
}

function run(command: string, args: readonly string[]): ValidatorResult {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error !== undefined) throw new Error(`${command} could not run: ${result.error.message}; ${INSTALL_HINT}`);
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

function withScratch<T>(work: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-validate-'));
  try {
    return work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `cloud-init schema --config-file`, as the Debian cloud-init installed here validates user data (the machines run Debian 13's). */
export function validateCloudConfig(userData: string): ValidatorResult {
  const cloudInit = locate('cloud-init', ['/usr/bin/cloud-init', '/usr/local/bin/cloud-init']);
  return withScratch((dir) => {
    const file = join(dir, 'user-data.yaml');
    writeFileSync(file, userData);
    return run(cloudInit, ['schema', '--config-file', file]);
  });
}

/** `sshd -t` over a minimal sshd_config that Includes the drop-in, with a throwaway host key. */
export function validateSshdDropIn(dropIn: string): ValidatorResult {
  const sshd = locate('sshd', ['/usr/sbin/sshd']);
  const keygen = locate('ssh-keygen', ['/usr/bin/ssh-keygen']);
  // sshd -t refuses to run without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  return withScratch((dir) => {
    const hostKey = join(dir, 'ssh_host_ed25519_key');
    const generated = run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    if (!generated.ok) throw new Error(`ssh-keygen failed: ${generated.output}`);
    mkdirSync(join(dir, 'sshd_config.d'));
    writeFileSync(join(dir, 'sshd_config.d', '50-kiln.conf'), dropIn, { mode: 0o600 });
    const config = join(dir, 'sshd_config');
    writeFileSync(config, [`Include ${join(dir, 'sshd_config.d')}/*.conf`, `HostKey ${hostKey}`, 'UsePAM yes', ''].join('\n'), { mode: 0o600 });
    return run(sshd, ['-t', '-f', config]);
  });
}

/**
 * A command the scripts under test find first on their PATH (in `bin`): it logs its name and arguments to
 * `<root>/calls.log`, then runs `body` in bash.
 */
export function writeStub(bin: string, root: string, name: string, body: string): void {
  const path = join(bin, name);
  writeFileSync(path, `#!/bin/bash\necho "${name} $*" >> "${root}/calls.log"\n${body}\n`);
  chmodSync(path, 0o755);
}

/**
 * Writes `lines` as a bash script under `set -euo pipefail` to `file` and runs it with the stubs in `bin` first on its
 * PATH: its exit status and what it wrote to stderr.
 */
export async function runBashScript(file: string, lines: readonly string[], bin: string): Promise<{ code: number; stderr: string }> {
  writeFileSync(file, ['#!/bin/bash', 'set -euo pipefail', ...lines, ''].join('\n'), { mode: 0o700 });
  try {
    const { stderr } = await promisify(execFile)('bash', [file], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    return { code: 0, stderr };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? '' };
  }
}
