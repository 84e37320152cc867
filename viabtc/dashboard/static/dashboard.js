// viabtc dashboard: live refresh and worker search, hand-written, no dependencies.
// Every `data-refresh` ms the page fetches itself and swaps in the new <main>,
// keeping what is typed in the search box; the search filters worker rows.
(function () {
  "use strict";

  function applySearch() {
    var box = document.getElementById("worker-search");
    var table = document.getElementById("workers");
    if (!box || !table) return;
    var query = box.value.trim().toLowerCase();
    var rows = table.querySelectorAll("tbody tr.worker");
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var match = !query || rows[i].getAttribute("data-name").indexOf(query) !== -1;
      rows[i].classList.toggle("hidden", !match);
      if (match) shown++;
    }
    var count = document.getElementById("worker-count");
    if (count) count.textContent = shown + " of " + rows.length + " workers";
    var none = document.getElementById("no-match");
    if (none) none.hidden = shown !== 0 || rows.length === 0;
  }

  function bindSearch() {
    var box = document.getElementById("worker-search");
    if (!box) return;
    box.addEventListener("input", applySearch);
    box.form.addEventListener("submit", function (event) { event.preventDefault(); applySearch(); });
  }

  function setLive(ok) {
    var live = document.getElementById("live");
    var text = document.getElementById("live-text");
    if (!live) return;
    live.classList.toggle("stale", !ok);
    if (text) text.textContent = ok ? "live" : "offline";
  }

  function refresh() {
    var request = new XMLHttpRequest();
    request.open("GET", window.location.pathname + window.location.search);
    request.setRequestHeader("X-Dashboard-Refresh", "1");
    request.onload = function () {
      if (request.status !== 200) { setLive(false); return; }
      var doc = new DOMParser().parseFromString(request.responseText, "text/html");
      var fresh = doc.getElementById("main");
      var main = document.getElementById("main");
      if (!fresh || !main) return;
      var box = document.getElementById("worker-search");
      var query = box ? box.value : null;
      var focused = box && document.activeElement === box;
      main.innerHTML = fresh.innerHTML;
      var newBox = document.getElementById("worker-search");
      if (newBox && query !== null) {
        newBox.value = query;
        if (focused) newBox.focus();
      }
      bindSearch();
      applySearch();
      setLive(true);
    };
    request.onerror = function () { setLive(false); };
    request.send();
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindSearch();
    applySearch();
    var every = parseInt(document.body.getAttribute("data-refresh"), 10);
    if (every > 0) window.setInterval(refresh, every);
  });
})();
