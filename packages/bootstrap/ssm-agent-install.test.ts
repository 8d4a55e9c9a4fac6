import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SSM_AGENT_VERSION, ssmAgentInstall } from './cloud-init.ts';
import { AWS_SSM_AGENT_SIGNERS, type SsmAgentSigner, dearmor } from './ssm-agent-signers.ts';
import { runBashScript, writeStub } from './test-support.ts';

const run = promisify(execFile);

/**
 * The agent's install lines run for real under bash with the real gpgv, on a machine played by a temporary directory:
 * curl serves what AWS's bucket would (the package and, when there is one, its .sig) and fails as `curl -f` does on a
 * 404; dpkg and systemctl only log. A throwaway key stands in for AWS's where a test needs a good signature, since
 * only AWS can sign with AWS's key.
 */
let root: string;
let bucket: string;
let bin: string;
let gnupg: string;
let stranger: SsmAgentSigner;

const calls = () => (existsSync(join(root, 'calls.log')) ? readFileSync(join(root, 'calls.log'), 'utf8') : '');

const stub = (name: string, body: string): void => {
  writeStub(bin, root, name, body);
};

async function gpg(...args: string[]): Promise<string> {
  const { stdout } = await run('gpg', ['--batch', '--pinentry-mode', 'loopback', '--homedir', gnupg, ...args]);
  return stdout;
}

/** AWS's bucket holds this package, signed by the throwaway key unless told otherwise. */
async function publish(options: { signed?: boolean; tamperedAfterSigning?: boolean } = {}): Promise<void> {
  const deb = join(bucket, 'amazon-ssm-agent.deb');
  writeFileSync(deb, `!<arch>\nfake amazon-ssm-agent ${SSM_AGENT_VERSION}\n`);
  if (options.signed !== false) await gpg('--yes', '--detach-sign', '-o', `${deb}.sig`, deb);
  if (options.tamperedAfterSigning === true) appendFileSync(deb, 'a line nobody signed\n');
}

async function install(signers?: readonly SsmAgentSigner[]): Promise<{ code: number; stderr: string }> {
  const lines = signers === undefined ? ssmAgentInstall() : ssmAgentInstall(signers);
  return runBashScript(join(root, 'install-ssm-agent'), ['REGION=eu-west-1', ...lines].map((line) => line.replaceAll('/run/kiln-ssm-agent', join(root, 'run'))), bin);
}

beforeAll(async () => {
  gnupg = mkdtempSync(join(tmpdir(), 'kiln-gnupg-'));
  await gpg('--passphrase', '', '--quick-gen-key', 'Not AWS <not-aws@example.com>', 'ed25519', 'sign', 'never');
  const fingerprint = (await gpg('--with-colons', '--list-keys')).split('\n').find((line) => line.startsWith('fpr:'))?.split(':')[9] ?? '';
  stranger = { fingerprint, publicKey: await gpg('--armor', '--export', fingerprint) };
});

afterAll(async () => {
  // gpg started an agent for the throwaway home; it goes with it.
  await run('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']);
  rmSync(gnupg, { recursive: true, force: true });
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kiln-ssm-agent-'));
  bucket = join(root, 'bucket');
  bin = join(root, 'bin');
  mkdirSync(bucket);
  mkdirSync(bin);
  // curl … -o <file> <url>: the bucket's object named by the URL's last segment, or 22 as for a 404.
  stub('curl', `while [ $# -gt 1 ]; do [ "$1" = -o ] && out="$2"; shift; done; object="${bucket}/\${1##*/}"; [ -f "$object" ] || exit 22; cp "$object" "$out"`);
  // A fresh machine: the agent is not installed yet.
  stub('dpkg', 'case "$1" in --print-architecture) echo amd64 ;; -s) exit 1 ;; esac; exit 0');
  stub('systemctl', 'exit 0');
  return () => {
    rmSync(root, { recursive: true, force: true });
  };
});

describe('the SSM agent install', () => {
  it('downloads the pinned package and its signature from the region bucket and installs it when the signature is good', async () => {
    await publish();
    const result = await install([stranger]);
    expect(result.stderr).not.toContain('not installing');
    expect(result.code).toBe(0);
    expect(calls()).toContain(`curl -fsSL --retry 3 -o ${join(root, 'run')}/amazon-ssm-agent.deb https://s3.eu-west-1.amazonaws.com/amazon-ssm-eu-west-1/${SSM_AGENT_VERSION}/debian_amd64/amazon-ssm-agent.deb\n`);
    expect(calls()).toContain(`/${SSM_AGENT_VERSION}/debian_amd64/amazon-ssm-agent.deb.sig\n`);
    expect(calls()).toContain(`dpkg -i ${join(root, 'run')}/amazon-ssm-agent.deb\n`);
    expect(calls()).toContain('systemctl enable --now amazon-ssm-agent\n');
    expect(existsSync(join(root, 'run'))).toBe(false);
  });

  it("refuses a package signed by anyone but AWS's SSM agent keys", async () => {
    await publish();
    const result = await install();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("no valid signature by AWS's SSM Agent key; not installing it");
    expect(calls()).not.toContain('dpkg -i');
    expect(calls()).not.toContain('systemctl');
  });

  it('refuses a package changed after it was signed', async () => {
    await publish({ tamperedAfterSigning: true });
    const result = await install([stranger]);
    expect(result.code).not.toBe(0);
    expect(calls()).not.toContain('dpkg -i');
  });

  it('refuses a package without a signature', async () => {
    await publish({ signed: false });
    const result = await install([stranger]);
    expect(result.code).not.toBe(0);
    expect(calls()).not.toContain('dpkg -i');
  });

  it('trusts exactly the keys AWS publishes, by their fingerprints', async () => {
    const keyring = join(root, 'aws.gpg');
    writeFileSync(keyring, Buffer.concat(AWS_SSM_AGENT_SIGNERS.map((signer) => dearmor(signer.publicKey))));
    const shown = await gpg('--with-colons', '--show-keys', keyring);
    const primaries = shown.split('\n').filter((line) => line.startsWith('fpr:')).map((line) => line.split(':')[9]);
    expect(primaries).toEqual(expect.arrayContaining(AWS_SSM_AGENT_SIGNERS.map((signer) => signer.fingerprint)));
    expect(shown).toContain('SSM Agent <ssm-agent-signer@amazon.com>');
  });
});
