// A stand-in server on a free loopback port, whose close() also ends the
// keep-alive connections still open (the gateway's agent keeps them: without
// this, server.close() would wait for them and hold the test up).
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export async function listenLoopback(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
