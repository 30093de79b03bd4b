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
