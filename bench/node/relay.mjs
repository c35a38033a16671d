// The bare Node relay: the same relay as bench/relays/relay.py on Node's `ws` (the stack of the
// original design), a `make bench` contender.
//
//     node bench/node/relay.mjs PORT
//
// Same subset of chatcore's protocol: auth with token "USER_ID:ROOM,ROOM" -> ready; send ->
// the message with the room's next seq to every connection in the room, then the ack; ping -> pong.
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
const rooms = new Map(); // room id -> Set of sockets
const seqs = new Map();
let ids = 0;

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 1 << 20 });

wss.on('connection', (ws) => {
  let userId = null;
  let joined = [];
  ws.on('message', (raw) => {
    const frame = JSON.parse(raw);
    if (userId === null) {
      const token = String(frame.token);
      const colon = token.indexOf(':');
      userId = colon < 0 ? token : token.slice(0, colon);
      joined = colon < 0 ? [] : token.slice(colon + 1).split(',').filter(Boolean);
      for (const room of joined) {
        if (!rooms.has(room)) rooms.set(room, new Set());
        rooms.get(room).add(ws);
      }
      ws.send(JSON.stringify({
        type: 'ready',
        user: { id: userId, username: userId, display_name: userId },
        session_id: String(++ids),
        rooms: joined.map((r) => ({ room_id: r, last_seq: seqs.get(r) || 0 })),
      }));
      return;
    }
    if (frame.type === 'send') {
      const members = rooms.get(frame.room_id);
      if (!members || !members.has(ws)) {
        ws.send(JSON.stringify({ type: 'error', ref: frame.ref, code: 'not_found',
          message: 'This room does not exist or is not visible to you.' }));
        return;
      }
      const seq = (seqs.get(frame.room_id) || 0) + 1;
      seqs.set(frame.room_id, seq);
      const message = {
        id: String(++ids), room_id: frame.room_id, seq, sender_id: userId, ref: frame.ref,
        kind: 'text', body: frame.body ?? '', ts: Date.now(), deleted: false,
      };
      const event = JSON.stringify({ type: 'message', message });
      for (const member of members) member.send(event);
      ws.send(JSON.stringify({ type: 'ack', ref: frame.ref, message }));
    } else if (frame.type === 'ping') {
      ws.send('{"type":"pong"}');
    }
  });
  ws.on('close', () => {
    for (const room of joined) rooms.get(room)?.delete(ws);
  });
});
