/* The site's own Matomo, loaded only by partials/analytics.html when fedipress.yaml has
   `analytics: {matomo: ...}`. Its settings come from this script tag's data attributes, so
   pages carry no inline script and a strict Content-Security-Policy keeps working.

   Nothing is loaded or sent when the browser says Do Not Track or Global Privacy Control:
   the check runs before Matomo's own script is requested. Matomo runs without cookies, so
   it needs no consent banner (docs/config.md, analytics). */
(() => {
  "use strict";
  const me = document.currentScript;
  if (!me) return;
  const url = me.dataset.matomoUrl || "";
  const site = me.dataset.matomoSite || "";
  if (!/^https?:\/\//.test(url) || !/^[0-9]+$/.test(site)) return;

  const dnt = [navigator.doNotTrack, window.doNotTrack, navigator.msDoNotTrack];
  if (dnt.includes("1") || dnt.includes("yes") || navigator.globalPrivacyControl === true) {
    return;
  }

  const paq = (window._paq = window._paq || []);
  paq.push(["disableCookies"]);
  paq.push(["setDoNotTrack", true]);
  paq.push(["setTrackerUrl", `${url}matomo.php`]);
  paq.push(["setSiteId", site]);
  paq.push(["trackPageView"]);
  paq.push(["enableLinkTracking"]);
  const tracker = document.createElement("script");
  tracker.async = true;
  tracker.src = `${url}matomo.js`;
  document.head.appendChild(tracker);
})();
