import { createHmac, timingSafeEqual } from 'node:crypto';
import { type JsonObject, isObject, stringAt } from './json.ts';

/**
 * Bootstrap tokens as the API server and kube-controller-manager use them: the token authenticator, and the
 * bootstrapsigner and tokencleaner controllers kubeadm turns on. Names and keys are cluster-bootstrap's
 * (kubernetes/cluster-bootstrap@v0.35.6 token/api/types.go).
 */

export const BOOTSTRAP_TOKEN_SECRET_TYPE = 'bootstrap.kubernetes.io/token';
const TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
/** The namespace and name of the ConfigMap kubeadm init publishes for discovery (`kube-public/cluster-info`), and its keys. */
export const CLUSTER_INFO = { namespace: 'kube-public', name: 'cluster-info', kubeconfigKey: 'kubeconfig', signaturePrefix: 'jws-kubeconfig-' } as const;

/** Who a request acts as, once authenticated. */
export interface RequestUser {
  name: string;
  groups: readonly string[];
}

/** kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/authentication/request/anonymous: with --anonymous-auth, a request with no credentials. */
export const ANONYMOUS_USER: RequestUser = { name: 'system:anonymous', groups: ['system:unauthenticated'] };

function dataOf(secret: JsonObject, key: string): string | undefined {
  const data = secret.data;
  const value = isObject(data) ? stringAt(data, key) : undefined;
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

function expired(secret: JsonObject, now: Date): boolean {
  const expiration = dataOf(secret, 'expiration');
  if (expiration === undefined || expiration === '') return false;
  const at = Date.parse(expiration);
  // An unparsable expiration counts as expired.
  return Number.isNaN(at) || now.getTime() > at;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** `<id>.<secret>` split, or undefined when it is not a bootstrap token. */
export function parseBootstrapToken(token: string): { id: string; secret: string } | undefined {
  const parts = TOKEN.exec(token);
  return parts === null ? undefined : { id: parts[1] ?? '', secret: parts[2] ?? '' };
}

/**
 * The bootstrap token authenticator (kubernetes/kubernetes plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go,
 * on by kubeadm's --enable-bootstrap-token-auth): a bearer token `<id>.<secret>` matching the Secret
 * kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token, not expired and marked
 * usage-bootstrap-authentication=true, is user system:bootstrap:<id> in system:bootstrappers and the
 * Secret's auth-extra-groups (and system:authenticated, as every authenticated user). Anything else: undefined.
 */
export function bootstrapTokenUser(token: string, secretNamed: (name: string) => JsonObject | undefined, now: Date): RequestUser | undefined {
  const parsed = parseBootstrapToken(token);
  if (parsed === undefined) return undefined;
  const secret = secretNamed(`bootstrap-token-${parsed.id}`);
  if (secret === undefined || secret.type !== BOOTSTRAP_TOKEN_SECRET_TYPE || !isObject(secret.data)) return undefined;
  if (!sameText(dataOf(secret, 'token-secret') ?? '', parsed.secret) || dataOf(secret, 'token-id') !== parsed.id) return undefined;
  if (expired(secret, now) || dataOf(secret, 'usage-bootstrap-authentication') !== 'true') return undefined;
  const extra = (dataOf(secret, 'auth-extra-groups') ?? '').split(',').filter((group) => group !== '');
  return { name: `system:bootstrap:${parsed.id}`, groups: [...new Set(['system:bootstrappers', ...extra])].sort().concat('system:authenticated') };
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * A detached JWS (RFC 7515 appendix F) over `content`, HS256 with the token secret as key and the token id as `kid`
 * (kubernetes/cluster-bootstrap@v0.35.6 token/jws/jws.go ComputeDetachedSignature: go-jose writes the protected
 * header {"alg":"HS256","kid":"<id>"} and the content part is left out).
 */
export function detachedSignature(content: string, tokenId: string, tokenSecret: string): string {
  const header = base64url(JSON.stringify({ alg: 'HS256', kid: tokenId }));
  const signature = createHmac('sha256', tokenSecret).update(`${header}.${base64url(content)}`).digest('base64url');
  return `${header}..${signature}`;
}

/** The token id and secret of a Secret the bootstrapsigner signs with (pkg/controller/bootstrap/util.go validateSecretForSigning). */
function signingToken(secret: JsonObject, now: Date): { id: string; secret: string } | undefined {
  if (secret.type !== BOOTSTRAP_TOKEN_SECRET_TYPE) return undefined;
  const id = dataOf(secret, 'token-id') ?? '';
  const tokenSecret = dataOf(secret, 'token-secret') ?? '';
  if (parseBootstrapToken(`${id}.${tokenSecret}`) === undefined) return undefined;
  if (dataOf(secret, 'usage-bootstrap-signing') !== 'true' || expired(secret, now)) return undefined;
  return { id, secret: tokenSecret };
}

/** What the two controllers need of a cluster: its objects, and writes from inside it. */
export interface BootstrapTokenCluster {
  objects(filter: { apiVersion?: string; kind?: string; namespace?: string; name?: string }): JsonObject[];
  writeObject(object: JsonObject, manager: string): JsonObject;
  deleteObject(reference: { apiVersion: string; kind: string; namespace?: string; name: string }): boolean;
  onChange(filter: { apiVersion?: string; kind?: string }, listener: () => void): () => void;
}

/**
 * The bootstrapsigner (kubernetes/kubernetes pkg/controller/bootstrap/bootstrapsigner.go signConfigMap): whenever
 * cluster-info or a token Secret changes, cluster-info carries `jws-kubeconfig-<id>` for exactly the tokens valid for
 * signing, over its `kubeconfig`; it is written only when a signature changed.
 */
function signClusterInfo(cluster: BootstrapTokenCluster, now: Date): void {
  const [clusterInfo] = cluster.objects({ apiVersion: 'v1', kind: 'ConfigMap', namespace: CLUSTER_INFO.namespace, name: CLUSTER_INFO.name });
  const data = isObject(clusterInfo?.data) ? clusterInfo.data : undefined;
  const content = stringAt(data, CLUSTER_INFO.kubeconfigKey);
  if (clusterInfo === undefined || data === undefined || content === undefined) return;
  const signatures = Object.fromEntries(
    cluster
      .objects({ apiVersion: 'v1', kind: 'Secret', namespace: 'kube-system' })
      .flatMap((secret) => {
        const token = signingToken(secret, now);
        return token === undefined ? [] : [[`${CLUSTER_INFO.signaturePrefix}${token.id}`, detachedSignature(content, token.id, token.secret)]];
      }),
  );
  const unsigned = Object.fromEntries(Object.entries(data).filter(([key]) => !key.startsWith(CLUSTER_INFO.signaturePrefix)));
  const next = { ...unsigned, ...signatures };
  const before = Object.entries(data).filter(([key]) => key.startsWith(CLUSTER_INFO.signaturePrefix));
  const changed = before.length !== Object.keys(signatures).length || before.some(([key, value]) => signatures[key] !== value);
  if (changed) cluster.writeObject({ ...clusterInfo, data: next }, 'kube-controller-manager');
}

/** The tokencleaner (kubernetes/kubernetes pkg/controller/bootstrap/tokencleaner.go): deletes token Secrets past their expiration. */
function cleanExpiredTokens(cluster: BootstrapTokenCluster, now: Date): void {
  for (const secret of cluster.objects({ apiVersion: 'v1', kind: 'Secret', namespace: 'kube-system' })) {
    const name = isObject(secret.metadata) ? stringAt(secret.metadata, 'name') : undefined;
    if (secret.type === BOOTSTRAP_TOKEN_SECRET_TYPE && name !== undefined && expired(secret, now)) {
      cluster.deleteObject({ apiVersion: 'v1', kind: 'Secret', namespace: 'kube-system', name });
    }
  }
}

const CLEANER_PERIOD_MS = 250;

/**
 * kube-controller-manager's bootstrapsigner and tokencleaner, which kubeadm enables (`--controllers=*,bootstrapsigner,
 * tokencleaner`), from the moment the first control plane runs. The signer reacts to changes as its informers do; the
 * cleaner looks again every quarter second (upstream requeues each token at its expiry). Returns the function that
 * stops both.
 */
export function startBootstrapTokenControllers(cluster: BootstrapTokenCluster): () => void {
  let pending = false;
  const sync = () => {
    if (pending) return;
    pending = true;
    // The controller's work queue: one sync for any number of changes in a turn.
    queueMicrotask(() => {
      pending = false;
      signClusterInfo(cluster, new Date());
    });
  };
  const stops = [cluster.onChange({ apiVersion: 'v1', kind: 'ConfigMap' }, sync), cluster.onChange({ apiVersion: 'v1', kind: 'Secret' }, sync)];
  const cleaner = setInterval(() => {
    cleanExpiredTokens(cluster, new Date());
  }, CLEANER_PERIOD_MS);
  cleaner.unref();
  sync();
  return () => {
    clearInterval(cleaner);
    for (const stop of stops) stop();
  };
}
