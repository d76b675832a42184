/**
 * Ports for the local runtime's services, fixed before any of them starts (every handler must
 * find every service) without the race of "probe a free port, close it, listen later": between
 * the close and the listen another process (a second runtime, a test worker, dynalite's own
 * listen(0)) could take the port, and the service failed with EADDRINUSE.
 *
 * A reservation keeps its port bound with SO_REUSEPORT until the service listens on it with the
 * same option (`listenOn`), so nobody else can take it in between; only then is the reservation
 * closed. Where the platform has no SO_REUSEPORT for Node, the reservation is closed right
 * before the service listens (the old, small window).
 */
import net from 'node:net';

interface Reservation {
  server: net.Server;
  shared: boolean;
}

const reserved = new Map<number, Reservation>();

function bind(shared: boolean): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', reusePort: shared }, () => resolve(server));
  });
}

/** A port on 127.0.0.1 held for this process until `listenOn` (or `releasePort`) uses it. */
export async function reservePort(): Promise<number> {
  let shared = true;
  let server: net.Server;
  try {
    server = await bind(true);
  } catch {
    shared = false;
    server = await bind(false);
  }
  // A reservation never accepts anyone: it is only there to hold the port, and never keeps the
  // process alive (a runtime that failed to start leaves nothing running).
  server.on('connection', (socket) => socket.destroy());
  server.unref();
  const { port } = server.address() as net.AddressInfo;
  reserved.set(port, { server, shared });
  return port;
}

/** Lets go of a reservation that will not be used (e.g. a simulator that is not started). */
export async function releasePort(port: number): Promise<void> {
  const r = reserved.get(port);
  if (!r) return;
  reserved.delete(port);
  await new Promise<void>((resolve) => r.server.close(() => resolve()));
}

/**
 * `server.listen(port, host)`, taking over a reservation of that port when there is one;
 * port 0 (or an unreserved port) listens as usual. Resolves once listening.
 */
export async function listenOn(server: net.Server, port: number, host = '127.0.0.1'): Promise<void> {
  const r = port === 0 ? undefined : reserved.get(port);
  if (r && !r.shared) await releasePort(port);
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => reject(err);
    server.once('error', fail);
    server.listen({ port, host, reusePort: r?.shared ?? false }, () => {
      server.off('error', fail);
      resolve();
    });
  });
  if (r?.shared) await releasePort(port);
}
