/**
 * Local runtime ports: a reserved port cannot be taken by anyone else before its service
 * listens on it (the EADDRINUSE race of probe-close-listen), and the service does get it.
 */
import net from 'node:net';
import { listenOn, releasePort, reservePort } from '../../lib/local/ports.ts';

const listen = (port: number): Promise<net.Server> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
const close = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

test('a reserved port is held until its service listens on it, then only the service has it', async () => {
  const port = await reservePort();
  await expect(listen(port)).rejects.toMatchObject({ code: 'EADDRINUSE' }); // an outsider
  const service = net.createServer((socket) => socket.end('service'));
  await listenOn(service, port);
  expect((service.address() as net.AddressInfo).port).toBe(port);
  const answer = await new Promise<string>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    c.on('data', (d) => (got += String(d)));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
  expect(answer).toBe('service'); // the reservation is gone: every connection reaches the service
  await close(service);
});

test('six reservations at once are six different ports; a released one is free again', async () => {
  const ports = await Promise.all(Array.from({ length: 6 }, () => reservePort()));
  expect(new Set(ports).size).toBe(6);
  for (const p of ports) await releasePort(p);
  const s = await listen(ports[0]!);
  await close(s);
});

test('port 0 and unreserved ports listen as usual', async () => {
  const s = net.createServer();
  await listenOn(s, 0);
  expect((s.address() as net.AddressInfo).port).toBeGreaterThan(0);
  await close(s);
});
