// What this browser keeps for a user across reloads: the session, the
// messages not acked yet, and receipts seen (readers' positions).

const SESSION_KEY = 'easychat.session';
const outboxKey = (me) => 'easychat.outbox.' + me;
const readsKey = (me) => 'easychat.reads.' + me;

function load(key, def) {
  try {
    const v = localStorage.getItem(key);
    return v ? JSON.parse(v) : def;
  } catch {
    return def;
  }
}

function save(key, v) {
  try { localStorage.setItem(key, JSON.stringify(v)); } catch { /* full or disabled */ }
}

export const loadSession = () => load(SESSION_KEY, null);
export const saveSession = (s) => save(SESSION_KEY, s);
export const loadOutbox = (me) => load(outboxKey(me), []);
export const saveOutbox = (me, items) => save(outboxKey(me), items);
export const loadReads = (me) => load(readsKey(me), {});
export const saveReads = (me, reads) => save(readsKey(me), reads);

// forget drops everything of a user on this browser (a shared computer):
// the token, receipts seen, and messages never sent. me is '' when no one
// is signed in.
export function forget(me) {
  try {
    if (me) {
      localStorage.removeItem(outboxKey(me));
      localStorage.removeItem(readsKey(me));
    }
    localStorage.removeItem(SESSION_KEY);
  } catch { /* disabled */ }
}
