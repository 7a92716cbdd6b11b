import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that can cut every connection through it at once: what a
 * failover, a NAT gateway dropping state or a network partition does to the backup's sessions
 * (its own snapshot session and pg_dump's). It can also accept connections and never forward
 * them (a black-holed database), to stop a task while it connects.
 */
export interface TcpFaultProxy {
  port: number;
  /** Destroys every connection through the proxy, on both sides. */
  cutConnections(): void;
  /** New connections are accepted and left silent until `heal`. */
  blackHole(): void;
  heal(): void;
  connectionCount(): number;
  stop(): Promise<void>;
}

export async function startTcpFaultProxy(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<TcpFaultProxy> {
  const pairs = new Set<[Socket, Socket | undefined]>();
  let blackHoled = false;
  const server: Server = createServer((client) => {
    const pair: [Socket, Socket | undefined] = [client, undefined];
    pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair[1]?.destroy();
      pairs.delete(pair);
    });
    if (blackHoled) return;
    const upstream = connect(upstreamPort, upstreamHost);
    pair[1] = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cutAll = (): void => {
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream?.destroy();
    }
  };
  return {
    port: (server.address() as AddressInfo).port,
    cutConnections: cutAll,
    blackHole: () => {
      blackHoled = true;
    },
    heal: () => {
      blackHoled = false;
    },
    connectionCount: () => pairs.size,
    stop: async () => {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
