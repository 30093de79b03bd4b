// The top bar: the connection's state (click: reconnect now), who is
// signed in, and log out.
import { $ } from './dom.js';

export function createTopbar(conn, { onLogout }) {
  $('logout').addEventListener('click', onLogout);
  $('conn').addEventListener('click', () => conn.reconnectNow());

  function renderConn() {
    $('conn').dataset.state = conn.state;
    let text = 'Connecting…';
    if (conn.state === 'online') text = 'Online';
    if (conn.state === 'offline') {
      const s = Math.max(0, Math.ceil((conn.nextAt - Date.now()) / 1000));
      text = conn.stopped ? 'Offline' : (s > 0 ? `Offline · retrying in ${s}s` : 'Offline · retrying');
    }
    $('conn-text').textContent = text;
  }
  // The countdown to the next attempt.
  setInterval(() => { if (conn.state === 'offline') renderConn(); }, 1000);

  function showMe(userId, nickname) {
    $('me').textContent = nickname && nickname !== userId ? `${nickname} (${userId})` : userId;
  }

  return { renderConn, showMe };
}
