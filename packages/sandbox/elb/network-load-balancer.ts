import { BlockList, type Socket, connect, createServer } from 'node:net';
import { LOAD_BALANCER_ADDRESS } from '../kube/index.ts';

export interface NetworkLoadBalancerOptions {
  /** Where its TCP listener forwards: the target's address on this machine (the API server's). */
  target: { host: string; port: number };
  /**
   * The public address a connection from this machine arrives from. Every client of a sandbox load balancer runs on
   * the machine the sandbox runs on (Kiln's functions in local mode, and whoever uses a kubeconfig there), so they all
   * share one address, as programs behind one NAT gateway do.
   */
  clientAddress: string;
}

export interface RefusedConnection {
  at: string;
  clientAddress: string;
}

/** An internet-facing Network Load Balancer with one TCP listener, filtered by its security groups. */
export interface SandboxNetworkLoadBalancer {
  /** The listener's port on LOAD_BALANCER_ADDRESS. */
  readonly port: number;
  /**
   * The IPv4 ranges its security groups admit on the listener's port, as the stack last declared them
   * (`listenerSources`). Until the first call it admits no one, as a load balancer whose rules do not exist yet.
   */
  admit(cidrs: readonly string[]): void;
  /** Whether a client at `address` may connect now. */
  admits(address: string): boolean;
  /** Connections its security groups refused, oldest first. */
  readonly refused: readonly RefusedConnection[];
  close(): Promise<void>;
}

/**
 * A TCP listener that forwards each connection it admits to the target, bytes unchanged (TLS ends at the API
 * server, as behind a real NLB's TCP listener). Its security groups are checked once per connection, when it
 * opens: security groups track connections, and changing a rule does not interrupt a tracked one
 * (docs.aws.amazon.com/AWSEC2/latest/UserGuide/security-group-connection-tracking.html). A refused client's SYN is
 * dropped by AWS and its connect times out; here its connection is dropped at once, as the sandbox's `apiDown` does,
 * so a test sees the same connection error without waiting out the timeout. Either way no HTTP answer ever comes.
 */
export async function startNetworkLoadBalancer(options: NetworkLoadBalancerOptions): Promise<SandboxNetworkLoadBalancer> {
  let allowed = new BlockList();
  const refused: RefusedConnection[] = [];
  const open = new Set<Socket>();
  const admits = (address: string) => allowed.check(address, 'ipv4');

  const server = createServer((client) => {
    if (!admits(options.clientAddress)) {
      refused.push({ at: new Date().toISOString(), clientAddress: options.clientAddress });
      client.destroy();
      return;
    }
    const upstream = connect(options.target.port, options.target.host);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    }
    // Either side ending or failing ends the other: the target dropping a connection reaches the client as a reset.
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOAD_BALANCER_ADDRESS, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const listenerPort = typeof bound === 'object' && bound !== null ? bound.port : 0;

  return {
    port: listenerPort,
    admit: (cidrs) => {
      const next = new BlockList();
      for (const cidr of cidrs) {
        const [network = '', prefix = '32'] = cidr.split('/');
        next.addSubnet(network, Number(prefix), 'ipv4');
      }
      allowed = next;
    },
    admits,
    refused,
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
