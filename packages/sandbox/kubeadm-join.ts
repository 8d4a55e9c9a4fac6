import { X509Certificate, createHash } from 'node:crypto';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parse, stringify } from 'yaml';
import { isRecord } from '#core';
import { CLUSTER_INFO, detachedSignature, parseBootstrapToken } from './kube/bootstrap-tokens.ts';
import type { SandboxCluster } from './kube/index.ts';

/**
 * `kubeadm join`'s preflight as kubeadm runs it against the API server, over HTTP to the sandbox API server with its
 * real authentication: discovery (kubernetes/kubernetes cmd/kubeadm/app/discovery: discovery.go, token/token.go,
 * file/file.go, read in their v1beta4 form, the one kubeadm 1.35 and 1.36 ship), then the kubeadm-config ConfigMap
 * with the TLS bootstrap credentials discovery returns (cmd/kubeadm/app/cmd/join.go fetchInitConfiguration).
 */

/** What a machine's user data gives `kubeadm join`: its JoinConfiguration's discovery and the files its boot script fills. */
export interface JoinSpec {
  /** The JoinConfiguration's `discovery`, with the boot placeholders still in it. */
  discovery: Record<string, unknown>;
  /** `timeouts.discovery` in milliseconds, when the JoinConfiguration sets it. */
  discoveryTimeoutMs?: number;
  /** Files the boot script writes from templates before kubeadm runs: the path it writes, and the template's text. */
  files: Readonly<Record<string, string>>;
  /** The placeholders the boot script replaces, with the parameter it reads each value from (base64-encoded when it says so). */
  placeholders: Readonly<Record<string, { parameter: string; base64: boolean }>>;
}

/** kubeadm's default for `timeouts.discovery` (cmd/kubeadm/app/constants: DiscoveryTimeout = 5 * time.Minute). */
export const KUBEADM_DISCOVERY_TIMEOUT_MS = 5 * 60_000;
/** The pause between attempts: kubeadm's DiscoveryRetryInterval is 5 s; the sandbox runs its clocks faster. */
const RETRY_INTERVAL_MS = 200;
const CLUSTER_INFO_PATH = `/api/v1/namespaces/${CLUSTER_INFO.namespace}/configmaps/${CLUSTER_INFO.name}`;
const KUBEADM_CONFIG_PATH = '/api/v1/namespaces/kube-system/configmaps/kubeadm-config';

/** How Go prints a duration kubeadm reports (`5m0s`). */
function goDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${hours > 0 ? `${hours}h` : ''}${hours > 0 || minutes > 0 ? `${minutes}m` : ''}${seconds % 60}s`;
}

/** The kubeconfig kubeadm init stores in cluster-info: the admin.conf cluster, unnamed, nothing else (clusterinfo.go). */
export function clusterInfoKubeconfig(server: string, caPem: string | undefined): string {
  const cluster = { ...(caPem === undefined ? {} : { 'certificate-authority-data': Buffer.from(caPem).toString('base64') }), server };
  return stringify({ apiVersion: 'v1', clusters: [{ cluster, name: '' }], contexts: null, 'current-context': '', kind: 'Config', preferences: {}, users: null });
}

/** Who the client presents itself as: a bearer token or a client certificate, or nobody. */
interface Credentials {
  token?: string;
  certificatePem?: string;
  keyPem?: string;
}

/** Where and how a client talks to the API server: a kubeconfig's cluster and user, reduced to what kubeadm uses. */
interface ClientConfig {
  server: string;
  caPem?: string;
  insecureSkipTlsVerify?: boolean;
  credentials: Credentials;
}

type Response = { status: number; body: Record<string, unknown> } | { transport: string };

/** What Go's TLS stack says where Node's does: kubeadm's messages are client-go's. */
function transportMessage(error: Error & { code?: string }, host: string): string {
  if (['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'].includes(error.code ?? '')) {
    return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
  }
  if (error.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `tls: failed to verify certificate: x509: certificate is not valid for ${host}`;
  if (error.code === 'ECONNRESET' || error.code === 'ECONNREFUSED') return error.code === 'ECONNREFUSED' ? 'connect: connection refused' : 'EOF';
  // A server with no certificate yet (before kubeadm init) fails the handshake.
  if (error.code === 'EPROTO') return 'remote error: tls: handshake failure';
  return error.message;
}

/**
 * One GET through the cluster's load balancer: whatever host the configuration names, the connection reaches the
 * cluster's API servers, and TLS is verified against that host name and the configured CA (unless told not to).
 */
function get(cluster: SandboxCluster, config: ClientConfig, path: string): Promise<Response> {
  const target = new URL(cluster.url);
  const host = new URL(config.server).hostname;
  const headers = config.credentials.token === undefined ? {} : { authorization: `Bearer ${config.credentials.token}` };
  return new Promise((resolve) => {
    const onResponse = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
      });
      response.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = {};
        }
        resolve({ status: response.statusCode ?? 0, body: isRecord(body) ? body : {} });
      });
    };
    const options = { host: target.hostname, port: target.port, path, method: 'GET', headers, timeout: 10_000 };
    // The sandbox's own plain-http clusters have no TLS to verify.
    const request =
      target.protocol === 'http:'
        ? httpRequest(options, onResponse)
        : httpsRequest(
            {
              ...options,
              servername: host,
              rejectUnauthorized: config.insecureSkipTlsVerify !== true,
              ...(config.caPem === undefined ? {} : { ca: config.caPem }),
              ...(config.credentials.certificatePem === undefined ? {} : { cert: config.credentials.certificatePem, key: config.credentials.keyPem }),
            },
            onResponse,
          );
    request.on('timeout', () => {
      request.destroy(new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)'));
    });
    request.on('error', (error: Error & { code?: string }) => {
      resolve({ transport: `Get "${config.server}${path}": ${transportMessage(error, host)}` });
    });
    request.end();
  });
}

/** client-go's error for an answer that is not a success: the Status message (`Unauthorized`, `… is forbidden: …`). */
function errorOf(response: Response): string | undefined {
  if ('transport' in response) return response.transport;
  if (response.status >= 200 && response.status < 300) return undefined;
  return typeof response.body.message === 'string' ? response.body.message : `the server responded with the status code ${response.status}`;
}

/** One discovery attempt: done, worth another try until the timeout, or a failure kubeadm does not retry. */
type Attempt = { discovered: ClientConfig } | { retry: string; afterTimeout: string } | { fatal: string } | { invalid: string };

interface KubeconfigView {
  server?: string;
  caPem?: string;
  caFile?: string;
  insecureSkipTlsVerify: boolean;
  credentials: Credentials;
  clusters: number;
}

const asRecord = (value: unknown): Record<string, unknown> => (isRecord(value) ? value : {});
const named = (list: unknown, name: unknown): Record<string, unknown> | undefined =>
  (Array.isArray(list) ? (list as unknown[]) : []).map(asRecord).find((entry) => entry.name === name);
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const decoded = (value: unknown): string | undefined => (text(value) === undefined ? undefined : Buffer.from(String(value), 'base64').toString('utf8'));

/** The current cluster and user of a kubeconfig (kubeadm's util/kubeconfig GetClusterFromKubeConfig: the current context's, else the unnamed one). */
function viewOf(kubeconfig: unknown): KubeconfigView {
  const config = asRecord(kubeconfig);
  const context = asRecord(named(config.contexts, config['current-context'])?.context);
  const cluster = asRecord((named(config.clusters, context.cluster) ?? named(config.clusters, ''))?.cluster);
  const user = asRecord(named(config.users, context.user)?.user);
  const credentials: Credentials = {
    ...(text(user.token) === undefined ? {} : { token: String(user.token) }),
    ...(decoded(user['client-certificate-data']) === undefined ? {} : { certificatePem: decoded(user['client-certificate-data']) ?? '', keyPem: decoded(user['client-key-data']) ?? '' }),
  };
  return {
    ...(text(cluster.server) === undefined ? {} : { server: String(cluster.server) }),
    ...(decoded(cluster['certificate-authority-data']) === undefined ? {} : { caPem: decoded(cluster['certificate-authority-data']) ?? '' }),
    ...(text(cluster['certificate-authority']) === undefined ? {} : { caFile: String(cluster['certificate-authority']) }),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    credentials,
    clusters: Array.isArray(config.clusters) ? config.clusters.length : 0,
  };
}

/** `sha256:<hex>` of a certificate's SubjectPublicKeyInfo (cmd/kubeadm/app/util/pubkeypin). */
function pinOf(certificatePem: string): string {
  return `sha256:${createHash('sha256').update(new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/**
 * Token discovery (discovery/token/token.go): cluster-info read anonymously over TLS it does not verify, retried until
 * it carries a JWS signature for the token's id; the signature checked; the CA pinned by `caCertHashes` (unless
 * `unsafeSkipCAVerification`), and cluster-info read again over TLS verified with that CA.
 */
async function tokenDiscovery(cluster: SandboxCluster, bootstrapToken: Record<string, unknown>): Promise<Attempt> {
  const tokenText = text(bootstrapToken.token) ?? '';
  const token = parseBootstrapToken(tokenText);
  if (token === undefined) return { fatal: `the bootstrap token "${tokenText}" was not of the form "^([a-z0-9]{6})\\.([a-z0-9]{16})$"` };
  const pins = (Array.isArray(bootstrapToken.caCertHashes) ? (bootstrapToken.caCertHashes as unknown[]) : []).map(String);
  // kubeadm's validation refuses token discovery that neither pins the CA nor says it may skip it.
  if (pins.length === 0 && bootstrapToken.unsafeSkipCAVerification !== true) {
    return { invalid: 'discovery.bootstrapToken.caCertHashes: Invalid value: "": using token-based discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag to continue' };
  }
  const server = `https://${text(bootstrapToken.apiServerEndpoint) ?? ''}`;
  const read = async (config: ClientConfig): Promise<{ data: Record<string, unknown> } | { retry: string }> => {
    const response = await get(cluster, config, CLUSTER_INFO_PATH);
    const error = errorOf(response);
    if (error !== undefined || 'transport' in response) return { retry: `failed to request the cluster-info ConfigMap: ${error ?? ''}` };
    const data = asRecord(response.body.data);
    // Even once cluster-info exists, the bootstrapsigner adds the signature a moment later.
    if (data[`${CLUSTER_INFO.signaturePrefix}${token.id}`] === undefined) return { retry: `could not find a JWS signature in the cluster-info ConfigMap for token ID "${token.id}"` };
    return { data };
  };
  const retry = (error: string): Attempt => ({ retry: error, afterTimeout: error });
  const insecure = await read({ server, insecureSkipTlsVerify: true, credentials: {} });
  if ('retry' in insecure) return retry(insecure.retry);
  const kubeconfig = text(insecure.data[CLUSTER_INFO.kubeconfigKey]);
  if (kubeconfig === undefined) return { fatal: "there is no kubeconfig key in the cluster-info ConfigMap. This API Server isn't set up for token bootstrapping, can't connect" };
  const signature = String(insecure.data[`${CLUSTER_INFO.signaturePrefix}${token.id}`]);
  if (signature !== detachedSignature(kubeconfig, token.id, token.secret)) return { fatal: "failed to verify JWS signature of received cluster info object, can't trust this API Server" };
  const view = viewOf(parse(kubeconfig));
  if (view.clusters !== 1) return { fatal: `expected the kubeconfig file in the cluster-info ConfigMap to have a single cluster, but it had ${view.clusters}` };
  const discovered = (caPem: string | undefined): ClientConfig => ({ server: view.server ?? server, ...(caPem === undefined ? {} : { caPem }), credentials: { token: tokenText } });
  if (pins.length === 0) return { discovered: discovered(view.caPem) };
  const caPem = view.caPem ?? '';
  let pin: string;
  try {
    pin = pinOf(caPem);
  } catch {
    return { fatal: 'failed to parse cluster CA from the cluster-info ConfigMap: data does not contain any valid RSA or ECDSA certificates' };
  }
  if (!pins.includes(pin)) return { fatal: `cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "${pin}" are pinned` };
  const secure = await read({ server, caPem, credentials: {} });
  if ('retry' in secure) return retry(secure.retry);
  if (secure.data[CLUSTER_INFO.kubeconfigKey] !== kubeconfig) return { fatal: 'the second kubeconfig from the cluster-info ConfigMap (using validated TLS) was different from the first' };
  return { discovered: discovered(caPem) };
}

/**
 * File discovery (discovery/file/file.go ValidateConfigInfo): the file's cluster and CA, and its credentials if it has
 * any (else the request is anonymous); cluster-info is read to prove the TLS connection. A 403 means the cluster admin
 * keeps cluster-info from this client and kubeadm trusts the file and proceeds; any other error is retried until the
 * timeout ("Abort reading the cluster-info ConfigMap after timeout of …").
 */
async function fileDiscovery(cluster: SandboxCluster, path: string, files: Readonly<Record<string, string>>, timeout: string): Promise<Attempt> {
  const content = files[path];
  if (content === undefined) return { fatal: `open ${path}: no such file or directory` };
  let view: KubeconfigView;
  try {
    view = viewOf(parse(content));
  } catch (error) {
    return { fatal: `couldn't get version/kind; json parse error: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (view.clusters < 1) return { fatal: 'the provided kubeconfig file must have at least one Cluster defined' };
  if (view.server === undefined) return { fatal: 'the provided kubeconfig file must have a unnamed Cluster or a CurrentContext that specifies a non-nil Cluster' };
  // EnsureCertificateAuthorityIsEmbedded: a CA named by path is read from the machine.
  const caPem = view.caPem ?? (view.caFile === undefined ? undefined : files[view.caFile]);
  if (view.caPem === undefined && view.caFile !== undefined && caPem === undefined) return { fatal: `open ${view.caFile}: no such file or directory` };
  const config: ClientConfig = { server: view.server, ...(caPem === undefined ? {} : { caPem }), insecureSkipTlsVerify: view.insecureSkipTlsVerify, credentials: view.credentials };
  const response = await get(cluster, config, CLUSTER_INFO_PATH);
  const error = errorOf(response);
  if (error === undefined || (!('transport' in response) && response.status === 403)) return { discovered: config };
  return { retry: error, afterTimeout: `Abort reading the cluster-info ConfigMap after timeout of ${timeout}: ${error}` };
}

/** What the join's preflight ends with: the ClusterConfiguration kubeadm-config holds, or kubeadm's error. */
export type JoinPreflight = { clusterConfiguration: string } | { error: string };

/**
 * kubeadm join's preflight on one machine, retried as kubeadm retries discovery, until its discovery timeout. `poll`
 * starts the next attempt when it is due and answers 'running' until there is an outcome.
 */
export class KubeadmJoinPreflight {
  /** Discovery attempts finished so far. */
  attempts = 0;
  private startedAt: number | undefined;
  private nextAttemptAt = 0;
  private inFlight = false;
  private lastRetry: string | undefined;
  private outcome: JoinPreflight | undefined;
  private readonly timeoutMs: number;

  constructor(
    private readonly cluster: SandboxCluster,
    /** The JoinConfiguration's discovery, placeholders filled. */
    private readonly discovery: Record<string, unknown>,
    /** The files on the machine, filled. */
    private readonly files: Readonly<Record<string, string>>,
    timeoutMs?: number,
  ) {
    this.timeoutMs = timeoutMs ?? KUBEADM_DISCOVERY_TIMEOUT_MS;
  }

  poll(): 'running' | JoinPreflight {
    if (this.outcome !== undefined) return this.outcome;
    if (this.inFlight || performance.now() < this.nextAttemptAt) return 'running';
    const attemptAt = Date.now();
    this.startedAt ??= attemptAt;
    this.inFlight = true;
    this.attempt().then(
      (outcome) => {
        this.attempts += 1;
        this.inFlight = false;
        this.nextAttemptAt = performance.now() + RETRY_INTERVAL_MS;
        if (outcome !== undefined) this.outcome = outcome;
        // kubeadm tries every few seconds until its timeout: the attempt that fails at or past it is the last.
        else if (attemptAt - (this.startedAt ?? attemptAt) >= this.timeoutMs) {
          this.outcome = { error: `error execution phase preflight: couldn't validate the identity of the API Server: ${this.lastRetry ?? ''}` };
        }
      },
      (error: unknown) => {
        this.inFlight = false;
        this.outcome = { error: `error execution phase preflight: ${error instanceof Error ? error.message : String(error)}` };
      },
    );
    return 'running';
  }

  /** One attempt; undefined when discovery is to be tried again. */
  private async attempt(): Promise<JoinPreflight | undefined> {
    const found = await this.discover();
    if ('retry' in found) {
      this.lastRetry = found.afterTimeout;
      return undefined;
    }
    if ('invalid' in found) return { error: found.invalid };
    if ('fatal' in found) return { error: `error execution phase preflight: couldn't validate the identity of the API Server: ${found.fatal}` };
    // discovery.go For: the TLS bootstrap uses tlsBootstrapToken when set (token discovery defaults it to its token),
    // else the credentials the discovered kubeconfig carries.
    const tlsBootstrapToken = text(this.discovery.tlsBootstrapToken) ?? text(asRecord(this.discovery.bootstrapToken).token);
    const bootstrap: ClientConfig = tlsBootstrapToken === undefined ? found.discovered : { ...found.discovered, credentials: { token: tlsBootstrapToken } };
    if (bootstrap.credentials.token === undefined && bootstrap.credentials.certificatePem === undefined) {
      return {
        error:
          'error execution phase preflight: could not find authentication credentials for the TLS bootstrap process. Please use Token discovery, a discovery file with embedded authentication credentials or a discovery file without authentication credentials but with the TLSBootstrapToken flag',
      };
    }
    const response = await get(this.cluster, bootstrap, KUBEADM_CONFIG_PATH);
    const error = errorOf(response);
    const clusterConfiguration = 'transport' in response ? undefined : text(asRecord(response.body.data).ClusterConfiguration);
    if (error !== undefined || clusterConfiguration === undefined) {
      return { error: `error execution phase preflight: unable to fetch the kubeadm-config ConfigMap: failed to get config map: ${error ?? 'no ClusterConfiguration'}` };
    }
    return { clusterConfiguration };
  }

  private discover(): Promise<Attempt> {
    const file = asRecord(this.discovery.file);
    if (text(file.kubeConfigPath) !== undefined) return fileDiscovery(this.cluster, String(file.kubeConfigPath), this.files, goDuration(this.timeoutMs));
    if (isRecord(this.discovery.bootstrapToken)) return tokenDiscovery(this.cluster, this.discovery.bootstrapToken);
    return Promise.resolve({ fatal: 'couldn\'t find a valid discovery configuration' });
  }
}
