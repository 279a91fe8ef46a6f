/* Follow boxes (templates/partials/follow.html and follow_topic.html) and the conversation's
   "Join" box (partials/conversation.html): copy the handle or the post's address, and send
   readers to that account or post on their own server (its authorize_interaction page). Progressive enhancement: without this
   script the handle, the instructions and the actor link still work, and the button and form
   stay hidden. Safe on pages without a follow box; no inline code, so a strict
   Content-Security-Policy works. */
(() => {
  "use strict";
  // The footer's box, on tag pages one per topic account that carries the tag, and on post
  // pages the conversation's Join box.
  document.querySelectorAll("[data-follow], [data-join]").forEach((box) => setUp(box));

  function setUp(box) {
    const handle = box.querySelector(".handle");
    const copy = box.querySelector("[data-copy-handle], [data-copy-object]");
    const what = box.dataset.object ? "address" : "handle";
    const status = box.querySelector(".copy-status");
    if (handle && copy && navigator.clipboard && window.isSecureContext) {
      let timer = 0;
      const say = (text) => {
        if (!status) return;
        status.textContent = text;
        clearTimeout(timer);
        timer = setTimeout(() => { status.textContent = ""; }, 4000);
      };
      copy.hidden = false;
      copy.addEventListener("click", () => {
        navigator.clipboard.writeText(handle.textContent.trim()).then(
          () => say("Copied"),
          () => say(`Could not copy; select the ${what} instead`),
        );
      });
    }

    const form = box.querySelector(".follow-form");
    const input = form && form.querySelector("input");
    const error = form && form.querySelector(".follow-error");
    const uri = box.dataset.actor || box.dataset.object;  // whom to follow, or what to open
    if (!form || !input || !error || !uri) return;

    // "mastodon.social", "https://mastodon.social/@me", "@me@mastodon.social" -> "mastodon.social"
    const serverHost = (value) => {
      let text = value.trim();
      if (!/^https?:\/\//i.test(text)) text = "https://" + text.slice(text.lastIndexOf("@") + 1);
      try {
        const url = new URL(text);
        return /^[^.]+(\.[^.]+)+$/.test(url.hostname) ? url.host : "";
      } catch {
        return "";
      }
    };

    form.hidden = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const host = serverHost(input.value);
      if (!host) {
        input.setAttribute("aria-invalid", "true");
        error.textContent = "Type the name of your server, such as mastodon.social.";
        input.focus();
        return;
      }
      input.removeAttribute("aria-invalid");
      error.textContent = "";
      // Mastodon, and servers that copy its API, show a "Follow" confirmation page here for
      // an account, and open a post ready for a reply.
      window.location.assign(
        "https://" + host + "/authorize_interaction?uri=" + encodeURIComponent(uri),
      );
    });
  }
})();
