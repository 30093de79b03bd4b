// Browser end-to-end tests of the web client: real Chromium pages against the
// whole system (dev stack: embedded Kafka, FerretDB and Redis, the functions
// under the local FaaS runtime, the gateway serving the page). Assertions
// are on what a person sees in the DOM. Screenshots of key moments go to
// $SCREENSHOT_DIR (relative to the repo root; default artifacts/screenshots).
//
// Run: make test-browser, or cd e2e/browser && npm ci && node --test
// Against a system that is already up: EASYCHAT_BASE_URL=http://127.0.0.1:10090 node --test
// KEEP_STACK_STATE=1 keeps the started stack's state directory and log.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const zlib = require('node:zlib');
const { startStack } = require('./lib/stack');
const { launch, ChatUser, uniq, ids, registerAPI, singleConv, eventually, screenshotDir, PHONE } = require('./lib/browser');

let stack;
let browser;
let baseURL;
const users = [];

before(async () => {
  if (process.env.EASYCHAT_BASE_URL) {
    baseURL = process.env.EASYCHAT_BASE_URL.replace(/\/$/, '');
  } else {
    stack = await startStack();
    baseURL = stack.baseURL;
    ids.plain = true; // a fresh stack: user ids need no suffix
  }
  browser = await launch();
  console.log(`# stack ${baseURL}, screenshots in ${screenshotDir}`);
}, { timeout: 10 * 60 * 1000 });

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (stack) await stack.stop();
}, { timeout: 60 * 1000 });

async function user(name, opts) {
  const u = await new ChatUser(browser, baseURL, uniq(name), opts).start();
  users.push(u);
  return u;
}

async function closeAll(...us) {
  for (const u of us) {
    assert.deepEqual(u.errors, [], `${u.id}: errors in the page`);
    await u.close();
  }
}

test('two users chat both ways; read ticks change when the other side opens the chat', { timeout: 180000 }, async () => {
  const ann = await user('ann');
  const ben = await user('ben');
  await ann.shot('01-login');
  await ann.register();
  await ben.register();
  const conv = singleConv(ann.id, ben.id);

  await ann.startChat(ben.id);
  await ann.send('Hi Ben! Did the new build go out?');
  await ann.waitOwn('Hi Ben! Did the new build go out?', 'sent');

  // Ben has not opened the chat: it shows in his list, unread; his page has
  // the message, so Ann's goes from "sent" to "delivered", not "read".
  await ben.row(conv).locator('.badge', { hasText: '1' }).waitFor();
  await ben.shot('02-list-unread');
  await ann.waitOwn('Hi Ben! Did the new build go out?', 'delivered');
  assert.equal(await ann.msg('Hi Ben! Did the new build go out?').locator('.ticks').textContent(), '✓✓');
  assert.match(await ben.row(conv).locator('.conv-last').textContent(), /new build/);

  // Ben opens it: he sees the message, his badge goes, Ann sees ✓✓.
  await ben.openConv(conv);
  await ben.waitMsg('Hi Ben! Did the new build go out?');
  await ann.waitOwn('Hi Ben! Did the new build go out?', 'read');
  assert.equal(await ben.row(conv).locator('.badge').isVisible(), false);

  // And back: Ann has the chat open, so Ben's replies are read at once.
  await ben.send('Yes, 20 minutes ago. All green so far.');
  await ann.waitMsg('Yes, 20 minutes ago. All green so far.');
  await ben.waitOwn('Yes, 20 minutes ago. All green so far.', 'read');
  await ann.send('Great, thanks! I will tell the team.');
  await ben.send('Ping me if anything looks off.');
  await ann.waitMsg('Ping me if anything looks off.');
  await ben.waitMsg('Great, thanks! I will tell the team.');

  // Presence: each sees the other online.
  await ann.page.locator('#chat-sub', { hasText: 'online' }).waitFor();
  await ann.row(conv).locator('.dot[data-online="true"]').waitFor();

  // Both see the same conversation, in the same order, each message once.
  const want = ['Hi Ben! Did the new build go out?', 'Yes, 20 minutes ago. All green so far.',
    'Great, thanks! I will tell the team.', 'Ping me if anything looks off.'];
  await eventually(async () => assert.deepEqual(await ann.texts(), want));
  await eventually(async () => assert.deepEqual(await ben.texts(), want));
  await ann.waitOwn('Great, thanks! I will tell the team.', 'read');
  await ben.waitOwn('Ping me if anything looks off.', 'read');
  await ann.shot('03-chat-desktop');

  // The same account at phone width: one column, list then chat.
  const phone = new ChatUser(browser, baseURL, ben.id, { viewport: PHONE, scale: 2 });
  await phone.start();
  users.push(phone);
  await phone.login();
  await phone.row(conv).waitFor();
  await phone.shot('04-phone-list');
  await phone.openConv(conv);
  await eventually(async () => assert.deepEqual(await phone.texts(), want));
  // A new device has no receipts of its own: the read ticks come from the
  // server's read position of the peer.
  await phone.waitOwn('Ping me if anything looks off.', 'read');
  // What Ben writes on his laptop shows on his phone at once, as his own.
  await ben.send('Writing from the laptop now.');
  await phone.page.locator('#msg-list .msg.own .text', { hasText: 'Writing from the laptop now.' }).waitFor();
  await ann.waitMsg('Writing from the laptop now.');
  await eventually(async () => assert.equal((await ben.texts()).filter((t) => t === 'Writing from the laptop now.').length, 1));
  assert.equal(await phone.page.locator('.sidebar').isVisible(), false, 'one column: the list is hidden in a chat');
  await phone.shot('05-phone-chat');
  await phone.page.click('#back');
  await phone.page.locator('.sidebar').waitFor();

  // Log out returns to the sign-in form and forgets the token.
  await phone.page.click('#logout');
  await phone.page.locator('#login').waitFor();
  assert.equal(await phone.page.evaluate(() => localStorage.getItem('easychat.session')), null);
  await closeAll(ann, ben, phone);
});

test('messages sent while a user is away arrive once and in order, after a reload and after a reconnect', { timeout: 240000 }, async () => {
  const dora = await user('dora');
  const eli = await user('eli');
  // Eli's sockets pass through a switch the test can open, to cut his
  // network without closing the page.
  let netUp = true;
  const sockets = new Set();
  await eli.context.routeWebSocket(/\/ws$/, async (ws) => {
    if (!netUp) {
      await ws.close({ code: 4000, reason: 'test: network down' });
      return;
    }
    const server = ws.connectToServer();
    const pair = { ws, server };
    sockets.add(pair);
    ws.onClose((code, reason) => {
      sockets.delete(pair);
      server.close({ code, reason }).catch(() => {});
    });
  });
  await dora.register();
  await eli.page.reload(); // under the switch from here on
  await eli.register();
  const conv = singleConv(dora.id, eli.id);

  await dora.startChat(eli.id);
  await dora.send('Before you left');
  await eli.row(conv).waitFor();
  await eli.openConv(conv);
  await eli.waitMsg('Before you left');
  await dora.waitOwn('Before you left', 'read'); // Eli's client told the server

  // 1. Eli closes the page; Dora sends five; Eli comes back in a new page,
  //    logged in by the stored token.
  await eli.page.close();
  const away = [1, 2, 3, 4, 5].map((i) => `While you were away ${i}`);
  for (const t of away) await dora.send(t);
  for (const t of away) await dora.waitOwn(t, 'sent');
  assert.equal(await dora.status('While you were away 5'), 'sent');

  await eli.newPage();
  await eli.waitOnline();
  assert.equal(await eli.page.locator('#login').isVisible(), false, 'the stored token logs in');
  await eventually(async () => assert.equal(await eli.row(conv).locator('.badge').textContent(), '5'));
  // Back on a device: delivered, not read yet.
  for (const t of away) await dora.waitOwn(t, 'delivered');
  await dora.shot('06a-delivered');
  await eli.shot('06-back-unread');
  await eli.openConv(conv);
  await eventually(async () => assert.deepEqual(await eli.texts(), ['Before you left', ...away]));
  for (const t of away) await dora.waitOwn(t, 'read');

  // 2. Eli's network drops with the chat open; Dora sends more; the client
  //    shows it is offline, reconnects by itself and syncs what it missed.
  netUp = false;
  for (const { ws } of [...sockets]) await ws.close({ code: 4001, reason: 'test: network cut' });
  await eli.page.locator('#conn[data-state=offline]').waitFor();
  const during = [1, 2, 3].map((i) => `During the outage ${i}`);
  for (const t of during) await dora.send(t);
  for (const t of during) await dora.waitOwn(t, 'sent');
  await eli.page.locator('#conn[data-state=offline]').waitFor();
  await eli.shot('07-offline');
  assert.deepEqual(await eli.texts(), ['Before you left', ...away], 'nothing arrives while offline');
  netUp = true;
  await eli.page.locator('#conn[data-state=online]').waitFor({ timeout: 30000 });
  await eventually(async () => assert.deepEqual(await eli.texts(), ['Before you left', ...away, ...during]));
  for (const t of during) await dora.waitOwn(t, 'read');
  // Eli sends after the reconnect; Dora gets it once.
  await eli.send('Back online, got all of them');
  await dora.waitMsg('Back online, got all of them');
  await eventually(async () => assert.equal((await dora.texts()).filter((t) => t === 'Back online, got all of them').length, 1));
  await eli.shot('08-reconnected');
  // Every message has its seq (Eli's own one once the server stored it),
  // in order, without gaps.
  await eventually(async () => {
    const s = await eli.page.$$eval('#msg-list .msg', (els) => els.map((e) => Number(e.dataset.seq)));
    assert.deepEqual(s, s.map((_, i) => i + 1));
  });
  await closeAll(dora, eli);
});

test('a group of three: create, add members, everyone sees everyone', { timeout: 180000 }, async () => {
  const alice = await user('alice');
  const bob = await user('bob');
  const carol = await user('carol', { viewport: PHONE, scale: 2 });
  await alice.register();
  await bob.register();
  await carol.register();

  // Alice creates the group with Bob, then adds Carol.
  await alice.page.click('#new-group');
  await alice.page.fill('#group-form [name=name]', 'Weekend hike');
  await alice.page.fill('#group-form [name=members]', bob.id);
  await alice.page.click('#group-form button[type=submit]');
  await alice.page.locator('#chat-name', { hasText: 'Weekend hike' }).waitFor();
  await alice.page.locator('#chat-sub', { hasText: '2 members' }).waitFor();
  const gid = await alice.page.getAttribute('#chat-pane', 'data-conv');
  assert.match(gid, /^g-/);
  await alice.page.click('#add-members');
  await alice.page.fill('#add-form [name=members]', carol.id);
  await alice.page.click('#add-form button[type=submit]');
  await alice.page.locator('#chat-sub', { hasText: '3 members' }).waitFor();
  // Members show by their nicknames (each registered as, say, "Carol").
  await alice.page.locator('#chat-sub', { hasText: '3 members: Alice, Bob, Carol' }).waitFor();

  // The group shows for Bob and Carol at once, before anyone has written in it.
  for (const u of [bob, carol]) {
    await u.row(gid).locator('.conv-name', { hasText: 'Weekend hike' }).waitFor();
    await u.row(gid).locator('.conv-last', { hasText: 'No messages yet' }).waitFor();
  }
  await alice.send('Who is in for Saturday? Meeting at 8 at the station.');
  for (const u of [bob, carol]) {
    await u.row(gid).locator('.conv-name', { hasText: 'Weekend hike' }).waitFor();
    await u.openConv(gid);
    await u.waitMsg('Who is in for Saturday?');
  }
  await bob.send('Me! I will bring the map.');
  await carol.waitMsg('Me! I will bring the map.');
  await carol.send('Count me in. Is the weather looking OK?');
  const want = ['Who is in for Saturday? Meeting at 8 at the station.', 'Me! I will bring the map.',
    'Count me in. Is the weather looking OK?'];
  for (const u of [alice, bob, carol]) {
    await eventually(async () => assert.deepEqual(await u.texts(), want, u.id));
  }
  // Senders' names show on others' messages in a group.
  await eventually(async () => assert.equal(await alice.msg('Count me in').locator('.from').textContent(), 'Carol'));
  // Both others opened the group: Alice's message is read by two.
  await alice.waitOwn('Who is in for Saturday?', 'read');
  await eventually(async () => assert.match(await alice.msg('Who is in for Saturday?').locator('.ticks').textContent(), /2/));
  await alice.shot('09-group-desktop');
  await carol.shot('10-group-phone');

  // Carol leaves the group; Alice, who has it open, sees it at once. The
  // owner has no Leave button.
  assert.equal(await alice.page.locator('#leave-group').isVisible(), false);
  carol.page.once('dialog', (d) => d.accept());
  await carol.page.click('#leave-group');
  await carol.row(gid).waitFor({ state: 'detached' });
  await alice.page.locator('#chat-sub', { hasText: '2 members' }).waitFor();

  // Around it, single chats: Bob and Carol write to Alice directly.
  await bob.startChat(alice.id);
  await bob.send('Do you still have my headlamp?');
  await carol.startChat(alice.id);
  await carol.send('Running 5 minutes late on Saturday');
  await carol.send('Save me a seat on the train?');
  const withCarol = singleConv(alice.id, carol.id);
  const withBob = singleConv(alice.id, bob.id);
  await eventually(async () => assert.equal(await alice.row(withCarol).locator('.badge').textContent(), '2'));
  await alice.openConv(withBob);
  await alice.waitMsg('Do you still have my headlamp?');
  await bob.waitOwn('Do you still have my headlamp?', 'read');
  await alice.send('Yes, it is in my backpack. I will bring it on Saturday.');
  await bob.waitMsg('Yes, it is in my backpack.');
  await bob.send('Perfect, thanks!');
  await alice.waitMsg('Perfect, thanks!');
  await alice.waitOwn('Yes, it is in my backpack.', 'read');
  // Bob looks at the group instead: Alice's next message reaches his page
  // but is not read, so it shows delivered under the read ones.
  await bob.openConv(gid);
  await alice.send('See you at 8 at the station.');
  await alice.waitOwn('See you at 8 at the station.', 'delivered');
  assert.equal(await alice.status('Yes, it is in my backpack.'), 'read');
  await eventually(async () => assert.deepEqual(await alice.texts(), ['Do you still have my headlamp?',
    'Yes, it is in my backpack. I will bring it on Saturday.', 'Perfect, thanks!', 'See you at 8 at the station.']));
  await alice.page.locator('#chat-sub', { hasText: 'online' }).waitFor();
  await alice.page.mouse.move(0, 0);
  await alice.shot('11-desktop-overview');
  await closeAll(alice, bob, carol);
});

test('history loads page by page when scrolling back', { timeout: 180000 }, async () => {
  const finn = await user('finn');
  const gusID = uniq('gus');
  await registerAPI(baseURL, gusID); // Gus is not around while Finn writes
  await finn.register();
  await finn.startChat(gusID);
  const n = 70;
  const all = Array.from({ length: n }, (_, i) => `Note number ${i + 1}`);
  for (const t of all) await finn.send(t);
  await finn.waitOwn(`Note number ${n}`, 'sent');

  const gus = new ChatUser(browser, baseURL, gusID);
  await gus.start();
  users.push(gus);
  await gus.login();
  const conv = singleConv(finn.id, gusID);
  await eventually(async () => assert.equal(await gus.row(conv).locator('.badge').textContent(), String(n)));
  await gus.openConv(conv);
  // The newest page first, at the bottom.
  await eventually(async () => {
    const t = await gus.texts();
    assert.equal(t.at(-1), `Note number ${n}`);
    assert.ok(t.length < n, `only a page is loaded at first (${t.length})`);
  });
  // Scrolling to the top loads the older pages, keeping what was in view.
  for (let i = 0; i < 10 && (await gus.page.getAttribute('#older', 'data-state')) !== 'done'; i++) {
    const before = (await gus.texts()).length;
    await gus.page.$eval('#messages', (e) => { e.scrollTop = 0; });
    await eventually(async () => {
      const st = await gus.page.getAttribute('#older', 'data-state');
      assert.ok((await gus.texts()).length > before || st === 'done');
    });
    assert.ok(await gus.page.$eval('#messages', (e) => e.scrollTop) > 0 ||
      (await gus.page.getAttribute('#older', 'data-state')) === 'done', 'the view stays where it was');
  }
  await eventually(async () => assert.deepEqual(await gus.texts(), all));
  await gus.page.locator('#older', { hasText: 'Start of the conversation' }).waitFor();
  await closeAll(finn, gus);
});

// ---- messages that live: replies, reactions, edits, recalls, delete for
// me, typing and @mentions (docs of protocol 14)

// createGroup has owner create a group named name with members, from the
// page; it resolves to the group's id.
async function createGroup(owner, name, members) {
  await owner.page.click('#new-group');
  await owner.page.fill('#group-form [name=name]', name);
  await owner.page.fill('#group-form [name=members]', members.map((u) => u.id).join(' '));
  await owner.page.click('#group-form button[type=submit]');
  await owner.page.locator('#chat-name', { hasText: name }).waitFor();
  await owner.page.locator('#chat-sub', { hasText: `${members.length + 1} members` }).waitFor();
  return owner.page.getAttribute('#chat-pane', 'data-conv');
}

// networkSwitch routes u's websockets through a switch (before its page
// loads): net.cut() drops them and keeps new ones out until net.up = true.
async function networkSwitch(u) {
  const net = { up: true, sockets: new Set() };
  await u.context.routeWebSocket(/\/ws$/, async (ws) => {
    if (!net.up) {
      await ws.close({ code: 4000, reason: 'test: network down' });
      return;
    }
    const server = ws.connectToServer();
    const pair = { ws, server };
    net.sockets.add(pair);
    ws.onClose((code, reason) => {
      net.sockets.delete(pair);
      server.close({ code, reason }).catch(() => {});
    });
  });
  net.cut = async () => {
    net.up = false;
    for (const { ws } of [...net.sockets]) await ws.close({ code: 4001, reason: 'test: network cut' });
  };
  return net;
}

test('reply, reactions, edit, recall and delete for me, on a desktop and a phone; changes missed offline come with the sync', { timeout: 300000 }, async () => {
  const hana = await user('hana');
  const ivan = await user('ivan', { viewport: PHONE, scale: 2 });
  const net = await networkSwitch(ivan);
  await hana.register();
  await ivan.page.reload(); // under the switch from here on
  await ivan.register();
  const conv = singleConv(hana.id, ivan.id);

  await hana.startChat(ivan.id);
  await hana.send('Lunch at noon?');
  await ivan.openConv(conv);
  await ivan.waitMsg('Lunch at noon?');

  // Reply, on the phone: tap the message, then Reply. A bar above the
  // composer says what is answered, and can be cancelled.
  await ivan.act('Lunch at noon?', 'Reply');
  const bar = ivan.page.locator('#compose-bar');
  await bar.locator('.compose-title', { hasText: 'Reply to Hana' }).waitFor();
  assert.equal(await bar.locator('.compose-text').textContent(), 'Lunch at noon?');
  await ivan.page.getByRole('button', { name: 'Cancel reply' }).click();
  await bar.waitFor({ state: 'hidden' });
  await ivan.act('Lunch at noon?', 'Reply');
  await bar.waitFor();
  await ivan.page.fill('#composer textarea', 'Noon works. The usual place?');
  await ivan.shot('12-phone-reply-bar');
  await ivan.page.press('#composer textarea', 'Enter');
  await bar.waitFor({ state: 'hidden' });
  // Both see the quoted message above the reply; a plain message has none.
  for (const [u, who] of [[ivan, 'Hana'], [hana, 'You']]) {
    const q = u.msg('Noon works.').locator('.quote');
    await q.locator('.quote-from', { hasText: who }).waitFor();
    assert.equal(await q.locator('.quote-text').textContent(), 'Lunch at noon?', u.id);
    assert.equal(await u.msg('Lunch at noon?').locator('.quote').isVisible(), false, u.id);
  }

  // Reactions: Hana gives 👍 from the palette; both see the chip. Ivan adds
  // his by clicking it, then takes it back; the chip's title says who.
  await hana.react('Noon works.', '👍');
  for (const u of [hana, ivan]) await u.chip('Noon works.', '👍').filter({ hasText: '👍 1' }).waitFor();
  assert.equal(await hana.chip('Noon works.', '👍').getAttribute('aria-pressed'), 'true');
  assert.equal(await ivan.chip('Noon works.', '👍').getAttribute('aria-pressed'), 'false');
  await ivan.chip('Noon works.', '👍').click();
  await hana.chip('Noon works.', '👍').filter({ hasText: '👍 2' }).waitFor();
  assert.equal(await hana.chip('Noon works.', '👍').getAttribute('title'), 'you, Ivan');
  await ivan.react('Lunch at noon?', '❤️');
  await hana.chip('Lunch at noon?', '❤️').filter({ hasText: '❤️ 1' }).waitFor();
  await ivan.page.mouse.click(5, 400); // nothing open
  await ivan.shot('13-phone-reactions');
  await ivan.chip('Noon works.', '👍').click();
  await hana.chip('Noon works.', '👍').filter({ hasText: '👍 1' }).waitFor();
  assert.equal(await hana.chip('Noon works.', '👍').getAttribute('title'), 'you');

  // Edit: only one's own messages offer it; the text and "(edited)" show
  // on both sides, and so does the reply's quote of it.
  let li = await hana.showActions('Noon works.');
  assert.equal(await li.getByRole('button', { name: 'Reply', exact: true }).count(), 1);
  assert.equal(await li.getByRole('button', { name: 'Edit', exact: true }).count(), 0, "Ivan's message");
  assert.equal(await li.getByRole('button', { name: 'Recall', exact: true }).count(), 0, "Ivan's message");
  await hana.act('Lunch at noon?', 'Edit');
  await hana.page.locator('#compose-bar', { hasText: 'Edit message' }).waitFor();
  assert.equal(await hana.page.inputValue('#composer textarea'), 'Lunch at noon?');
  await hana.send('Lunch at 12:30?');
  for (const u of [hana, ivan]) {
    await u.msg('Lunch at 12:30?').locator('.edited', { hasText: '(edited)' }).waitFor();
    await u.msg('Noon works.').locator('.quote-text', { hasText: 'Lunch at 12:30?' }).waitFor();
    assert.equal(await u.msg('Lunch at noon?').count(), 0, u.id);
    assert.equal(await u.msg('Noon works.').locator('.edited').isVisible(), false, 'not edited');
  }
  await hana.page.mouse.move(0, 0);
  await hana.shot('14-desktop-reply-react-edit');

  // Recall (own, within 2 minutes): gone for both, "message recalled" in
  // its place and in the list.
  await ivan.send('Oops, wrong chat');
  await hana.waitMsg('Oops, wrong chat');
  ivan.page.once('dialog', (d) => d.accept());
  await ivan.act('Oops, wrong chat', 'Recall');
  for (const u of [ivan, hana]) {
    await eventually(async () => {
      const t = await u.texts();
      assert.ok(!t.includes('Oops, wrong chat'), `${u.id}: ${t}`);
      assert.equal(t.at(-1), 'message recalled', u.id);
    });
    await u.page.locator('#msg-list .msg.recalled .text', { hasText: 'message recalled' }).waitFor();
  }
  await hana.row(conv).locator('.conv-last', { hasText: 'message recalled' }).waitFor();
  await ivan.page.mouse.click(5, 400);
  await ivan.shot('15-phone-recalled');

  // A change the server refuses shows as a notice (here: a message it does
  // not have).
  await hana.page.evaluate((id) => {
    const c = window.easychat.state.convs.get(id);
    window.easychat.client.react(c, { msgId: '0'.repeat(32) }, '👍', false);
  }, conv);
  await hana.page.locator('#notice', { hasText: 'Could not react' }).waitFor();

  // Delete for me: gone from Hana's view, also after a reload; Ivan keeps it.
  hana.page.once('dialog', (d) => d.accept());
  await hana.act('Noon works.', 'Delete for me');
  await hana.msg('Noon works.').waitFor({ state: 'detached' });
  await hana.page.reload();
  await hana.waitOnline();
  await hana.page.locator(`#chat-pane[data-conv="${conv}"]`).waitFor();
  await eventually(async () => assert.deepEqual(await hana.texts(), ['Lunch at 12:30?', 'message recalled']));
  assert.equal(await ivan.msg('Noon works.').count(), 1);

  // Ivan's network drops; Hana edits and reacts meanwhile. Back online, his
  // client syncs the changes it missed without a reload.
  await net.cut();
  await ivan.page.locator('#conn[data-state=offline]').waitFor({ state: 'attached' }); // the top bar is hidden in a chat at phone width
  await hana.act('Lunch at 12:30?', 'Edit');
  await hana.send('Lunch at 1 then?');
  await hana.msg('Lunch at 1 then?').locator('.edited').waitFor();
  await hana.react('Lunch at 1 then?', '😂');
  await hana.chip('Lunch at 1 then?', '😂').waitFor();
  assert.equal(await ivan.msg('Lunch at 1 then?').count(), 0, 'nothing arrives while offline');
  net.up = true;
  await ivan.page.locator('#conn[data-state=online]').waitFor({ state: 'attached', timeout: 30000 });
  await ivan.msg('Lunch at 1 then?').locator('.chip', { hasText: '😂 1' }).waitFor();
  await ivan.chip('Lunch at 1 then?', '❤️').filter({ hasText: '❤️ 1' }).waitFor();
  await eventually(async () => assert.deepEqual(await ivan.texts(), ['Lunch at 1 then?', 'Noon works. The usual place?', 'message recalled']));
  await ivan.shot('16-phone-synced-changes');
  await closeAll(hana, ivan);
});

test('a group: typing indicator, @mentions and @all, owner recall, reactions from several', { timeout: 300000 }, async () => {
  const olga = await user('olga');
  const pia = await user('pia');
  const quinn = await user('quinn', { viewport: PHONE, scale: 2 });
  await olga.register();
  await pia.register();
  await quinn.register();
  const gid = await createGroup(olga, 'Climbing trip', [pia, quinn]);
  await pia.row(gid).waitFor();
  await pia.openConv(gid);
  await pia.page.locator('#chat-sub', { hasText: '3 members' }).waitFor();
  await quinn.row(gid).waitFor(); // Quinn stays on her list

  // Typing: Pia sees "Olga is typing…" under the header while Olga types;
  // it goes when her message comes, and soon after she leaves the composer.
  const typing = pia.page.locator('#typing');
  await olga.typeSlowly('Who has the rope?');
  await typing.filter({ hasText: 'Olga is typing…' }).waitFor();
  await pia.shot('17-typing');
  await olga.page.press('#composer textarea', 'Enter');
  await pia.waitMsg('Who has the rope?');
  await typing.waitFor({ state: 'hidden', timeout: 2000 });
  await olga.typeSlowly('And the');
  await typing.filter({ hasText: 'Olga is typing…' }).waitFor();
  const left = Date.now();
  await olga.page.click('#chat-name'); // out of the composer
  await typing.waitFor({ state: 'hidden', timeout: 3500 }); // before its 5 s would run out
  assert.ok(Date.now() - left < 3500);
  await olga.page.fill('#composer textarea', '');

  // @mentions: typing "@" offers the members (not "@all": Pia is not the
  // owner); picking one puts the name in the text.
  const choices = pia.page.locator('#mention-list .mention-choice');
  await pia.typeSlowly('@');
  await choices.filter({ hasText: 'Quinn' }).waitFor();
  assert.deepEqual(await choices.locator('.mention-name').allTextContents(), ['Olga', 'Quinn']);
  await pia.typeSlowly('qu');
  await eventually(async () => assert.deepEqual(await choices.locator('.mention-name').allTextContents(), ['Quinn']));
  await pia.shot('18-mention-choices');
  await choices.filter({ hasText: 'Quinn' }).click();
  assert.equal(await pia.page.inputValue('#composer textarea'), '@Quinn ');
  await pia.typeSlowly('can you bring the stove?');
  await pia.page.press('#composer textarea', 'Enter');
  const stove = '@Quinn can you bring the stove?';
  await olga.waitMsg(stove);
  // Quinn, on her list, sees she was mentioned; Olga's copy is not marked.
  await quinn.row(gid).locator('.mention-badge', { hasText: '@you' }).waitFor();
  // A long last message is cut short: the page stays as wide as the phone.
  assert.equal(await quinn.page.evaluate(() => document.documentElement.scrollWidth), PHONE.width);
  assert.equal(await olga.msg(stove).evaluate((e) => e.classList.contains('mentioned')), false);
  assert.equal(await pia.row(gid).locator('.mention-badge').isVisible(), false);
  await quinn.shot('19-phone-mentioned-list');
  // The server's list says so too (a reload).
  await quinn.page.reload();
  await quinn.waitOnline();
  await quinn.row(gid).locator('.mention-badge', { hasText: '@you' }).waitFor();
  await quinn.openConv(gid);
  await quinn.page.locator('#msg-list .msg.mentioned .text', { hasText: stove }).waitFor();
  await quinn.shot('20-phone-mentioned-message');
  await quinn.page.click('#back');
  await quinn.row(gid).locator('.mention-badge').waitFor({ state: 'hidden' });
  await quinn.openConv(gid);

  // @all, by the owner: everyone's copy is marked.
  await olga.typeSlowly('@al');
  await olga.page.locator('#mention-list .mention-choice', { hasText: '@all' }).click();
  await olga.typeSlowly('leaving at 8 sharp');
  await olga.page.press('#composer textarea', 'Enter');
  const all = '@all leaving at 8 sharp';
  for (const u of [pia, quinn]) await u.page.locator('#msg-list .msg.mentioned .text', { hasText: all }).waitFor();
  assert.equal(await olga.msg(all).evaluate((e) => e.classList.contains('mentioned')), false, 'not her own');

  // Reactions from two members; the chip's title names them.
  await pia.react(all, '👍');
  await quinn.react(all, '👍');
  await olga.chip(all, '👍').filter({ hasText: '👍 2' }).waitFor();
  assert.equal(await olga.chip(all, '👍').getAttribute('title'), 'Pia, Quinn');

  // Recall: Pia may recall her own message, not Olga's; Olga, the owner,
  // recalls Pia's.
  let li = await pia.showActions(all);
  assert.equal(await li.getByRole('button', { name: 'Recall', exact: true }).count(), 0, "the owner's message");
  li = await pia.showActions(stove);
  assert.equal(await li.getByRole('button', { name: 'Recall', exact: true }).count(), 1, 'her own');
  await pia.page.mouse.move(0, 0);
  olga.page.once('dialog', (d) => d.accept());
  await olga.act(stove, 'Recall');
  for (const u of [olga, pia, quinn]) {
    await eventually(async () => {
      const t = await u.texts();
      assert.deepEqual(t, ['Who has the rope?', 'message recalled', all], u.id);
    });
  }
  await olga.page.mouse.move(0, 0);
  await olga.shot('21-group-desktop');
  await quinn.page.mouse.click(5, 400);
  await quinn.shot('22-group-phone');
  await closeAll(olga, pia, quinn);
});

// ---- images and files (protocol 15)

// png is a w×h PNG (an RGB gradient), its bytes built here.
function png(w, h) {
  const table = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table.push(c >>> 0);
  }
  const crc32 = (b) => {
    let c = 0xffffffff;
    for (const x of b) c = table[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bits per channel
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1); // filter byte 0, then the pixels
    for (let x = 0; x < w; x++) {
      raw[row + 1 + x * 3] = Math.round((x * 255) / w);
      raw[row + 2 + x * 3] = Math.round((y * 255) / h);
      raw[row + 3 + x * 3] = 190;
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// padded is head and tail made exactly n bytes long with spaces between.
function padded(head, tail, n) {
  const h = Buffer.from(head, 'latin1');
  const t = Buffer.from(tail, 'latin1');
  return Buffer.concat([h, Buffer.alloc(n - h.length - t.length, 0x20), t]);
}

// attachFiles picks files through the paperclip's file chooser.
async function attachFiles(u, files) {
  const [chooser] = await Promise.all([
    u.page.waitForEvent('filechooser'),
    u.page.getByRole('button', { name: 'Attach a photo or file' }).click(),
  ]);
  await chooser.setFiles(files);
}

const imageMsg = (u) => u.page.locator('#msg-list .msg[data-kind=image]');
const fileMsg = (u, name) => u.page.locator('#msg-list .msg[data-kind=file]').filter({ has: u.page.locator('.file-name', { hasText: name }) });

// hoverActions shows the actions of message li by hovering it (again,
// should a drawing move it from under the pointer).
async function hoverActions(li) {
  await eventually(async () => {
    await li.locator('.bubble').hover();
    await li.locator('.tools').waitFor({ timeout: 2000 });
  });
  return li;
}

// loaded waits until img has its pixels, and says what they are.
async function loaded(img) {
  await eventually(async () => assert.ok(await img.evaluate((e) => e.complete && e.naturalWidth > 0), 'image loaded'));
  return img.evaluate((e) => ({ w: e.naturalWidth, h: e.naturalHeight, src: e.getAttribute('src') }));
}

test('images and files: attach, thumbnail and full view, file row with a Download link, reply, recall; desktop and phone', { timeout: 300000 }, async () => {
  const rosa = await user('rosa');
  const theo = await user('theo');
  await rosa.register();
  await theo.register();
  const conv = singleConv(rosa.id, theo.id);
  await rosa.startChat(theo.id);
  await rosa.send('Photos from the site visit, and the report');
  await theo.row(conv).waitFor();
  await theo.openConv(conv);
  await theo.waitMsg('Photos from the site visit');

  // The paperclip is beside the message box.
  await rosa.page.getByRole('button', { name: 'Attach a photo or file' }).waitFor();
  await rosa.page.fill('#composer textarea', '');
  await rosa.shot('23-composer-attach');

  // An image, chosen as a person does: a thumbnail at most 240×240, its
  // shape from the image's width and height, from a same-origin link.
  await attachFiles(rosa, [{ name: 'site.png', mimeType: 'image/png', buffer: png(320, 200) }]);
  await rosa.page.locator('#msg-list .msg.own[data-kind=image][data-status=read], #msg-list .msg.own[data-kind=image][data-status=delivered]').waitFor();
  const thumb = imageMsg(theo).locator('.thumb');
  await thumb.waitFor();
  const pic = await loaded(thumb.locator('img'));
  assert.deepEqual([pic.w, pic.h], [320, 200]);
  assert.match(pic.src, /^\/files\/[^?]+\?t=/, 'a same-origin file link');
  const box = await thumb.boundingBox();
  assert.deepEqual([Math.round(box.width), Math.round(box.height)], [240, 150]);
  await loaded(imageMsg(rosa).locator('.thumb img'));
  assert.equal(await theo.row(conv).locator('.conv-last').textContent(), '[image]');
  await rosa.row(conv).locator('.conv-last', { hasText: 'You: [image]' }).waitFor();

  // A PDF: a row with the name, its size and a Download link.
  const pdf = padded('%PDF-1.4\n%âãÏÓ\n1 0 obj << /Type /Catalog >> endobj\n', '\n%%EOF\n', 1234);
  await attachFiles(rosa, [{ name: 'report.pdf', mimeType: 'application/pdf', buffer: pdf }]);
  const row = fileMsg(theo, 'report.pdf');
  await row.waitFor();
  assert.equal(await row.locator('.file-size').textContent(), '1.2 KB');
  const link = row.getByRole('link', { name: 'Download report.pdf' });
  await eventually(async () => assert.match(await link.getAttribute('href') || '', /^\/files\//));
  assert.equal(await link.getAttribute('download'), 'report.pdf');
  await theo.row(conv).locator('.conv-last', { hasText: '[file] report.pdf' }).waitFor();
  // The link gives the bytes, as an attachment.
  const got = await theo.page.evaluate(async (href) => {
    const r = await fetch(href);
    return { status: r.status, cd: r.headers.get('content-disposition'), bytes: [...new Uint8Array(await r.arrayBuffer())] };
  }, await link.getAttribute('href'));
  assert.equal(got.status, 200);
  assert.match(got.cd, /^attachment;\s*filename="?report\.pdf"?/);
  assert.deepEqual(Buffer.from(got.bytes), pdf);
  // And a click downloads it under its name.
  const [dl] = await Promise.all([theo.page.waitForEvent('download'), link.click()]);
  assert.equal(dl.suggestedFilename(), 'report.pdf');
  assert.deepEqual(fs.readFileSync(await dl.path()), pdf);
  // A link about to expire is not used: a new one is asked for first.
  const old = await link.getAttribute('href');
  await theo.page.evaluate(() => { for (const l of window.easychat.files.links.links.values()) l.expires = Date.now(); });
  const [dl2] = await Promise.all([theo.page.waitForEvent('download'), link.click()]);
  assert.deepEqual(fs.readFileSync(await dl2.path()), pdf);
  assert.notEqual(await link.getAttribute('href'), old);

  // A file whose type the browser names in a way the server does not take
  // (a .docx is a zip): declared as bytes, the server says what they are,
  // and the upload is asked for again with that type.
  const docx = padded('PK\x03\x04\x14\x00\x06\x00', 'word/document.xml', 600);
  await attachFiles(rosa, [{ name: 'notes.docx', mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', buffer: docx }]);
  await fileMsg(theo, 'notes.docx').locator('.file-size', { hasText: '600 B' }).waitFor();
  await theo.row(conv).locator('.conv-last', { hasText: '[file] notes.docx' }).waitFor();

  // Too large: refused before any byte is sent; the reason shows above the
  // message box until dismissed (here the file is dropped on the chat).
  await rosa.page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(20 * 1024 * 1024 + 1)], 'backup.zip', { type: 'application/zip' }));
    const pane = document.getElementById('chat-pane');
    for (const type of ['dragover', 'drop']) pane.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  const failed = rosa.page.locator('#uploads .upload[data-state=failed]');
  await failed.filter({ hasText: 'backup.zip' }).filter({ hasText: 'file too large: at most 20 MB' }).waitFor();
  await rosa.shot('24-upload-refused');
  await rosa.page.getByRole('button', { name: 'Dismiss backup.zip' }).click();
  await failed.waitFor({ state: 'detached' });

  // Edit is not offered for a file; reply and react are, as for text.
  let li = await hoverActions(imageMsg(rosa).first());
  assert.equal(await li.getByRole('button', { name: 'Edit', exact: true }).isVisible(), false);
  assert.equal(await li.getByRole('button', { name: 'Recall', exact: true }).isVisible(), true);
  await rosa.page.mouse.move(0, 0);
  li = await hoverActions(fileMsg(theo, 'report.pdf'));
  await li.getByRole('button', { name: 'Reply', exact: true }).click();
  assert.equal(await theo.page.locator('#compose-bar .compose-text').textContent(), '[file] report.pdf');
  await theo.send('Thanks, reading it now');
  for (const u of [theo, rosa]) await u.msg('Thanks, reading it').locator('.quote-text', { hasText: '[file] report.pdf' }).waitFor();
  li = await hoverActions(imageMsg(theo).first());
  await li.getByRole('button', { name: 'React', exact: true }).click();
  await li.getByRole('button', { name: 'React with 👍', exact: true }).click();
  await imageMsg(rosa).first().locator('.chip', { hasText: '👍 1' }).waitFor();
  await theo.page.mouse.move(0, 0);
  await theo.shot('25-peer-image-and-file');

  // The full image: over the page; Escape or a click closes it.
  await thumb.click();
  const lb = theo.page.locator('#lightbox');
  await lb.waitFor();
  const full = await loaded(lb.locator('img'));
  assert.deepEqual([full.w, full.h], [320, 200]);
  assert.equal(await lb.locator('#lightbox-name').textContent(), 'site.png');
  await theo.shot('26-full-size-image');
  await theo.page.keyboard.press('Escape');
  await lb.waitFor({ state: 'hidden' });
  await thumb.click();
  await loaded(lb.locator('img'));
  await lb.click({ position: { x: 5, y: 5 } });
  await lb.waitFor({ state: 'hidden' });

  // At phone width (Theo's phone): the same, in one column.
  const phone = new ChatUser(browser, baseURL, theo.id, { viewport: PHONE, scale: 2 });
  await phone.start();
  users.push(phone);
  await phone.login();
  await phone.row(conv).locator('.conv-last', { hasText: 'Thanks, reading it now' }).waitFor();
  await phone.openConv(conv);
  const pthumb = imageMsg(phone).locator('.thumb');
  await loaded(pthumb.locator('img'));
  await fileMsg(phone, 'report.pdf').getByRole('link', { name: 'Download report.pdf' }).waitFor();
  await eventually(async () => assert.match(await fileMsg(phone, 'notes.docx').locator('.file-dl').getAttribute('href') || '', /^\/files\//));
  assert.equal(await phone.page.evaluate(() => document.documentElement.scrollWidth), PHONE.width, 'nothing wider than the phone');
  await pthumb.scrollIntoViewIfNeeded();
  await phone.shot('27-phone-image-and-file');
  await pthumb.tap();
  await loaded(phone.page.locator('#lightbox img'));
  const lbox = await phone.page.locator('#lightbox img').boundingBox();
  assert.ok(lbox.width <= PHONE.width, 'the full image fits the phone');
  await phone.shot('28-phone-full-size');
  await phone.page.getByRole('button', { name: 'Close' }).click();
  await phone.page.locator('#lightbox').waitFor({ state: 'hidden' });

  // Recall: "message recalled" on every side, and the file is gone.
  await attachFiles(rosa, [{ name: 'wrong.png', mimeType: 'image/png', buffer: png(90, 160) }]);
  const wrong = imageMsg(theo).filter({ has: theo.page.locator('img[alt="wrong.png"]') });
  const wrongPic = await loaded(wrong.locator('img'));
  assert.deepEqual(await wrong.locator('.thumb').evaluate((e) => [e.offsetWidth, e.offsetHeight]), [90, 160], 'small images keep their size');
  li = await hoverActions(imageMsg(rosa).filter({ has: rosa.page.locator('img[alt="wrong.png"]') }));
  rosa.page.once('dialog', (d) => d.accept());
  await li.getByRole('button', { name: 'Recall', exact: true }).click();
  for (const u of [rosa, theo, phone]) {
    await eventually(async () => assert.equal((await u.texts()).at(-1), 'message recalled', u.id));
    await eventually(async () => assert.equal(await imageMsg(u).count(), 1, `${u.id}: one image left`));
  }
  await theo.row(conv).locator('.conv-last', { hasText: 'message recalled' }).waitFor();
  const gone = await theo.page.evaluate(async (src) => (await fetch(src, { cache: 'no-store' })).status, wrongPic.src);
  assert.equal(gone, 404, 'a recalled file is deleted');
  await phone.page.mouse.click(5, 300);
  await phone.shot('29-phone-recalled');
  await closeAll(rosa, theo, phone);
});
