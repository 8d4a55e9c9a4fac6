import { X509Certificate } from 'node:crypto';
import { type Server as HttpServer, type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { stringify as toYaml } from 'yaml';
import { DEFAULT_KUBERNETES_VERSION } from '#core';
import { ResourceCatalog, type ResourceType, apiVersionOf, typeKey } from './catalog.ts';
import { KubeHttpApi, type KubeRequest, type WriteGuard, describeRequest, sendError } from './http.ts';
import { type JsonObject, objectAt, stringAt } from './json.ts';
import { type NodeConditionStatus, KubeletSimulator, type NodeRegistration } from './nodes.ts';
import { cniAgents } from './cni.ts';
import { parseLabelSelector } from './selectors.ts';
import { KubeApiError, type StatusReason, reasonForCode } from './status.ts';
import { ObjectStore, nameOf, namespaceOf } from './store.ts';
import { type KmsPlugin, SecretEncryptionAtRest, type StoredSecretKey } from './encryption-at-rest.ts';
import { StaleRewritingRegistry } from './stale-rewrite.ts';
import { ANONYMOUS_USER, type RequestUser, bootstrapTokenUser } from './bootstrap-tokens.ts';
import { escalationRefusal, refusalOf } from './authorizer.ts';
import type { RbacObjects } from './rbac.ts';
import { type AdmissionOutcome, loadPodSecurityConfiguration } from './pod-security.ts';

export interface SandboxClusterOptions {
  name: string;
  /** `1.33`, `1.33.2` or `v1.33.2`; a bare minor becomes patch 0. Defaults to Kiln's default version. */
  kubernetesVersion?: string;
  /** Defaults to a free port chosen by the OS. */
  port?: number;
  /** The clock behind every timestamp the cluster writes, for tests that reason about durations. */
  now?: () => Date;
  /**
   * Serve as kubeadm's API server does: https only, to clients with a certificate the cluster CA signed or a valid
   * bootstrap token (held to what kubeadm's RBAC gives it); without credentials, 401 unless `setAnonymousAuth(true)`.
   * Nothing answers until `serveTls` hands it its certificates, as nothing listens before `kubeadm init`. Without it
   * the server speaks plain http to anyone, for the sandbox's own tests.
   */
  secure?: boolean;
}

/** What `kubeadm init` leaves in /etc/kubernetes: the API server's serving certificate, the CA clients must chain to, and admin.conf's client certificate. */
export interface ApiServerTls {
  certificatePem: string;
  privateKeyPem: string;
  clientCaPem: string;
  admin: { certificatePem: string; privateKeyPem: string };
}

export interface KubeFaultRule {
  /** Which requests fail; all of them when omitted. */
  match?: (request: KubeRequest) => boolean;
  /** HTTP status of the injected failure; 500 by default. */
  code?: number;
  /** Status reason; derived from the code when omitted (503 -> ServiceUnavailable, 409 -> Conflict, ...). */
  reason?: StatusReason;
  message?: string;
  /** How many matching requests fail before the rule retires itself; 1 by default, Infinity for "until removed". */
  times?: number;
}

/** Which paginated lists an expired continue token fails. */
export interface ContinueExpiryRule {
  /** The plural resource, e.g. `secrets`; every resource when omitted. */
  resource?: string;
  /** How many continued lists fail; 1 by default. */
  times?: number;
}

export interface KubeFaultHandle {
  /** Requests this rule has failed so far. */
  readonly hits: number;
  remove(): void;
}

export interface SandboxClusterFaults {
  /**
   * While true the API server is unreachable: every request has its connection destroyed without a reply, so
   * client-node rejects with a fetch/socket error, never an ApiException (the request log still records it, with
   * status 0). Turning it on also drops idle connections and ends open watches. Turning it off serves again.
   */
  apiDown: boolean;
  /** Answers matching requests with a Status error instead of serving them, in the order rules were added. */
  failRequests(rule: KubeFaultRule): KubeFaultHandle;
  /**
   * Answers lists that resume from a `continue` token with 410 Expired, as when etcd has compacted the revision the
   * token points into; the client has to start the list over without the token.
   */
  expireContinueTokens(rule?: ContinueExpiryRule): KubeFaultHandle;
  /** Removes every rule and brings the API back up. */
  clear(): void;
}

export interface KubeRequestRecord extends KubeRequest {
  at: string;
  /** The HTTP status answered; 0 when the connection was dropped because the API was down. */
  status: number;
  /** Whether the request stored anything: false for reads, failures, dry runs and writes that changed nothing. */
  mutated: boolean;
  fault?: 'apiDown' | 'noApiServer' | 'injected';
  /** The `Warning` headers admission answered a write with. */
  warnings?: string[];
  /** What admission wrote on the request's audit event (the sandbox's request log is its audit log). */
  auditAnnotations?: Record<string, string>;
}

export interface KubeObjectFilter {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  labelSelector?: string;
}

/** Whether a resource type is one the filter's apiVersion and kind (either may be left out) name. */
function typeMatches(type: ResourceType, filter: Pick<KubeObjectFilter, 'apiVersion' | 'kind'>): boolean {
  return (filter.apiVersion === undefined || apiVersionOf(type) === filter.apiVersion) && (filter.kind === undefined || type.kind === filter.kind);
}

export interface SandboxCluster {
  readonly name: string;
  /** `https://127.0.0.1:PORT` when `secure`; otherwise `http://127.0.0.1:PORT`, to be used with `skipTLSVerify` (client-node refuses plain http otherwise). */
  readonly url: string;
  /** kubeadm init, for a `secure` cluster: from now on it serves TLS with these certificates and takes clients the CA signed. */
  serveTls(tls: ApiServerTls): void;
  /**
   * kube-apiserver's --anonymous-auth (its own default is true; a `secure` cluster starts with it off and kubeadm init
   * sets what the rendered flags say): requests without credentials act as system:anonymous, which a kubeadm cluster's
   * RBAC lets read only kube-public/cluster-info and the health and version paths.
   */
  setAnonymousAuth(enabled: boolean): void;
  /** The `gitVersion` /version answers with, e.g. `v1.33.0`. */
  readonly kubernetesVersion: string;
  /** The cluster-wide resourceVersion counter as it stands now. */
  readonly resourceVersion: string;
  readonly faults: SandboxClusterFaults;
  /** Every request served, oldest first (the last 10 000). */
  readonly requestLog: readonly KubeRequestRecord[];
  clearRequestLog(): void;
  /** Requests that stored something, optionally only those matching a predicate. */
  mutatingRequests(match?: (record: KubeRequestRecord) => boolean): KubeRequestRecord[];
  /** Changes what /version reports, as after a control-plane upgrade. */
  setKubernetesVersion(version: string): void;
  /**
   * How many API servers stand behind the cluster's load balancer. Once machines run the control plane the count
   * decides: with none left, every request has its connection dropped (as `apiDown`, recorded as `noApiServer`).
   */
  setApiServers(count: number): void;
  /** What a kubelet does when it joins. Returns the Node as stored. */
  registerNode(node: NodeRegistration): JsonObject;
  /** Sets the Ready condition; False and Unknown also add the node lifecycle controller's taints. */
  setNodeReady(name: string, status: NodeConditionStatus): JsonObject;
  /** Deletes the Node, as when its machine is gone. Returns whether it existed. */
  removeNode(name: string): boolean;
  /**
   * A write made inside the cluster (kubeadm on a machine, a controller) rather than over HTTP: creates or replaces
   * the object, by its apiVersion, kind, namespace and name. Returns it as stored.
   */
  writeObject(object: JsonObject, manager: string): JsonObject;
  /** Deletes an object from inside the cluster (a controller's cleanup). Returns whether it existed. */
  deleteObject(reference: { apiVersion: string; kind: string; namespace?: string; name: string }): boolean;
  /** Copies of stored objects, straight from the store (no HTTP, unaffected by faults). */
  objects(filter?: KubeObjectFilter): JsonObject[];
  /**
   * Calls `listener` after each stored change to an object of the matching resources, as a controller's informer hears
   * of it; returns the function that stops it.
   */
  onChange(filter: Pick<KubeObjectFilter, 'apiVersion' | 'kind'>, listener: () => void): () => void;
  /**
   * Stores Secrets encrypted as an API server started with this EncryptionConfiguration would: new writes under the
   * first provider, reads with any configured key, and a 500 for a Secret under a key no longer configured.
   * Undefined stores them in plain text again (identity only). A kms provider needs its plugin among `kmsPlugins`
   * (by endpoint), as kube-apiserver needs the plugin listening on its socket.
   */
  setEncryptionConfiguration(config: JsonObject | undefined, kmsPlugins?: ReadonlyMap<string, KmsPlugin>): void;
  /** Which provider and key each stored Secret is under, read from the stored prefix. */
  storedSecretKeys(): StoredSecretKey[];
  /**
   * What an API server (re)started with this AdmissionConfiguration (the parsed file named by
   * --admission-control-config-file at `path`, or undefined without one) admits: its PodSecurity defaults and exemptions
   * from then on. `readFile` reads a plugin configuration the file names by path. Throws, changing nothing, what would
   * stop kube-apiserver from starting.
   */
  setAdmissionConfiguration(config: unknown, path: string, readFile: (path: string) => string | undefined): void;
  /** A kubeconfig (YAML) whose only context points at this cluster: admin.conf once a `secure` cluster serves TLS. */
  kubeconfig(): string;
  /** The serving certificate the API server presents (PEM), once a `secure` cluster serves TLS. */
  servingCertificate(): string | undefined;
  close(): Promise<void>;
}

const REQUEST_LOG_LIMIT = 10_000;
/** kube-apiserver's message for a continue token whose revision was compacted. */
const CONTINUE_EXPIRED_MESSAGE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.';
const INITIAL_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export function normalizeKubernetesVersion(version: string): string {
  const parts = version.replace(/^v/, '').split('.');
  while (parts.length < 3) parts.push('0');
  return `v${parts.join('.')}`;
}

interface ActiveFault {
  rule: KubeFaultRule;
  hits: number;
  removed: boolean;
}

class KubeFaultInjector implements SandboxClusterFaults {
  private down = false;
  private readonly rules: ActiveFault[] = [];
  private readonly onDown: () => void;

  constructor(onDown: () => void) {
    this.onDown = onDown;
  }

  get apiDown(): boolean {
    return this.down;
  }

  set apiDown(value: boolean) {
    this.down = value;
    if (value) this.onDown();
  }

  failRequests(rule: KubeFaultRule): KubeFaultHandle {
    const active: ActiveFault = { rule, hits: 0, removed: false };
    this.rules.push(active);
    return {
      get hits() {
        return active.hits;
      },
      remove: () => {
        active.removed = true;
      },
    };
  }

  expireContinueTokens(rule: ContinueExpiryRule = {}): KubeFaultHandle {
    return this.failRequests({
      match: (request) => request.verb === 'list' && (request.query.continue ?? '') !== '' && (rule.resource === undefined || request.resource === rule.resource),
      code: 410,
      reason: 'Expired',
      message: CONTINUE_EXPIRED_MESSAGE,
      times: rule.times ?? 1,
    });
  }

  clear(): void {
    for (const active of this.rules) active.removed = true;
    this.rules.length = 0;
    this.down = false;
  }

  /** The error for this request, if a live rule claims it; claiming counts against the rule's budget. */
  take(request: KubeRequest): KubeApiError | undefined {
    for (const active of this.rules) {
      if (active.removed || active.hits >= (active.rule.times ?? 1)) continue;
      if (active.rule.match !== undefined && !active.rule.match(request)) continue;
      active.hits++;
      const code = active.rule.code ?? 500;
      return new KubeApiError(code, active.rule.reason ?? reasonForCode(code), active.rule.message ?? `injected fault for ${request.method} ${request.path}`);
    }
    return undefined;
  }
}

/**
 * The API load balancer's address: the sandbox resolves its DNS name (the API host) to it. Not 127.0.0.1, which on a
 * real control plane machine is that machine's own API server, reachable only from its host network. Linux routes
 * all of 127.0.0.0/8 to the loopback interface.
 */
export const LOAD_BALANCER_ADDRESS = '127.0.0.2';

/** Where a `secure` cluster's API server listens: the control plane machines' own address, the load balancer's target. */
export const API_SERVER_ADDRESS = '127.0.0.3';

/**
 * A client certificate's user: the subject's CN, its O values as groups, and system:authenticated (kubernetes/kubernetes
 * @v1.35.9 staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go CommonNameUserConversion and
 * authentication/group/authenticated_group_adder.go).
 */
export function certificateUser(certificate: X509Certificate): RequestUser {
  // One attribute a line; attributes of a multi-valued RDN share a line, joined by ' + ' (Go's pkix.Name reads them all).
  const attributes = certificate.subject.split('\n').flatMap((line) => line.split(' + ')).map((line) => {
    const at = line.indexOf('=');
    return { key: line.slice(0, at), value: line.slice(at + 1) };
  });
  const name = attributes.find((attribute) => attribute.key === 'CN')?.value ?? '';
  const groups = attributes.filter((attribute) => attribute.key === 'O').map((attribute) => attribute.value);
  return { name, groups: [...groups, 'system:authenticated'] };
}

/**
 * The ClusterRoleBinding `kubeadm init` creates for admin.conf's group (kubernetes/kubernetes@v1.35.9
 * cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go EnsureAdminClusterRoleBinding, constants.go
 * ClusterAdminsGroupAndClusterRoleBinding): `kubeadm:cluster-admins` bound to cluster-admin. Deleting it revokes
 * admin.conf, which is why kubeadm no longer puts admin.conf in system:masters.
 */
export const KUBEADM_CLUSTER_ADMINS = 'kubeadm:cluster-admins';

/** Starts an in-process Kubernetes API server for one sandbox cluster on a loopback address. */
export async function startSandboxCluster(options: SandboxClusterOptions): Promise<SandboxCluster> {
  const listenAddress = options.secure === true ? API_SERVER_ADDRESS : '127.0.0.1';
  const clock = options.now ?? (() => new Date());
  let version = normalizeKubernetesVersion(options.kubernetesVersion ?? DEFAULT_KUBERNETES_VERSION);
  const catalog = new ResourceCatalog();
  const atRest = new SecretEncryptionAtRest();
  const store = new ObjectStore(atRest);
  const registry = new StaleRewritingRegistry(catalog, store, clock);
  const sockets = new Set<Socket>();
  const requestLog: KubeRequestRecord[] = [];
  let address = '127.0.0.1:0';
  /** Undefined until machines report their API servers: the sandbox's own tests serve without machines. */
  let apiServers: number | undefined;

  const api = new KubeHttpApi({ catalog, store, registry, version: () => version, address: () => address });
  const faults = new KubeFaultInjector(() => {
    api.closeWatches();
    for (const socket of sockets) socket.destroy();
  });
  const namespaceType = catalog.find('', 'v1', 'namespaces');
  const nodeType = catalog.find('', 'v1', 'nodes');
  if (namespaceType === undefined || nodeType === undefined) throw new Error('the sandbox catalog lacks namespaces or nodes');
  for (const namespace of INITIAL_NAMESPACES) {
    registry.writeInternal(namespaceType, '', namespace, 'kube-apiserver', 'main', () => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }));
  }
  const kubelets = new KubeletSimulator(registry, nodeType, () => version);
  const daemonSetType = catalog.find('apps', 'v1', 'daemonsets');
  const configureCni = cniAgents({
    awaitingCni: () => kubelets.awaitingCni(),
    node: (name) => kubelets.find(name),
    daemonSet: (namespace, name) => (daemonSetType === undefined ? undefined : store.get(daemonSetType, namespace, name)),
    installCni: (name) => {
      kubelets.installCni(name);
    },
  });
  store.subscribe((event) => {
    if (event.resource === typeKey(nodeType) || (daemonSetType !== undefined && event.resource === typeKey(daemonSetType))) configureCni();
  });
  const typeOf = (apiVersion: string, kind: string): ResourceType => {
    const type = catalog.all().find((candidate) => apiVersionOf(candidate) === apiVersion && candidate.kind === kind);
    if (type === undefined) throw new Error(`the sandbox serves no ${apiVersion} ${kind}`);
    return type;
  };

  const record = (described: KubeRequest, status: number, mutated: boolean, fault?: KubeRequestRecord['fault'], admission?: AdmissionOutcome): void => {
    const entry: KubeRequestRecord = { ...described, at: registry.now(), status, mutated };
    if (fault !== undefined) entry.fault = fault;
    if (admission !== undefined && admission.warnings.length > 0) entry.warnings = admission.warnings;
    if (admission !== undefined && Object.keys(admission.auditAnnotations).length > 0) entry.auditAnnotations = admission.auditAnnotations;
    requestLog.push(entry);
    if (requestLog.length > REQUEST_LOG_LIMIT) requestLog.shift();
  };

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const described = describeRequest(request.method ?? 'GET', request.url ?? '/', request.headers['content-type']);
    let guard: WriteGuard | undefined;
    if (faults.apiDown || apiServers === 0) {
      record(described, 0, false, faults.apiDown ? 'apiDown' : 'noApiServer');
      request.socket.destroy();
      return;
    }
    if (options.secure === true) {
      const user = requestUser(request);
      // No authenticator took the request: 401, as with a bearer token that matched none.
      if (user === undefined) {
        request.resume();
        record(described, sendError(response, new KubeApiError(401, 'Unauthorized', 'Unauthorized')), false);
        return;
      }
      const refusal = refusalOf(user, described, rbacObjects());
      if (refusal !== undefined) {
        request.resume();
        record(described, sendError(response, new KubeApiError(403, 'Forbidden', refusal)), false);
        return;
      }
      guard = (stored) => escalationRefusal(user, described, stored, rbacObjects());
    }
    const injected = faults.take(described);
    if (injected !== undefined) {
      request.resume();
      record(described, sendError(response, injected), false, 'injected');
      return;
    }
    api.serve(described, request, response, guard).then(
      (served) => {
        record(described, served.status, served.mutated, undefined, served.admission);
      },
      (error: unknown) => {
        record(described, sendError(response, error), false);
      },
    );
  };

  // A secure server has no certificate until kubeadm init: every handshake fails before then.
  const secureServer = options.secure === true ? createHttpsServer({ requestCert: true, rejectUnauthorized: false }, handle) : undefined;
  const server: HttpServer | HttpsServer = secureServer ?? createServer(handle);
  let tls: ApiServerTls | undefined;
  let clientCa: X509Certificate | undefined;
  /**
   * The client certificate chains to the cluster CA and is valid now. Validity is checked against the sandbox's clock
   * (tests move it), not OpenSSL's, so the handshake only asks for the certificate and this checks it.
   */
  const authenticated = (socket: TLSSocket): X509Certificate | undefined => {
    const peer = socket.getPeerX509Certificate();
    if (peer === undefined || clientCa === undefined) return undefined;
    const now = clock().getTime();
    return peer.checkIssued(clientCa) && peer.verify(clientCa.publicKey) && Date.parse(peer.validFrom) <= now && now <= Date.parse(peer.validTo) ? peer : undefined;
  };
  const rbacType = (plural: string): ResourceType => {
    const type = catalog.find('rbac.authorization.k8s.io', 'v1', plural);
    if (type === undefined) throw new Error(`the sandbox catalog lacks ${plural}`);
    return type;
  };
  /** What the RBAC authorizer reads: the roles and bindings the cluster stores. */
  const rbacObjects = (): RbacObjects => ({
    roles: store.list(rbacType('roles')),
    clusterRoles: store.list(rbacType('clusterroles')),
    roleBindings: store.list(rbacType('rolebindings')),
    clusterRoleBindings: store.list(rbacType('clusterrolebindings')),
  });
  let anonymousAuth = false;
  const secretType = catalog.find('', 'v1', 'secrets');
  /** The token authenticator reads its Secrets from the API server's own cache; one it cannot decrypt matches nothing. */
  const secretNamed = (name: string): JsonObject | undefined => {
    try {
      return secretType === undefined ? undefined : store.get(secretType, 'kube-system', name);
    } catch {
      return undefined;
    }
  };
  /**
   * The authenticators kube-apiserver chains (staging/src/k8s.io/apiserver/pkg/authentication/request/union,
   * bearertoken, anonymous): a client certificate the CA signed, else a bearer token (a bootstrap token here; one that
   * matches nothing fails the request, anonymous or not), else system:anonymous when --anonymous-auth allows it.
   * A client certificate's user is its subject's CN and its groups the O values
   * (staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go CommonNameUserConversion), plus
   * system:authenticated (authentication/group/authenticated_group_adder.go), as every authenticated user.
   */
  const requestUser = (request: IncomingMessage): RequestUser | undefined => {
    if (request.socket instanceof TLSSocket) {
      const certificate = authenticated(request.socket);
      if (certificate !== undefined) return certificateUser(certificate);
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) return bootstrapTokenUser(bearer, secretNamed, clock());
    return anonymousAuth ? ANONYMOUS_USER : undefined;
  };
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, listenAddress, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : 0;
  address = `${listenAddress}:${port}`;
  const url = `${options.secure === true ? 'https' : 'http'}://${address}`;
  const base64 = (pem: string) => Buffer.from(pem).toString('base64');

  return {
    name: options.name,
    url,
    get kubernetesVersion() {
      return version;
    },
    get resourceVersion() {
      return String(store.resourceVersion);
    },
    faults,
    requestLog,
    clearRequestLog: () => {
      requestLog.length = 0;
    },
    mutatingRequests: (match) => requestLog.filter((entry) => entry.mutated && (match === undefined || match(entry))),
    setKubernetesVersion: (next) => {
      version = normalizeKubernetesVersion(next);
    },
    setApiServers: (count) => {
      const wasServing = apiServers !== 0;
      apiServers = count;
      if (count === 0 && wasServing) {
        api.closeWatches();
        for (const socket of sockets) socket.destroy();
      }
    },
    registerNode: (node) => kubelets.register(node),
    setNodeReady: (name, status) => kubelets.setReady(name, status),
    removeNode: (name) => kubelets.remove(name),
    setEncryptionConfiguration: (config, kmsPlugins) => {
      atRest.configure(config, kmsPlugins);
    },
    storedSecretKeys: () => store.storedSecretKeys(),
    setAdmissionConfiguration: (config, path, readFile) => {
      registry.podSecurity.configure(loadPodSecurityConfiguration(config, path, readFile));
    },
    writeObject: (object, manager) => {
      const type = typeOf(stringAt(object, 'apiVersion') ?? '', stringAt(object, 'kind') ?? '');
      const metadata = objectAt(object, 'metadata');
      const written = registry.writeInternal(type, stringAt(metadata, 'namespace') ?? '', stringAt(metadata, 'name') ?? '', manager, 'main', () => object);
      return written.object;
    },
    deleteObject: (reference) => registry.removeInternal(typeOf(reference.apiVersion, reference.kind), reference.namespace ?? '', reference.name),
    objects: (filter = {}) => {
      const labelMatches = parseLabelSelector(filter.labelSelector);
      const seen = new Set<string>();
      const found: JsonObject[] = [];
      for (const type of catalog.all()) {
        if (!typeMatches(type, filter)) continue;
        if (seen.has(typeKey(type))) continue;
        seen.add(typeKey(type));
        for (const object of store.list(type)) {
          if (filter.namespace !== undefined && namespaceOf(object) !== filter.namespace) continue;
          if (filter.name !== undefined && nameOf(object) !== filter.name) continue;
          if (!labelMatches(object)) continue;
          found.push({ ...object, apiVersion: apiVersionOf(type), kind: type.kind });
        }
      }
      return found;
    },
    onChange: (filter, listener) =>
      store.subscribe((event) => {
        if (catalog.all().some((type) => typeKey(type) === event.resource && typeMatches(type, filter))) listener();
      }),
    serveTls: (served) => {
      if (secureServer === undefined) throw new Error(`the sandbox cluster ${options.name} was not started secure`);
      secureServer.setSecureContext({ key: served.privateKeyPem, cert: served.certificatePem, ca: served.clientCaPem });
      clientCa = new X509Certificate(served.clientCaPem);
      if (tls === undefined) {
        registry.writeInternal(rbacType('clusterrolebindings'), '', KUBEADM_CLUSTER_ADMINS, 'kubeadm', 'main', () => ({
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: KUBEADM_CLUSTER_ADMINS },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: KUBEADM_CLUSTER_ADMINS }],
        }));
      }
      tls = served;
    },
    servingCertificate: () => tls?.certificatePem,
    setAnonymousAuth: (enabled) => {
      anonymousAuth = enabled;
    },
    kubeconfig: () => {
      if (options.secure === true && tls === undefined) throw new Error(`the sandbox cluster ${options.name} has no admin.conf before kubeadm init`);
      return toYaml({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: options.name, cluster: tls === undefined ? { server: url, 'insecure-skip-tls-verify': true } : { server: url, 'certificate-authority-data': base64(tls.clientCaPem) } }],
        users: [
          {
            name: `${options.name}-admin`,
            user: tls === undefined ? { token: 'sandbox' } : { 'client-certificate-data': base64(tls.admin.certificatePem), 'client-key-data': base64(tls.admin.privateKeyPem) },
          },
        ],
        contexts: [{ name: options.name, context: { cluster: options.name, user: `${options.name}-admin` } }],
        'current-context': options.name,
      });
    },
    close: async () => {
      api.closeWatches();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error === undefined) resolve();
          else reject(error);
        });
      });
    },
  };
}
