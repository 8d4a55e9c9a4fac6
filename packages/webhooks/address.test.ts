import { describe, expect, it } from 'vitest';
import { addressRefusal, resolveAllowed, urlRefusal } from './address.ts';

const PRODUCTION = { allowLoopback: false };
const LOCAL = { allowLoopback: true };

describe('the webhook address guard', () => {
  it.each([
    '127.0.0.1',
    '127.1.2.3',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd12:3456::1',
    'fd00:ec2::254',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::10.0.0.1',
    '64:ff9b:1::a00:1',
    '2002:a00:1::1',
    '::10.0.0.1',
    '::8.8.8.8',
    '224.0.0.1',
  ])('refuses %s', (address) => {
    expect(addressRefusal(address, PRODUCTION)).toMatch(/private, loopback, link-local or reserved/);
  });

  it.each(['203.0.113.10', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(addressRefusal(address, PRODUCTION)).toBeUndefined();
  });

  it('lets local mode reach a receiver on loopback, and nothing else private', () => {
    expect(addressRefusal('127.0.0.1', LOCAL)).toBeUndefined();
    expect(addressRefusal('::1', LOCAL)).toBeUndefined();
    expect(addressRefusal('::ffff:127.0.0.1', LOCAL)).toBeUndefined();
    expect(addressRefusal('169.254.169.254', LOCAL)).toBeDefined();
    expect(addressRefusal('10.0.0.1', LOCAL)).toBeDefined();
  });

  it('takes https only, http only to loopback in local mode, and no credentials in the URL', () => {
    expect(urlRefusal('https://203.0.113.10/hooks', PRODUCTION)).toBeUndefined();
    expect(urlRefusal('http://203.0.113.10/hooks', PRODUCTION)).toBe('must be https');
    expect(urlRefusal('http://127.0.0.1:9000/hooks', PRODUCTION)).toBe('must be https');
    expect(urlRefusal('https://127.0.0.1/hooks', PRODUCTION)).toMatch(/^points at 127\.0\.0\.1/);
    expect(urlRefusal('https://[::1]/hooks', PRODUCTION)).toMatch(/^points at ::1/);
    expect(urlRefusal('https://[::ffff:127.0.0.1]/hooks', PRODUCTION)).toMatch(/^points at/);
    expect(urlRefusal('http://127.0.0.1:9000/hooks', LOCAL)).toBeUndefined();
    expect(urlRefusal('http://169.254.169.254/latest/meta-data', LOCAL)).toBe('must be https');
    expect(urlRefusal('https://169.254.169.254/latest/meta-data', LOCAL)).toMatch(/^points at/);
    expect(urlRefusal('https://user:secret@203.0.113.10/hooks', PRODUCTION)).toBe('must not carry credentials');
    expect(urlRefusal('not a url', PRODUCTION)).toBe('is not a URL');
  });

  it("takes https's own port only, unless the operator allows others; a loopback receiver in local mode any", () => {
    expect(urlRefusal('https://203.0.113.10:443/hooks', PRODUCTION)).toBeUndefined();
    expect(urlRefusal('https://203.0.113.10:25/hooks', PRODUCTION)).toBe('must use port 443');
    expect(urlRefusal('https://hooks.example.com:8443/hooks', PRODUCTION)).toBe('must use port 443');
    expect(urlRefusal('https://hooks.example.com:8443/hooks', { allowLoopback: false, allowedPorts: [443, 8443] })).toBeUndefined();
    expect(urlRefusal('http://127.0.0.1:9000/hooks', LOCAL)).toBeUndefined();
  });

  it('refuses a name that resolves to a private address, as every delivery checks it', async () => {
    expect(await resolveAllowed('localhost', PRODUCTION)).toEqual({ refused: expect.stringMatching(/^localhost resolves to/) });
    expect(await resolveAllowed('localhost', LOCAL)).toMatchObject({ address: expect.stringMatching(/^(127\.0\.0\.1|::1)$/) });
    expect(await resolveAllowed('203.0.113.10', PRODUCTION)).toEqual({ address: '203.0.113.10', family: 4 });
    expect(await resolveAllowed('no-such-host.invalid', PRODUCTION)).toEqual({ refused: 'no-such-host.invalid does not resolve' });
  });
});
