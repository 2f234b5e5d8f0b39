/* Crisis alerts on every staff page, as a file (the Content-Security-Policy runs no inline script).
   Polls the element #live-alerts' data-live-url every 10 s (workflows.views_alerts.alerts_live) and shows:
   - a red banner with the count and the newest open alert ("危机预警：7年级3班 张*明 · 3分钟前 · 打开");
   - a plain banner for a proctor's care instruction ("请留下该生，心理教师马上到"), nothing else;
   - the top bar's notification badge with the unread count.
   The task pages (Turbo) replace the body on each visit: the last answer is shown again on every render and asked
   for again on every visit. The requests carry X-Background-Poll, so that polling alone does not keep an idle
   session alive (roster.sessions). */
(function () {
  "use strict";

  var POLL_MS = 10000;
  var DISMISSED = "xinqiao-alerts-dismissed";
  var last = null;
  var stopped = false;
  var baseTitle = null;

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text !== undefined && text !== null) { el.textContent = text; }
    return el;
  }

  function dismissedUpTo() {
    try { return parseInt(window.sessionStorage.getItem(DISMISSED), 10) || 0; } catch (e) { return 0; }
  }

  function alertBanner(data) {
    var newest = data.alerts[0];
    var bar = node("div", "live-alert live-alert--crisis");
    bar.setAttribute("role", "alert");
    var text = node("a", "live-alert__text");
    text.href = newest.url;
    text.appendChild(node("strong", null, data.label + "："));
    text.appendChild(document.createTextNode(newest["class"] + " " + newest.title + " · " + newest.ago + " "));
    bar.appendChild(text);
    if (data.open > 1) { bar.appendChild(node("span", "live-alert__count", "+" + (data.open - 1))); }
    var open = node("a", "live-alert__open", data.open_label);
    open.href = newest.url;
    bar.appendChild(open);
    var close = node("button", "live-alert__close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "×");
    close.addEventListener("click", function () {
      try { window.sessionStorage.setItem(DISMISSED, String(newest.id)); } catch (e) { /* private mode */ }
      bar.remove();
    });
    bar.appendChild(close);
    return bar;
  }

  function careBanner(care) {
    var bar = node("div", "live-alert live-alert--care");
    bar.setAttribute("role", "status");
    var link = node("a", "live-alert__text", care.text);
    link.href = care.url;
    bar.appendChild(link);
    return bar;
  }

  function badge(data) {
    document.querySelectorAll(".notifications-link").forEach(function (link) {
      var span = link.querySelector(".badge");
      if (!data.unread) { if (span) { span.remove(); } link.classList.remove("urgent"); return; }
      if (!span) { span = node("span", "badge"); link.appendChild(document.createTextNode(" ")); link.appendChild(span); }
      var hidden = span.querySelector(".visually-hidden");
      span.textContent = String(data.unread);
      if (hidden) { span.appendChild(hidden); }
      link.classList.toggle("urgent", data.unread_urgent > 0);
    });
  }

  function title(data) {
    if (baseTitle === null || !document.title.match(/^\(\d+\) /)) { baseTitle = document.title; }
    document.title = data.open ? "(" + data.open + ") " + baseTitle : baseTitle;
  }

  function render() {
    var box = document.getElementById("live-alerts");
    if (!box || !last) { return; }
    var parts = document.createDocumentFragment();
    if (last.alerts.length && last.alerts[0].id > dismissedUpTo()) { parts.appendChild(alertBanner(last)); }
    last.care.forEach(function (care) { parts.appendChild(careBanner(care)); });
    box.replaceChildren(parts);
    box.hidden = !box.children.length;
    badge(last);
    title(last);
  }

  function poll() {
    var box = document.getElementById("live-alerts");
    if (stopped || !box) { return; }
    fetch(box.dataset.liveUrl, {
      credentials: "same-origin", cache: "no-store",
      headers: {"Accept": "application/json", "X-Background-Poll": "1"}
    }).then(function (response) {
      if (response.status === 401 || response.redirected) { stopped = true; return null; }
      return response.ok ? response.json() : null;
    }).then(function (data) {
      if (data) { last = data; render(); }
    }).catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  function start() {
    poll();
    window.setInterval(poll, POLL_MS);
  }

  // A Turbo visit keeps this script's state: show the last answer at once, and ask again, so that an alert just taken
  // (the visit after "我来处理") does not stay on the new page until the next poll.
  document.addEventListener("turbo:load", function () { render(); poll(); });
  document.addEventListener("turbo:render", render);
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
