import { randomBytes } from 'node:crypto';

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function tokenPart(length: number): string {
  // 256 is not a multiple of 36: draw again above the last whole multiple, so every character is equally likely.
  const limit = 256 - (256 % TOKEN_ALPHABET.length);
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length)) if (byte < limit && out.length < length) out += TOKEN_ALPHABET.charAt(byte % TOKEN_ALPHABET.length);
  }
  return out;
}

/** A kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`: the id is public, the part after the dot is the secret. */
export function newBootstrapToken(): string {
  return `${tokenPart(6)}.${tokenPart(16)}`;
}

/** The public id of a bootstrap token, safe to log and record. */
export function bootstrapTokenId(token: string): string {
  return token.split('.')[0] ?? '';
}

/**
 * The Secret `kubeadm token create` stores for a bootstrap token
 * (kube-system/bootstrap-token-<id>, type bootstrap.kubernetes.io/token): it
 * authenticates joining machines as system:bootstrappers:kubeadm:default-node-token
 * until it expires and the token cleaner deletes it. It signs no cluster-info:
 * joins discover the cluster from a file, never anonymously.
 */
export function bootstrapTokenSecret(token: string, expiresAt: Date, description: string) {
  const [id = '', secret = ''] = token.split('.');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
    type: 'bootstrap.kubernetes.io/token',
    stringData: {
      description,
      'token-id': id,
      'token-secret': secret,
      expiration: expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      'usage-bootstrap-authentication': 'true',
      'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
    },
  };
}
