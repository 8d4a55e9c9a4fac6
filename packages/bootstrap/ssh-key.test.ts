import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSshKeyPair } from './ssh-key.ts';

describe('per-cluster SSH keys', () => {
  it('writes keys OpenSSH itself reads back, with the fingerprint ssh-keygen prints', () => {
    const pair = generateSshKeyPair('kiln-cls_test');
    const dir = mkdtempSync(join(tmpdir(), 'kiln-ssh-'));
    const file = join(dir, 'id_ed25519');
    writeFileSync(file, pair.privateKey, { mode: 0o600 });
    // ssh-keygen derives the public key from the private one: both encodings must agree.
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
    expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKey.split(' ').slice(0, 2));
    writeFileSync(`${file}.pub`, `${pair.publicKey}\n`);
    expect(execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`], { encoding: 'utf8' })).toContain(pair.fingerprint);
  });

  it('never repeats a key', () => {
    expect(generateSshKeyPair('a').publicKey).not.toBe(generateSshKeyPair('a').publicKey);
  });
});
