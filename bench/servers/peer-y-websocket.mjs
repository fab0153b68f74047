// y-websocket-server (@y/websocket-server), in memory, on the loopback port given as argument:
// the server of its README (an HTTP server whose upgrades go to setupWSConnection). Started as
// its own process by fanout.mjs.
import { createServer } from 'node:http';

import { setupWSConnection } from '@y/websocket-server/utils';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ noServer: true });
wss.on('connection', setupWSConnection);
const server = createServer((_request, response) => response.writeHead(200).end('ok'));
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
});
server.listen(port, '127.0.0.1', () => console.log('ready'));
