// Group dialogs: create a group, add members to the open one, leave it.
import { $, ID_RE, parseIds } from './dom.js';

// bindGroups binds the dialogs and the Leave button. The actions call the
// server and update the store: create(name, members) resolves with the new
// group's id, add(members) and leave(id) when done; onOpen(id) shows a
// conversation.
export function bindGroups(store, { create, add, leave, onOpen }) {
  const gd = $('group-dialog');
  const ad = $('add-dialog');
  const show = (d) => {
    d.querySelector('form').reset();
    d.querySelector('.form-error').textContent = '';
    d.showModal();
  };
  $('new-group').addEventListener('click', () => show(gd));
  $('add-members').addEventListener('click', () => show(ad));
  for (const d of [gd, ad]) {
    d.querySelector('[value=cancel]').addEventListener('click', () => d.close());
  }

  $('group-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const err = f.querySelector('.form-error');
    const name = f.name.value.trim();
    const members = parseIds(f.members.value).filter((u) => u !== store.me);
    if (!name) { err.textContent = 'Give the group a name.'; return; }
    const bad = members.find((u) => !ID_RE.test(u));
    if (bad) { err.textContent = `“${bad}” is not a user id.`; return; }
    try {
      const id = await create(name, members);
      gd.close();
      onOpen(id);
    } catch (ex) {
      err.textContent = ex.message;
    }
  });

  $('add-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const err = f.querySelector('.form-error');
    const members = parseIds(f.members.value);
    const bad = members.find((u) => !ID_RE.test(u));
    if (!members.length || bad) { err.textContent = bad ? `“${bad}” is not a user id.` : 'Enter at least one user id.'; return; }
    try {
      await add(members);
      ad.close();
    } catch (ex) {
      err.textContent = ex.message;
    }
  });

  $('leave-group').addEventListener('click', async () => {
    const id = store.openId;
    const conv = store.convs.get(id);
    if (!conv || !confirm(`Leave ${store.title(conv)}?`)) return;
    try {
      await leave(id);
    } catch (ex) {
      alert(ex.message);
    }
  });
}
