/* Conversation (templates/partials/conversation.html): show replies that arrived after the
   page was made (follow.js copies the post's address and opens it on the reader's server).
   Progressive enhancement: without this script the conversation, the address and the
   instructions still work. It asks only this site (the inbox's public document at a path of
   the same origin), never another server. No inline code, so a strict CSP works. */
(() => {
  "use strict";
  const box = document.querySelector("[data-conversation]");
  if (!box) return;
  const objectId = box.dataset.object;

  // Replies newer than the page, from the inbox's public document (same origin only).
  const source = box.dataset.interactions;
  const fresh = box.querySelector("[data-new-replies]");
  if (!source || !fresh || !source.startsWith("/") || source.startsWith("//")) return;
  const known = new Set(
    Array.from(box.querySelectorAll("[data-reply-id]"), (item) => item.dataset.replyId),
  );
  const httpUrl = (value) => (typeof value === "string" && /^https?:\/\//i.test(value) ? value : "");
  // Text only: the content is read as inert HTML and only its paragraphs' text is shown.
  const paragraphs = (html) => {
    const doc = new DOMParser().parseFromString(String(html || ""), "text/html");
    const blocks = Array.from(doc.body.querySelectorAll("p"));
    return (blocks.length ? blocks : [doc.body]).map((p) => p.textContent.trim()).filter(Boolean);
  };
  fetch(source, { headers: { Accept: "application/json" }, credentials: "omit" })
    .then((response) => (response.ok ? response.json() : null))
    .then((doc) => {
      if (!doc || typeof doc !== "object" || !doc.posts || !doc.actors) return;
      const entry = doc.posts[objectId];
      if (!entry || !Array.isArray(entry.replies)) return;
      const list = fresh.querySelector("ol");
      let added = 0;
      for (const reply of entry.replies) {
        if (!reply || typeof reply.id !== "string" || known.has(reply.id)) continue;
        const actor = (typeof reply.actor === "string" && doc.actors[reply.actor]) || {};
        const item = document.createElement("li");
        item.className = "reply";
        item.dataset.replyId = reply.id;
        const article = document.createElement("article");
        article.className = "reply-body";
        const header = document.createElement("header");
        header.className = "reply-header";
        const name = document.createElement("a");
        name.href = httpUrl(actor.url) || httpUrl(reply.actor) || "#";
        name.rel = "nofollow ugc noopener";
        name.textContent = String(actor.name || actor.handle || reply.actor);
        header.append(name);
        const link = httpUrl(reply.url) || httpUrl(reply.id);
        if (link) {
          const date = document.createElement("a");
          date.className = "reply-date";
          date.href = link;
          date.rel = "nofollow ugc noopener";
          date.textContent = String(reply.published || "original").slice(0, 10);
          header.append(date);
        }
        article.append(header);
        const body = document.createElement("div");
        body.className = "reply-content";
        for (const text of paragraphs(reply.content)) {
          const p = document.createElement("p");
          p.textContent = text;
          body.append(p);
        }
        article.append(body);
        item.append(article);
        list.append(item);
        added += 1;
      }
      if (added) fresh.hidden = false;
    })
    .catch(() => {});  // the page as built stands on its own
})();
