/** Where the drop-in goes; Debian's sshd_config Includes sshd_config.d/*.conf before its own settings. */
export const SSHD_DROP_IN_PATH = '/etc/ssh/sshd_config.d/50-kiln.conf';

/** The one login account on every machine; root and passwords stay off. */
export const OPERATOR_USER = 'kiln';

/** Modern AEAD/ETM algorithms only; all are in OpenSSH 9.2 and in Debian 13's 10.0 (openssh/openssh-portable@V_10_0_P1 cipher.c, mac.c, kex-names.c). */
const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'];
const MACS = ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'umac-128-etm@openssh.com'];
const KEX = ['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512'];

/** The sshd drop-in every machine gets: key-only logins for the operator user, no root, no forwarding. */
export function renderSshdConfig(): string {
  const settings: [string, string][] = [
    ['PasswordAuthentication', 'no'],
    ['KbdInteractiveAuthentication', 'no'],
    ['PermitEmptyPasswords', 'no'],
    ['PermitRootLogin', 'no'],
    ['PubkeyAuthentication', 'yes'],
    ['AuthenticationMethods', 'publickey'],
    ['MaxAuthTries', '3'],
    ['LoginGraceTime', '30'],
    ['X11Forwarding', 'no'],
    ['AllowAgentForwarding', 'no'],
    ['AllowTcpForwarding', 'no'],
    ['PermitTunnel', 'no'],
    ['ClientAliveInterval', '300'],
    ['ClientAliveCountMax', '2'],
    ['AllowUsers', OPERATOR_USER],
    ['Ciphers', CIPHERS.join(',')],
    ['MACs', MACS.join(',')],
    ['KexAlgorithms', KEX.join(',')],
  ];
  return ['# Managed by Kiln: public-key logins only.', ...settings.map(([key, value]) => `${key} ${value}`), ''].join('\n');
}
