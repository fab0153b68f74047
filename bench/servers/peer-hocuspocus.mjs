// Hocuspocus, in memory with its default settings, on the loopback port given as argument.
// Started as its own process by fanout.mjs.
import { Server } from '@hocuspocus/server';

const port = Number(process.argv[2]);
const server = new Server({ port, address: '127.0.0.1', quiet: true, stopOnSignals: true });
await server.listen();
console.log('ready');
