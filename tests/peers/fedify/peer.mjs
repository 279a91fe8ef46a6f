// A real ActivityPub peer built on Fedify, for fedipress's integration tests.
//
//   node peer.mjs --port 0 [--authorized-fetch]
//
// Hosts two Fedify actors: Person "alice" (/users/alice), with a personal inbox
// (/users/alice/inbox) and a shared inbox (/inbox), who follows and receives; and Person
// "bob", a move target whose aliases (alsoKnownAs) the tests set. A JSON control API lives
// under /control/ on the same port. Prints "peer listening on http://127.0.0.1:PORT" once ready.
// Only loopback addresses are ever contacted: every other URL is refused (and logged).
// See README.md for the control API.

import { AsyncLocalStorage } from "node:async_hooks";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import {
  Activity,
  Announce,
  Create,
  Delete,
  Endpoints,
  Follow,
  Image,
  Like,
  MemoryKvStore,
  Move,
  Note,
  PUBLIC_COLLECTION,
  Person,
  Tombstone,
  Undo,
  Update,
  createFederation,
  generateCryptoKeyPair,
  isActor,
} from "@fedify/fedify";
import { configure, getConsoleSink } from "@logtape/logtape";

// Fedify 1.6 declares Node >= 22 and is the first release with RFC 9421 and double-knocking
// (1.5 signs draft-cavage only). On Node 20 the one gap our paths hit is
// ArrayBuffer.prototype.transfer (ES2024), which byte-encodings calls when Fedify encodes a
// Multikey. It is called lazily, so defining it here, after the imports, is early enough.
if (typeof ArrayBuffer.prototype.transfer !== "function") {
  Object.defineProperty(ArrayBuffer.prototype, "transfer", {
    configurable: true,
    writable: true,
    value: function transfer(newLength = this.byteLength) {
      const copy = new ArrayBuffer(newLength);
      new Uint8Array(copy).set(new Uint8Array(this, 0, Math.min(newLength, this.byteLength)));
      structuredClone(this, { transfer: [this] }); // detach the source, as transfer() does
      return copy;
    },
  });
}

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    "authorized-fetch": { type: "boolean", default: false },
  },
});

// Fedify logs through LogTape; show its warnings and errors (debug with FEDIFY_PEER_LOG=debug)
// on stderr, which the Python harness collects for failure messages.
await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  // Everything to stderr: stdout carries only the "peer listening" line.
  sinks: {
    console: getConsoleSink({
      console: { ...console, log: console.error, info: console.error, debug: console.error },
    }),
  },
  loggers: [
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    { category: "fedify", lowestLevel: process.env.FEDIFY_PEER_LOG ?? "warning", sinks: ["console"] },
  ],
});

// --- what the peer sent: every request Fedify (or its document loader) made -----------------

/** @type {object[]} */
const sent = [];
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
const realFetch = globalThis.fetch;

function signatureScheme(headers) {
  if (headers.has("signature-input")) return "rfc9421";
  if (headers.has("signature")) return "draft-cavage";
  return "none";
}

// Fedify 1.6's doubleKnock() and its document loader call the global fetch at call time, so
// wrapping it here sees every attempt, including both knocks of a double knock.
globalThis.fetch = async function loggedFetch(input, init) {
  const request = new Request(input, init);
  const entry = {
    method: request.method,
    url: request.url,
    scheme: signatureScheme(request.headers),
    status: null,
    error: null,
    response: null,
  };
  sent.push(entry);
  if (!LOOPBACK.has(new URL(request.url).hostname)) {
    entry.error = "refused: the test peer only contacts loopback addresses";
    throw new TypeError(`${entry.error} (${request.url})`);
  }
  try {
    const response = await realFetch(request);
    entry.status = response.status;
    if (response.status >= 300) {
      entry.response = (await response.clone().text()).slice(0, 500);
    }
    return response;
  } catch (error) {
    entry.error = String(error?.cause ?? error);
    throw error;
  }
};

// --- the Fedify federation ------------------------------------------------------------------

const IDENTIFIER = "alice";
// bob: a second account on the peer, the target of a Move. `aliases` is its alsoKnownAs.
const TARGET = "bob";
const aliases = { [TARGET]: [] };
// RSA signs HTTP requests (draft-cavage and RFC 9421 alike, in Fedify 1.6); Ed25519 signs
// Object Integrity Proofs (FEP-8b32), which Fedify adds to every activity it sends when it has
// such a key, as Fedify-based servers (Hollo, Ghost) do.
// generateCryptoKeyPair() makes 4096-bit RSA keys, which take up to seconds to generate; 2048
// bits, what Mastodon uses, starts the peer faster.
const rsaKeyPair = await crypto.subtle.generateKey(
  {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  true,
  ["sign", "verify"],
);
const keyPairs = [rsaKeyPair, await generateCryptoKeyPair("Ed25519")];
const targetKeyPairs = [
  await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ),
];

const federation = createFederation({
  kv: new MemoryKvStore(),
  // The peer and the servers under test all live on 127.0.0.1; Fedify refuses private
  // addresses by default (SSRF protection). This also forbids a custom document loader.
  allowPrivateAddress: true,
});

/** Follows alice sent, by id, so they can be served and undone. */
const follows = new Map();
/** Inbox requests in arrival order, see README.md for the fields. */
const received = [];

const actorDispatcher = federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier === TARGET) {
      const keys = await ctx.getActorKeyPairs(identifier);
      return new Person({
        id: ctx.getActorUri(identifier),
        preferredUsername: identifier,
        name: "Bob (a move target)",
        inbox: ctx.getInboxUri(identifier),
        endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
        publicKey: keys[0].cryptographicKey,
        aliases: aliases[TARGET].map((url) => new URL(url)),
      });
    }
    if (identifier !== IDENTIFIER) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Alice (Fedify test peer)",
      summary: "A Fedify actor that fedipress's tests follow and unfollow with.",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((key) => key.multikey),
      // A small PNG the peer serves itself: blogs showing alice's replies fetch it once.
      icon: new Image({ url: new URL("/avatar.png", ctx.origin), mediaType: "image/png" }),
      url: new URL("/@alice", ctx.origin),
    });
  })
  .setKeyPairsDispatcher((ctx, identifier) =>
    identifier === IDENTIFIER ? keyPairs : identifier === TARGET ? targetKeyPairs : [],
  );

if (args["authorized-fetch"]) {
  // Like Mastodon's secure mode: the actor is served only to signed GETs whose key
  // Fedify can fetch and verify.
  actorDispatcher.authorize((ctx, identifier, signedKey, signedKeyOwner) => signedKeyOwner != null);
}

federation.setObjectDispatcher(Follow, "/follows/{id}", (ctx, values) => {
  return follows.get(ctx.getObjectUri(Follow, values).href) ?? null;
});

/** Notes alice wrote (replies), by id, and her likes and boosts, by id, for Undo. */
const notes = new Map();
const reactions = new Map();

federation.setObjectDispatcher(Note, "/notes/{id}", (ctx, values) => {
  return notes.get(ctx.getObjectUri(Note, values).href) ?? null;
});

// A 1x1 PNG: alice's avatar.
const AVATAR = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  // Listeners are looked up along the class hierarchy: Activity catches every type.
  // Fedify calls a listener only after it verified the request (HTTP Signatures, either
  // draft-cavage or RFC 9421, or an Object Integrity Proof).
  .on(Activity, async (ctx, activity) => {
    const record = received.find((r) => r.request === ctx.data?.request);
    if (record == null) return;
    record.listener = true;
    record.type = activity.constructor.typeId?.href?.split("#").pop() ?? record.type;
    record.id = activity.id?.href ?? null;
    record.actor = activity.actorId?.href ?? null;
    record.object = activity.objectId?.href ?? null;
    if (activity instanceof Move) record.move = await followMove(ctx, activity);
  })
  .onError((ctx, error) => {
    console.error("inbox listener error:", error);
  });

/**
 * What a follower's server does with a Move (Mastodon's move.rb and follow migration): the
 * actor must move itself, the target (fetched) must list it in alsoKnownAs; then alice
 * follows the target and undoes her follow of the old account.
 */
async function followMove(ctx, move) {
  const origin = move.objectId?.href ?? null;
  const result = { verified: false, target: move.targetId?.href ?? null, aliases: [], undone: false };
  if (origin == null || origin !== move.actorId?.href || result.target == null) return result;
  const target = await ctx.lookupObject(result.target);
  if (target == null || !isActor(target)) return result;
  result.aliases = target.aliasIds.map((url) => url.href);
  result.verified = result.aliases.includes(origin);
  if (!result.verified) return result;
  const follow = [...follows.values()].reverse().find((f) => f.objectId?.href === origin);
  if (follow != null) {
    const old = await ctx.lookupObject(origin);
    const undo = new Undo({
      id: new URL(`#undo/${crypto.randomUUID()}`, follow.id),
      actor: ctx.getActorUri(IDENTIFIER),
      object: follow,
    });
    result.undone = (await send(ctx, old, undo)).delivered;
  }
  return result;
}

// --- control API ----------------------------------------------------------------------------

function json(status, body) {
  return new Response(JSON.stringify(body, null, 2), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

async function lookupActor(ctx, url) {
  const actor = await ctx.lookupObject(url);
  if (actor == null || !isActor(actor)) {
    throw new Error(`no actor at ${url} (Fedify's lookupObject gave ${actor?.constructor?.name ?? "null"})`);
  }
  if (actor.inboxId == null) throw new Error(`actor ${url} has no inbox`);
  return actor;
}

async function send(ctx, recipient, activity) {
  try {
    // Follow and Undo go to the personal inbox, as Mastodon sends them (FEDERATION.md §3.1).
    await ctx.sendActivity({ identifier: IDENTIFIER }, recipient, activity);
    return { delivered: true, error: null };
  } catch (error) {
    return { delivered: false, error: String(error?.message ?? error) };
  }
}

async function handleControl(request, ctx) {
  const path = new URL(request.url).pathname;
  if (request.method === "GET" && path === "/control/received") {
    return json(200, received.map(({ request: _r, ...record }) => record));
  }
  if (request.method === "GET" && path === "/control/log") return json(200, sent);
  if (request.method === "GET" && path === "/control/actor") {
    return json(200, {
      actor: ctx.getActorUri(IDENTIFIER).href,
      target: ctx.getActorUri(TARGET).href,
    });
  }
  if (request.method === "POST" && path === "/control/aliases") {
    const body = await request.json().catch(() => null);
    if (!Array.isArray(body?.aliases)) return json(400, { error: 'expected {"aliases": [URL]}' });
    aliases[TARGET] = body.aliases.map((url) => new URL(url).href);
    return json(200, { target: ctx.getActorUri(TARGET).href, aliases: aliases[TARGET] });
  }
  const routes = [
    "/control/follow", "/control/unfollow", "/control/reply", "/control/like",
    "/control/announce", "/control/undo", "/control/update", "/control/delete",
  ];
  if (request.method !== "POST" || !routes.includes(path)) {
    return json(404, { error: `no control route ${request.method} ${path}` });
  }
  let target;
  let body;
  try {
    body = await request.json();
    target = new URL(body.actor).href;
  } catch {
    return json(400, { error: 'expected a JSON body {"actor": "<actor URL>", ...}' });
  }
  let recipient;
  try {
    recipient = await lookupActor(ctx, target);
  } catch (error) {
    return json(502, { error: String(error?.message ?? error) });
  }
  const alice = ctx.getActorUri(IDENTIFIER);
  const answer = async (activity) => {
    const result = await send(ctx, recipient, activity);
    return json(200, { ...result, activity: await activity.toJsonLd({ contextLoader: ctx.contextLoader }) });
  };
  const audience = { to: PUBLIC_COLLECTION, cc: new URL(`${alice.href}/followers`) };
  if (path === "/control/reply") {
    // {"actor", "inReplyTo", "content"}: a public Note replying to inReplyTo, sent in a Create.
    const id = ctx.getObjectUri(Note, { id: crypto.randomUUID() });
    const note = new Note({
      id, attribution: alice, content: body.content, replyTarget: new URL(body.inReplyTo),
      url: new URL(`/@alice/${notes.size + 1}`, id), ...audience,
    });
    notes.set(id.href, note);
    return answer(new Create({ id: new URL("#create", id), actor: alice, object: note, ...audience }));
  }
  if (path === "/control/update") {
    // {"actor", "id", "content"}: the Note edited, sent in an Update.
    const old = notes.get(body.id);
    if (old == null) return json(409, { error: `no note ${body.id}` });
    const note = old.clone({ content: body.content });
    notes.set(body.id, note);
    const update = new URL(`#update/${crypto.randomUUID()}`, note.id);
    return answer(new Update({ id: update, actor: alice, object: note, ...audience }));
  }
  if (path === "/control/delete") {
    // {"actor", "id"}: the Note deleted, a Tombstone in its place.
    if (!notes.delete(body.id)) return json(409, { error: `no note ${body.id}` });
    const id = new URL(`#delete/${crypto.randomUUID()}`, body.id);
    return answer(new Delete({ id, actor: alice, object: new Tombstone({ id: new URL(body.id) }), ...audience }));
  }
  if (path === "/control/like" || path === "/control/announce") {
    // {"actor", "object"}: a Like or an Announce (boost) of the object.
    const Kind = path === "/control/like" ? Like : Announce;
    const id = new URL(`/${path.slice(9)}s/${crypto.randomUUID()}`, ctx.origin);
    const activity = new Kind({ id, actor: alice, object: new URL(body.object), ...audience });
    reactions.set(id.href, activity);
    return answer(activity);
  }
  if (path === "/control/undo") {
    // {"actor", "id"}: Undo of one of alice's likes or boosts, embedding it.
    const activity = reactions.get(body.id);
    if (activity == null) return json(409, { error: `no like or boost ${body.id}` });
    reactions.delete(body.id);
    return answer(new Undo({ id: new URL("#undo", activity.id), actor: alice, object: activity }));
  }
  if (path === "/control/follow") {
    const id = ctx.getObjectUri(Follow, { id: crypto.randomUUID() });
    const follow = new Follow({ id, actor: alice, object: recipient.id });
    follows.set(id.href, follow);
    const result = await send(ctx, recipient, follow);
    return json(200, { ...result, activity: await follow.toJsonLd({ contextLoader: ctx.contextLoader }) });
  }
  const follow = [...follows.values()].reverse().find((f) => f.objectId?.href === recipient.id?.href);
  if (follow == null) return json(409, { error: `alice has not followed ${target}` });
  const undo = new Undo({
    id: new URL(`#undo/${crypto.randomUUID()}`, follow.id),
    actor: alice,
    object: follow,
  });
  const result = await send(ctx, recipient, undo);
  return json(200, { ...result, activity: await undo.toJsonLd({ contextLoader: ctx.contextLoader }) });
}

// --- HTTP server: node:http <-> fetch API ---------------------------------------------------

const INBOX_PATHS = new Map([
  [`/users/${IDENTIFIER}/inbox`, "personal"],
  ["/inbox", "shared"],
]);

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function field(value) {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof value.id === "string") return value.id;
  return null;
}

async function handle(request, body) {
  const url = new URL(request.url);
  const ctx = federation.createContext(new URL(url.origin), {});
  if (url.pathname.startsWith("/control/")) return handleControl(request, ctx);
  if (url.pathname === "/avatar.png") {
    return new Response(AVATAR, { status: 200, headers: { "Content-Type": "image/png" } });
  }
  const inbox = request.method === "POST" ? INBOX_PATHS.get(url.pathname) : undefined;
  if (inbox === undefined) return federation.fetch(request, { contextData: {} });
  // Record every inbox request, including the ones Fedify refuses (no listener runs then).
  let raw = null;
  try {
    raw = JSON.parse(body.toString("utf8"));
  } catch {
    // stays null: Fedify answers 400
  }
  const record = {
    request: {},
    inbox,
    status: null,
    verified: false,
    listener: false,
    type: typeof raw?.type === "string" ? raw.type : null,
    id: field(raw?.id),
    actor: field(raw?.actor),
    object: field(raw?.object),
    scheme: signatureScheme(request.headers),
    // What a test needs to check which key signed it (draft-cavage).
    headers: Object.fromEntries(
      ["signature", "date", "digest", "host", "content-type"].map((name) => [
        name,
        request.headers.get(name),
      ]),
    ),
    body: raw,
    response: null,
  };
  received.push(record);
  const response = await federation.fetch(request, { contextData: { request: record.request } });
  record.status = response.status;
  // Fedify 1.6 runs the listener before it checks that the signer owns the activity's
  // actor (and answers 401 if not), so "verified" needs both the listener and a 2xx.
  record.verified = record.listener && response.status >= 200 && response.status < 300;
  if (!record.verified) record.response = (await response.clone().text()).slice(0, 500);
  return response;
}

const server = createServer(async (req, res) => {
  try {
    const body = req.method === "GET" || req.method === "HEAD" ? null : await readBody(req);
    const url = `http://${req.headers.host ?? `127.0.0.1:${server.address().port}`}${req.url}`;
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const request = new Request(url, { method: req.method, headers, body });
    const response = await handle(request, body ?? Buffer.alloc(0));
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    console.error("peer error:", error);
    if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(String(error));
  }
});

server.listen(Number(args.port), "127.0.0.1", () => {
  console.log(`peer listening on http://127.0.0.1:${server.address().port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
