// The HTTP API: POST /api/<function> with a JSON body, the session's token
// as a bearer token once signed in.

export class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

// makeApi returns api(fn, body), which resolves with the answer's JSON.
// token() is the session's token ('' when signed out); expired() is told
// when the server no longer takes it.
export function makeApi(token, expired) {
  return async function api(fn, body) {
    const headers = { 'Content-Type': 'application/json' };
    const sent = token();
    if (sent) headers.Authorization = 'Bearer ' + sent;
    let res;
    try {
      res = await fetch('/api/' + fn, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch {
      throw new ApiError(0, 'The server cannot be reached.');
    }
    let data = {};
    try { data = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) {
      // Only while still signed in: a sign-in's own 401 is a wrong password.
      if (res.status === 401 && sent && token()) expired();
      throw new ApiError(res.status, data.error || res.statusText || 'request failed');
    }
    return data;
  };
}
