import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { etcdMemberScript } from './cloud-init.ts';
import { writeStub } from './test-support.ts';

const run = promisify(execFile);

/**
 * `etcdctl member list` in its simple format as etcd v3.6 prints it (etcd-io/etcd@v3.6.6 etcdctl/ctlv3/command/
 * printer_simple.go MemberList, printer.go makeMemberListTable): ID, Status, Name, Peer Addrs, Client Addrs, Is
 * Learner, joined with ", ". The last member is a learner whose etcd never started: no name, no client URL.
 */
const MEMBERS = [
  '8e9e05c52164694d, started, control-plane-0, https://10.0.0.4:2380, https://10.0.0.4:2379, false',
  '91bc3c398fb3c146, started, control-plane-1, https://10.0.64.4:2380, https://10.0.64.4:2379, false',
  '2c1e6a4b8f0d7e35, started, control-plane-2, https://10.0.128.4:2380, https://10.0.128.4:2379, false',
  'fd422379fda50e48, unstarted, , https://10.0.0.40:2380, , true',
];

/**
 * The script runs for real under bash on a machine played by a temporary directory: crictl is a stub that lists a
 * running etcd container (unless told there is none) and plays etcdctl inside it over a member list kept in a file,
 * removing members by ID as etcd does; every call is logged.
 */
let root: string;
let bin: string;
const membersFile = () => join(root, 'members');

const stub = (name: string, body: string): void => {
  writeStub(bin, root, name, body);
};

async function script(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(root, 'kiln-etcd-member');
  writeFileSync(file, etcdMemberScript(), { mode: 0o700 });
  try {
    const { stdout, stderr } = await run('bash', [file, ...args], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const members = () => readFileSync(membersFile(), 'utf8').trim().split('\n').filter((line) => line !== '');
const removals = () => (existsSync(join(root, 'calls.log')) ? readFileSync(join(root, 'calls.log'), 'utf8') : '').split('\n').filter((line) => line.includes('member remove'));

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kiln-etcd-member-'));
  bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(membersFile(), `${MEMBERS.join('\n')}\n`);
  stub(
    'crictl',
    [
      `MEMBERS="${membersFile()}"`,
      'if [ "$1" = ps ]; then [ -e "$ROOT/no-etcd" ] || echo 0123abcd; exit 0; fi',
      'shift 2',
      'args=("$@"); n=${#args[@]}',
      'if [ "${args[n-2]}" = member ] && [ "${args[n-1]}" = list ]; then [ -e "$ROOT/etcd-down" ] && { echo "Error: context deadline exceeded" >&2; exit 1; }; cat "$MEMBERS"; exit 0; fi',
      'if [ "${args[n-3]}" = member ] && [ "${args[n-2]}" = remove ]; then',
      '  id="${args[n-1]}"',
      '  grep -q "^$id, " "$MEMBERS" || { echo "Error: etcdserver: member not found" >&2; exit 1; }',
      '  grep -v "^$id, " "$MEMBERS" > "$MEMBERS.new"; mv "$MEMBERS.new" "$MEMBERS"',
      '  echo "Member $id removed from cluster 2f9ad5d1c8e04a7b"; exit 0',
      'fi',
      'exit 2',
    ]
      .join('\n')
      .replaceAll('$ROOT', root),
  );
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('the etcd member script', () => {
  it('removes the member named after the node, through etcdctl in the running etcd container', async () => {
    expect(await script('remove', 'control-plane-1')).toMatchObject({ code: 0, stdout: expect.stringContaining('Member 91bc3c398fb3c146 removed') });
    expect(members().map((line) => line.split(', ')[2])).toEqual(['control-plane-0', 'control-plane-2', '']);
    expect(removals()).toEqual([expect.stringMatching(/^crictl exec 0123abcd etcdctl --endpoints=https:\/\/127\.0\.0\.1:2379 .* member remove 91bc3c398fb3c146$/)]);
  });

  it('finds no learner by a name its etcd never published, and says so without failing', async () => {
    expect(await script('remove', 'control-plane-3')).toMatchObject({ code: 0, stdout: 'control-plane-3 is not an etcd member\n' });
    expect(members()).toHaveLength(4);
    expect(removals()).toEqual([]);
  });

  it('removes an unnamed learner by its peer URL, for a machine that never registered a Node', async () => {
    expect(await script('remove', '-', '10.0.0.40')).toMatchObject({ code: 0, stdout: expect.stringContaining('Member fd422379fda50e48 removed') });
    expect(members()).toEqual(MEMBERS.slice(0, 3));
  });

  it('removes by the peer URL when the name is not listed, and matches the URL exactly (10.0.0.4 is not 10.0.0.40)', async () => {
    expect(await script('remove', 'ip-10-0-0-40', '10.0.0.40')).toMatchObject({ code: 0 });
    expect(members()).toEqual(MEMBERS.slice(0, 3));
    expect(await script('remove', '-', '10.0.0.4')).toMatchObject({ code: 0 });
    expect(members()).toEqual(MEMBERS.slice(1, 3));
  });

  it('succeeds again when retried after the member is gone, removing nothing', async () => {
    expect((await script('remove', 'control-plane-3', '10.0.0.40')).code).toBe(0);
    expect(await script('remove', 'control-plane-3', '10.0.0.40')).toMatchObject({ code: 0, stdout: 'control-plane-3 or https://10.0.0.40:2380 is not an etcd member\n' });
    expect(removals()).toHaveLength(1);
  });

  it('fails when etcd does not answer, and when this machine runs no etcd', async () => {
    writeFileSync(join(root, 'etcd-down'), '');
    expect(await script('remove', 'control-plane-1')).toMatchObject({ code: 1, stderr: expect.stringContaining('context deadline exceeded') });
    rmSync(join(root, 'etcd-down'));
    writeFileSync(join(root, 'no-etcd'), '');
    expect(await script('remove', 'control-plane-1')).toMatchObject({ code: 1, stderr: 'etcd is not running on this machine\n' });
    expect(members()).toHaveLength(4);
  });

  it('prunes the learners at no address of the machines kept, started or not, and no voting member', async () => {
    // A learner whose etcd started but which was never promoted: named, and a learner still.
    writeFileSync(membersFile(), `${[...MEMBERS.slice(0, 3), '5b7d0c1e9a3f2864, started, ip-10-0-64-9, https://10.0.64.9:2380, https://10.0.64.9:2379, true', MEMBERS[3]].join('\n')}\n`);
    // Only control-plane-0's address is kept: the voting members elsewhere stay, both learners go.
    expect(await script('prune-learners', '10.0.0.4')).toMatchObject({ code: 0, stdout: expect.stringMatching(/Member 5b7d0c1e9a3f2864 removed[^]*Member fd422379fda50e48 removed/) });
    expect(members()).toEqual(MEMBERS.slice(0, 3));
    expect(await script('prune-learners', '10.0.0.4')).toMatchObject({ code: 0, stdout: 'no etcd learner outside the machines kept\n' });
    expect(removals()).toHaveLength(2);
  });

  it('keeps a learner at the address of a machine kept (one still joining)', async () => {
    expect(await script('prune-learners', '10.0.0.4', '10.0.64.4', '10.0.0.40')).toMatchObject({ code: 0, stdout: 'no etcd learner outside the machines kept\n' });
    expect(members()).toEqual(MEMBERS);
  });

  it('refuses a call that names neither a node nor an address, or an address that is not IPv4', async () => {
    for (const args of [[], ['list'], ['remove'], ['remove', '-'], ['remove', '-', '10.0.0.40/24'], ['remove', 'x', '$(reboot)'], ['prune-learners'], ['prune-learners', '10.0.0.4', 'x']]) {
      expect((await script(...args)).code).toBe(64);
    }
    expect(members()).toHaveLength(4);
    expect(removals()).toEqual([]);
  });
});
