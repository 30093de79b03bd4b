// The websocket at /ws: the token is offered as the second
// Sec-WebSocket-Protocol, after "easychat". Every frame the client sends
// goes through one Conn.

const FT = { DATA: 0, PING: 1, ACK: 2, NOACK: 3, ERROR: 9 };
const PING_EVERY = 25000;
const PING_TIMEOUT = 10000;
const REQUEST_TIMEOUT = 20000;

// newId is a frame id: unique per client, and the same on every resend of
// one message so the server stores it once.
export function newId(prefix) {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return prefix + Date.now().toString(36) + '-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// FrameError is the server's error frame answering a request.
export class FrameError extends Error {
  constructor(msg) { super(msg); this.frame = true; }
}

// Conn is one logical connection: it reconnects with exponential backoff
// (0.5 s doubling to 15 s, ±25 % jitter) until stopped, matches answers to
// requests by frame id, and notices a dead socket with pings. h has
// onState(state), onOpen(), onRetry(attempt, wasOpen) and onPush(frame).
export class Conn {
  constructor(h) {
    this.h = h;
    this.ws = null;
    this.token = '';
    this.pending = new Map();
    this.attempt = 0;
    this.timer = 0;
    this.pingTimer = 0;
    this.pongTimer = 0;
    this.stopped = true;
    this.state = 'offline';
    this.nextAt = 0;
  }

  isOpen() { return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.state === 'online'; }

  start(token) {
    this.token = token;
    this.stopped = false;
    this.attempt = 0;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.closed();
    if (ws) ws.close(1000, 'logout');
    this.setState('offline');
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.open();
  }

  setState(s) {
    this.state = s;
    this.h.onState(s);
  }

  open() {
    clearTimeout(this.timer);
    this.setState('connecting');
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    let ws;
    try {
      ws = new WebSocket(url, ['easychat', this.token]);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      opened = true;
      this.attempt = 0;
      this.setState('online');
      this.schedulePing();
      this.h.onOpen();
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      this.alive();
      this.onFrame(e.data);
    };
    ws.onclose = () => {
      if (ws !== this.ws) return;
      this.closed();
      this.setState('offline');
      if (!this.stopped) this.retry(opened);
    };
  }

  // closed forgets the socket and fails what waited for it.
  closed() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) { ws.onopen = ws.onmessage = ws.onclose = null; }
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('connection lost'));
    }
    this.pending.clear();
  }

  retry(wasOpen) {
    const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt++;
    this.nextAt = Date.now() + delay;
    this.timer = setTimeout(() => this.open(), delay);
    this.h.onRetry(this.attempt, wasOpen);
  }

  // drop treats the socket as dead now (no answer to a ping).
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.closed();
    try { ws.close(); } catch { /* already closing */ }
    this.setState('offline');
    if (!this.stopped) this.retry(true);
  }

  schedulePing() {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (!this.isOpen()) return;
      this.ws.send(JSON.stringify({ frameType: FT.PING, id: newId('p') }));
      this.pongTimer = setTimeout(() => this.drop(), PING_TIMEOUT);
    }, PING_EVERY);
  }

  alive() {
    clearTimeout(this.pongTimer);
    this.schedulePing();
  }

  send(f) {
    if (!this.isOpen()) return false;
    this.ws.send(JSON.stringify(f));
    return true;
  }

  // request sends a data frame and resolves with the answer's data: the
  // ack (ack modes only/rigor) or a data frame with the same id (mode
  // none, and user.online). An error frame rejects with FrameError.
  request(method, data, id, timeout) {
    id = id || newId('r');
    return new Promise((resolve, reject) => {
      if (!this.isOpen()) {
        reject(new Error('offline'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('timeout'));
      }, timeout || REQUEST_TIMEOUT);
      this.pending.set(id, { method, resolve, reject, timer });
      this.ws.send(JSON.stringify({ frameType: FT.DATA, id, method, data }));
    });
  }

  onFrame(text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    const p = f.id ? this.pending.get(f.id) : null;
    const settle = (fn) => {
      this.pending.delete(f.id);
      clearTimeout(p.timer);
      fn();
    };
    switch (f.frameType) {
      case FT.PING:
        return;
      case FT.ACK:
        // Echo acks: in the gateway's "rigor" mode the ack is resent
        // until echoed; other modes ignore the echo.
        this.send({ frameType: FT.ACK, id: f.id });
        if (p) settle(() => p.resolve(f.data || {}));
        return;
      case FT.ERROR:
        if (p) settle(() => p.reject(new FrameError(f.errMsg || 'error')));
        else console.warn('server error frame', f);
        return;
      default:
        if (p && f.method === p.method) {
          settle(() => p.resolve(f.data || {}));
          return;
        }
        this.h.onPush(f);
    }
  }
}
