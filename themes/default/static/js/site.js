/* The reader's light/dark choice and the copy buttons of code blocks. No inline code and no
   external requests, so a strict Content-Security-Policy works; without this script the
   page follows the system's colours and code can still be selected by hand.

   The theme's dark colours sit in `@media (prefers-color-scheme: dark)` rules (style.css,
   syntax.css). A choice re-targets those rules: "all" forces them on, "not all" off; with
   no choice they follow the system. Loaded in <head> after the stylesheets, so the choice
   applies before the first paint. */
(() => {
  "use strict";
  const KEY = "fedipress-theme";
  const SYSTEM = "(prefers-color-scheme: dark)";
  const systemDark = window.matchMedia ? window.matchMedia(SYSTEM) : null;

  const stored = () => {
    try {
      const value = localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : "";
    } catch {
      return "";  // storage refused (privacy settings): follow the system
    }
  };
  const remember = (value) => {
    try {
      if (value) localStorage.setItem(KEY, value);
      else localStorage.removeItem(KEY);
    } catch {
      /* not remembered: the choice still holds for this page */
    }
  };

  // The dark rules, once found: re-targeting them changes their media text.
  const rules = new Set();
  const findRules = () => {
    for (const sheet of document.styleSheets) {
      let found;
      try {
        found = sheet.cssRules;
      } catch {
        continue;  // a stylesheet from another origin: not ours to change
      }
      for (const rule of found) {
        if (rule.media && rule.media.mediaText.includes("prefers-color-scheme: dark")) {
          rules.add(rule);
        }
      }
    }
  };

  let choice = stored();  // "light", "dark", or "" to follow the system
  const isDark = () => (choice ? choice === "dark" : Boolean(systemDark && systemDark.matches));
  const apply = () => {
    for (const rule of rules) {
      rule.media.mediaText = choice === "dark" ? "all" : choice === "light" ? "not all" : SYSTEM;
    }
    document.documentElement.style.colorScheme = choice;  // form controls and scrollbars
    document.documentElement.dataset.theme = choice || "system";
  };
  findRules();
  apply();

  const ready = (fn) => {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  };

  ready(() => {
    findRules();  // stylesheets linked after this script, if any
    apply();
    const toggle = document.querySelector("[data-theme-toggle]");
    if (toggle) {
      const show = () => toggle.setAttribute("aria-pressed", String(isDark()));
      toggle.hidden = false;
      show();
      toggle.addEventListener("click", () => {
        const dark = !isDark();
        // Back to following the system when the choice is what the system shows anyway.
        const system = Boolean(systemDark && systemDark.matches);
        choice = dark === system && systemDark ? "" : dark ? "dark" : "light";
        remember(choice);
        apply();
        show();
      });
      if (systemDark && systemDark.addEventListener) systemDark.addEventListener("change", show);
    }

    if (!(navigator.clipboard && window.isSecureContext)) return;
    for (const pre of document.querySelectorAll(".content pre")) {
      const code = pre.querySelector("code") || pre;
      const box = document.createElement("div");
      box.className = "code-block";
      pre.replaceWith(box);
      box.append(pre);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy the code");
      const status = document.createElement("span");
      status.className = "visually-hidden";
      status.setAttribute("role", "status");
      box.append(button, status);
      let timer = 0;
      button.addEventListener("click", () => {
        navigator.clipboard.writeText(code.textContent).then(
          () => {
            button.textContent = "Copied";
            status.textContent = "Code copied";
          },
          () => {
            button.textContent = "Select and copy";
            status.textContent = "Could not copy; select the code instead";
          },
        );
        clearTimeout(timer);
        timer = setTimeout(() => {
          button.textContent = "Copy";
          status.textContent = "";
        }, 2500);
      });
    }
  });
})();
