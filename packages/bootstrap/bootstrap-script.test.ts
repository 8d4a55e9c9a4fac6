import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterSpec } from '#core';
import { cloudConfig } from './cloud-init.ts';
import { KUBERNETES_APT_KEY_FINGERPRINT } from './kubernetes-apt-key.ts';
import { machineSecretPath } from './machine-secrets.ts';
import { AWS_SSM_AGENT_SIGNERS } from './ssm-agent-signers.ts';
import { writeStub } from './test-support.ts';

const run = promisify(execFile);
const CLUSTER_ID = 'cl_boot';
const spec = ClusterSpec.parse({ name: 'boot', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }], nodeHealth: { nodeStartupTimeoutMinutes: 25 } });

interface WrittenFile {
  path: string;
  content: string;
}

/**
 * The boot script runs for real under bash, run after run as its unit would run it, on a machine played by a
 * temporary directory: the paths it writes are moved there, and aws (a parameter store in a directory, with
 * ParameterNotFound and ParameterAlreadyExists), apt-get, curl, dpkg, systemctl, cloud-init and kubeadm are stubs
 * that log their arguments. kubeadm fails its next `kubeadm-failures` runs, then writes the files it writes on a node.
 */
let root: string;
let bin: string;

const stub = (name: string, body: string): void => {
  writeStub(bin, root, name, body);
};

const MOVED = ['/var/lib/kiln', '/var/lib/kubelet', '/var/lib/etcd', '/run/kiln', '/run/amazon-ssm-agent.deb', '/etc/kiln', '/etc/kubernetes', '/etc/apt', '/home/kiln', '/usr/lib/systemd', '/lib/systemd'];

/** The machine's files and unit as its user data writes them. */
function written(role: 'control-plane' | 'worker'): WrittenFile[] {
  return cloudConfig(CLUSTER_ID, spec, role, role === 'worker' ? 'default' : undefined).write_files as WrittenFile[];
}

/** One run of the unit's script, on the machine `instanceId`, with the environment its unit gives it. */
async function runOnce(role: 'control-plane' | 'worker', instanceId = 'i-0aaa'): Promise<{ code: number; stdout: string; stderr: string }> {
  const files = written(role);
  const unit = files.find((file) => file.path === '/etc/systemd/system/kiln-bootstrap.service')?.content ?? '';
  const environment = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(\S+)$/gm)].map((match) => [match[1] ?? '', match[2] ?? '']));
  const execStart = /^ExecStart=(\S+)$/m.exec(unit)?.[1] ?? '';
  const moved = (text: string) => text.replace(new RegExp(`(?<=[\\s"'=>]|^)(${MOVED.map((path) => path.replaceAll('/', '\\/')).join('|')})`, 'gm'), `${root}$1`);
  for (const file of files.filter((candidate) => candidate.path.startsWith('/etc/kiln/'))) {
    mkdirSync(dirname(`${root}${file.path}`), { recursive: true });
    writeFileSync(`${root}${file.path}`, file.content);
  }
  const script = join(root, 'kiln-bootstrap');
  writeFileSync(script, moved(files.find((file) => file.path === execStart)?.content ?? ''), { mode: 0o700 });
  try {
    const { stdout, stderr } = await run('bash', [script], { env: { ...environment, PATH: `${bin}:/usr/bin:/bin`, INSTANCE_ID: instanceId } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const calls = () => (existsSync(join(root, 'calls.log')) ? readFileSync(join(root, 'calls.log'), 'utf8') : '');
const kubeadmCalls = () => calls().split('\n').filter((line) => line.startsWith('kubeadm ')).map((line) => line.split(' ')[1]);
function publish(role: 'control-plane' | 'worker', name: string, value: string): void {
  const path = join(root, 'ssm', machineSecretPath(CLUSTER_ID, role, name));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, value);
}
function publishJoinMaterial(role: 'control-plane' | 'worker'): void {
  for (const name of ['api-host', 'cluster-ca', 'ssh-authorized-key', 'encryption-config', 'pki/ca.crt', 'pki/ca.key', 'pki/sa.key', 'pki/sa.pub', 'pki/front-proxy-ca.crt', 'pki/front-proxy-ca.key', 'pki/etcd/ca.crt', 'pki/etcd/ca.key']) {
    publish(role, name, `${name}-value`);
  }
  publish(role, 'join-token', 'abcdef.0123456789abcdef');
}
const mode = (path: string) => (statSync(`${root}${path}`).mode & 0o777).toString(8);

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kiln-boot-'));
  bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(root, 'kubeadm-failures'), '0');
  // A machine that booted just now (the script records its first boot from /proc/stat, the host's here).
  for (const directory of ['var/lib/kiln', 'etc/apt/sources.list.d', 'home/kiln', 'run']) mkdirSync(join(root, directory), { recursive: true });
  writeFileSync(join(root, 'var/lib/kiln/first-boot'), `${Math.floor(Date.now() / 1000)}\n`);
  stub(
    'aws',
    [
      'op="$2"; name=""; value=""',
      'while [ $# -gt 0 ]; do case "$1" in --name) name="$2"; shift ;; --value) value="$2"; shift ;; esac; shift; done',
      `f="${root}/ssm$name"`,
      'case "$op" in',
      '  get-parameter) if [ -f "$f" ]; then cat "$f"; echo; else echo "An error occurred (ParameterNotFound) when calling the GetParameter operation: " >&2; exit 254; fi ;;',
      '  put-parameter) if [ -f "$f" ]; then echo "An error occurred (ParameterAlreadyExists) when calling the PutParameter operation: " >&2; exit 254; fi; mkdir -p "$(dirname "$f")"; printf "%s" "$value" > "$f" ;;',
      'esac',
    ].join('\n'),
  );
  for (const name of ['apt-get', 'apt-mark', 'systemctl', 'chown', 'modprobe']) stub(name, 'exit 0');
  stub('curl', 'while [ $# -gt 0 ]; do if [ "$1" = -o ]; then touch "$2"; fi; shift; done; echo key');
  // pkgs.k8s.io serves the Kubernetes key (kubernetes-apt-key.test.ts runs the real gpg over the same lines).
  stub(
    'gpg',
    `case " $* " in *" --show-keys "*) printf 'pub:-:2048:1:234654DA9A296436:1661426471:::-:::scSC::::::23::0:\\nfpr:::::::::${KUBERNETES_APT_KEY_FINGERPRINT}:\\n' ;; *) while [ $# -gt 0 ]; do if [ "$1" = -o ]; then touch "$2"; fi; shift; done ;; esac`,
  );
  // The package's signature is AWS's (ssm-agent-install.test.ts checks the real gpgv against it).
  stub('gpgv', `echo "[GNUPG:] VALIDSIG 0 0 0 0 0 0 0 0 0 ${AWS_SSM_AGENT_SIGNERS[0]?.fingerprint ?? ''}" >&3`);
  stub('dpkg', `case "$1" in -s) [ -e "${root}/ssm-agent" ] ;; -i) touch "${root}/ssm-agent" ;; --print-architecture) echo amd64 ;; esac`);
  stub('cloud-init', 'case "$2" in v1.instance_id) echo "$INSTANCE_ID" ;; v1.availability_zone) echo eu-central-1a ;; esac');
  // install -o/-g need the machine's users: dropped here, the rest is the real install.
  stub('install', 'args=(); while [ $# -gt 0 ]; do case "$1" in -o|-g) shift ;; *) args+=("$1") ;; esac; shift; done; /usr/bin/install "${args[@]}"');
  stub(
    'kubeadm',
    [
      'if [ "$1" = reset ]; then exit 0; fi',
      `failures="$(cat "${root}/kubeadm-failures")"`,
      `if [ "$failures" -gt 0 ]; then echo $((failures - 1)) > "${root}/kubeadm-failures"; echo "error execution phase preflight" >&2; exit 1; fi`,
      `mkdir -p "${root}/lib/systemd/system" "${root}/usr/lib/systemd/system/kubelet.service.d" "${root}/var/lib/kubelet" "${root}/var/lib/etcd"`,
      `touch "${root}/lib/systemd/system/kubelet.service" "${root}/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" "${root}/var/lib/kubelet/config.yaml"`,
    ].join('\n'),
  );
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('the boot script its unit runs until the machine joins', () => {
  it('ends a run without error output while the join material is not published, then joins, installing packages once', async () => {
    const waiting = await runOnce('worker');
    expect(waiting).toMatchObject({ code: 75, stdout: expect.stringContaining('the join material is not published yet'), stderr: '' });
    expect(kubeadmCalls()).toEqual([]);
    expect(await runOnce('worker')).toMatchObject({ code: 75 });
    expect(calls().match(/^apt-get install .* kubelet=/gm)).toHaveLength(1);

    publishJoinMaterial('worker');
    expect(await runOnce('worker')).toMatchObject({ code: 0 });
    expect(kubeadmCalls()).toEqual(['join']);
    // CIS 4.1.1 and 4.1.9: tightened once kubeadm has written the files.
    expect([mode('/lib/systemd/system/kubelet.service'), mode('/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf'), mode('/var/lib/kubelet/config.yaml')]).toEqual(['600', '600', '600']);
  });

  it('never runs kubeadm again once it has joined, and undoes a failed kubeadm before trying again', async () => {
    publishJoinMaterial('worker');
    writeFileSync(join(root, 'kubeadm-failures'), '1');
    expect((await runOnce('worker')).code).not.toBe(0);
    expect(await runOnce('worker')).toMatchObject({ code: 0 });
    expect(await runOnce('worker')).toMatchObject({ code: 0 });
    expect(kubeadmCalls()).toEqual(['join', 'reset', 'join']);
  });

  it('keeps the control plane machine that won the leader parameter on kubeadm init when its init fails; the others join', async () => {
    publishJoinMaterial('control-plane');
    writeFileSync(join(root, 'kubeadm-failures'), '1');
    expect((await runOnce('control-plane', 'i-0first')).code).not.toBe(0);
    expect(await runOnce('control-plane', 'i-0first')).toMatchObject({ code: 0 });
    expect(kubeadmCalls()).toEqual(['init', 'reset', 'init']);
    expect(readFileSync(join(root, 'ssm', machineSecretPath(CLUSTER_ID, 'control-plane', 'leader')), 'utf8')).toBe('i-0first');
    expect(mode('/var/lib/etcd')).toBe('700');

    // Another machine: a fresh disk, the same parameter store.
    for (const path of ['/var/lib/kiln/joined', '/var/lib/kiln/kubeadm-started', '/var/lib/kiln/kubeadm-done', '/var/lib/kubelet']) rmSync(`${root}${path}`, { recursive: true, force: true });
    expect(await runOnce('control-plane', 'i-0second')).toMatchObject({ code: 0 });
    expect(kubeadmCalls()).toEqual(['init', 'reset', 'init', 'join']);
  });

  it('gives up with the status its unit does not restart once the deadline from the first boot has passed', async () => {
    const unit = written('worker').find((file) => file.path === '/etc/systemd/system/kiln-bootstrap.service')?.content ?? '';
    expect(unit).toContain('Environment=KILN_JOIN_DEADLINE_SECONDS=1500');
    writeFileSync(join(root, 'var/lib/kiln/first-boot'), `${Math.floor(Date.now() / 1000) - 1501}\n`);
    const gaveUp = await runOnce('worker');
    expect(gaveUp).toMatchObject({ code: 124, stderr: expect.stringContaining('not joined within 1500s of the first boot') });
    expect(unit).toContain('RestartPreventExitStatus=124');
    expect(calls()).not.toMatch(/^(aws|apt-get|curl|kubeadm) /m);
  });

  it('counts from the boot time the kernel reports, recorded by its first run', async () => {
    rmSync(join(root, 'var/lib/kiln/first-boot'));
    await runOnce('worker');
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1];
    expect(readFileSync(join(root, 'var/lib/kiln/first-boot'), 'utf8')).toBe(`${btime}\n`);
  });
});
