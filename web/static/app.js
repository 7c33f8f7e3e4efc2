/* Integration Signals dashboard: live updates without a reload.
 *
 * Pages mark what may change with data attributes (no inline script, per the CSP):
 *   <body data-live-poll="2000" data-live-cursor="2026-11-20T12:00:00Z">
 *   <... data-live-account="ACCOUNT_ID">            one account's cells inside
 *     <... data-live-field="score|band|reason|open_signals|notice">
 *     <... data-live-band-class>                     gets class band-<band>
 * Every data-live-poll milliseconds we ask /api/live?since=CURSOR&accounts=IDS for the
 * accounts rescored since the cursor and patch those cells. Forms work without JS.
 */
(function () {
  "use strict";

  var BANDS = ["healthy", "watch", "at_risk"];
  var MAX_IDS = 200;

  function liveAccounts() {
    var seen = {};
    var ids = [];
    document.querySelectorAll("[data-live-account]").forEach(function (el) {
      var id = el.getAttribute("data-live-account");
      if (id && !seen[id] && ids.length < MAX_IDS) { seen[id] = true; ids.push(id); }
    });
    return ids;
  }

  function flashEl(el) {
    el.classList.remove("live-updated");
    void el.offsetWidth; // restart the animation
    el.classList.add("live-updated");
  }

  function setText(el, text) {
    text = text === null || text === undefined ? "" : String(text);
    if (el.textContent !== text) { el.textContent = text; flashEl(el); return true; }
    return false;
  }

  function setBand(el, band) {
    if (el.getAttribute("data-live-band") === band) { return false; }
    BANDS.forEach(function (b) { el.classList.remove("band-" + b); });
    el.classList.add("band-" + band);
    el.setAttribute("data-live-band", band);
    el.textContent = String(band).replace(/_/g, " ");
    flashEl(el);
    return true;
  }

  function patch(change) {
    var changed = false;
    document.querySelectorAll("[data-live-account]").forEach(function (root) {
      if (root.getAttribute("data-live-account") !== change.account_id) { return; }
      root.querySelectorAll("[data-live-field]").forEach(function (el) {
        var field = el.getAttribute("data-live-field");
        if (field === "band") { changed = setBand(el, change.band) || changed; }
        else if (field === "score") { changed = setText(el, change.score) || changed; }
        else if (field === "reason") { changed = setText(el, change.reason) || changed; }
        else if (field === "open_signals") { changed = setText(el, change.open_signals) || changed; }
      });
      root.querySelectorAll("[data-live-band-class]").forEach(function (el) {
        BANDS.forEach(function (b) { el.classList.remove("band-" + b); });
        el.classList.add("band-" + change.band);
      });
      if (changed) {
        root.querySelectorAll('[data-live-field="notice"]').forEach(function (el) {
          el.hidden = false;
          el.textContent = "Updated " + new Date().toLocaleTimeString() + " — reload for the details.";
        });
      }
    });
    return changed;
  }

  function startPolling() {
    var body = document.body;
    var every = parseInt(body.getAttribute("data-live-poll") || "0", 10);
    var cursor = body.getAttribute("data-live-cursor");
    if (!every || !cursor) { return; }
    var ids = liveAccounts();
    if (!ids.length) { return; }
    var timer = null;
    var busy = false;

    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      var url = "/api/live?since=" + encodeURIComponent(cursor) +
        "&accounts=" + encodeURIComponent(ids.join(","));
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) { window.clearInterval(timer); return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (!data) { return; }
          cursor = data.cursor || cursor;
          body.setAttribute("data-live-cursor", cursor);
          (data.changes || []).forEach(patch);
          body.setAttribute("data-live-last-poll", String(Date.now()));
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ })
        .then(function () { busy = false; });
    }

    timer = window.setInterval(tick, every);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { tick(); } });
  }

  // A form posts once: double clicks would send the same action twice.
  function guardForms() {
    document.querySelectorAll("form[method=post]").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      });
    });
  }

  // Filter bars (GET forms marked data-autosubmit): a changed drop-down applies at once,
  // and empty fields stay out of the URL. Without JS the Apply button does the same.
  function filterForms() {
    document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("input[name], select[name]").forEach(function (el) {
          if (el.value === "") { el.disabled = true; }
        });
      });
      form.querySelectorAll("select").forEach(function (select) {
        select.addEventListener("change", function () {
          if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
        });
      });
    });
    // Back from the next page (bfcache): the fields must work again.
    window.addEventListener("pageshow", function () {
      document.querySelectorAll("form[data-autosubmit] [disabled]").forEach(function (el) {
        el.disabled = false;
      });
    });
  }

  window.SignalsLive = { patch: patch };
  document.addEventListener("DOMContentLoaded", function () {
    guardForms();
    filterForms();
    startPolling();
  });
})();
