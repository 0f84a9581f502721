/* skyclass console: the multiviewer's refresh (status every 3 s, pictures every 4 s,
   countdown every second). Plain JS, served by skyclass; nothing from elsewhere. */
(function () {
  "use strict";
  var wall = document.getElementById("wall");
  if (!wall) { return; }
  var skew = 0; // server clock minus this browser's clock, in ms

  function text(el, value) { if (el) { el.textContent = value; } }
  function mmss(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + two(m) + ":" + two(r) : two(m) + ":" + two(r);
  }
  function mbps(bps) { return bps === null || bps === undefined ? "—" : (bps / 1e6).toFixed(2) + " Mb/s"; }
  function clock(iso) {
    var d = new Date(iso);
    return d.toLocaleTimeString("zh-CN", { hour12: false, timeZone: wall.dataset.zone || undefined });
  }
  function el(tag, cls, value) { var e = document.createElement(tag); if (cls) { e.className = cls; } if (value !== undefined) { e.textContent = value; } return e; }

  function renderEvent(dd, ev, isNow) {
    dd.textContent = "";
    if (!ev) { dd.textContent = "—"; return; }
    dd.appendChild(el("span", "type", ev.type_zh));
    dd.appendChild(document.createTextNode(" "));
    dd.appendChild(el("span", "title", ev.title));
    dd.appendChild(document.createTextNode(" "));
    if (isNow) {
      var rem = el("span", "remaining");
      rem.dataset.end = ev.end;
      dd.appendChild(rem);
    } else {
      dd.appendChild(el("span", "at", clock(ev.start)));
    }
  }

  function update(status) {
    var tile = wall.querySelector('[data-channel="' + CSS.escape(status.channel_id) + '"]');
    if (!tile) { return; }
    tile.className = "tile state-" + status.state;
    var badge = tile.querySelector('[data-field="state"]');
    if (badge) { badge.className = "badge state-" + status.state; badge.textContent = status.state_zh + " " + status.state; }
    renderEvent(tile.querySelector('[data-field="now"]'), status.now, true);
    renderEvent(tile.querySelector('[data-field="next"]'), status.next, false);
    text(tile.querySelector('[data-field="bitrate"]'), mbps(status.output_bitrate_bps) + " / " + mbps(status.mux_rate_bps));
    text(tile.querySelector('[data-field="fallbacks"]'), String(status.fallbacks_today));
    var p1 = 0, p2 = 0;
    status.tr101290.forEach(function (t) { if (t.priority === 1) { p1 += t.count; } else { p2 += t.count; } });
    text(tile.querySelector('[data-field="tr"]'), status.tr101290.length ? "P1 " + p1 + " · P2 " + p2 : "—");
    text(tile.querySelector('[data-field="lag"]'), status.asrun_lag_seconds === null ? "—" : Math.round(status.asrun_lag_seconds) + " s");
    var list = tile.querySelector('[data-field="alarms"]');
    if (list) {
      list.textContent = "";
      if (!status.alarms.length) { list.appendChild(el("li", "ok", "无告警 No alarms")); }
      status.alarms.forEach(function (a) { list.appendChild(el("li", a.severity, a.message)); });
    }
  }

  function tick() {
    var now = Date.now() + skew;
    wall.querySelectorAll(".remaining[data-end]").forEach(function (span) {
      span.textContent = "剩余 " + mmss((Date.parse(span.dataset.end) - now) / 1000);
    });
  }

  function poll() {
    fetch(wall.dataset.statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (list) {
        if (!list) { return; }
        if (list.length) { skew = Date.parse(list[0].checked_at) - Date.now(); }
        list.forEach(update);
        tick();
      })
      .catch(function () { /* the next poll tries again */ });
  }

  function refreshPictures() {
    wall.querySelectorAll("img[data-picture]").forEach(function (img) {
      var probe = new Image();
      probe.onload = function () { img.src = probe.src; img.parentNode.classList.remove("nosignal"); };
      probe.onerror = function () { img.parentNode.classList.add("nosignal"); };
      probe.src = img.dataset.picture + "?t=" + Date.now();
    });
  }

  wall.querySelectorAll("img[data-picture]").forEach(function (img) {
    img.addEventListener("error", function () { img.parentNode.classList.add("nosignal"); });
  });
  tick();
  setInterval(tick, 1000);
  setInterval(poll, 3000);
  setInterval(refreshPictures, 4000);
})();
