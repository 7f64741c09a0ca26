// The demo portal's waiting pages: ask every two seconds whether the application moved on, and load
// the page again only when it did (no <meta refresh>: focus and the reader's place stay put meanwhile).
// Without JavaScript the page's "Check again" link does the same by hand.
(function () {
  "use strict";
  var box = document.querySelector("[data-poll]");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-poll");
  var state = box.getAttribute("data-state");
  var note = document.getElementById("poll-note");
  if (note) {
    note.hidden = false;
  }
  var delay = 2000;
  function check() {
    window
      .fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (data.state !== state) {
          var status = document.getElementById("poll-status");
          if (status) {
            status.textContent = box.getAttribute("data-changed");
          }
          window.location.reload();
          return;
        }
        delay = 2000;
        window.setTimeout(check, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);  // the node is busy or away: ask less often
        window.setTimeout(check, delay);
      });
  }
  window.setTimeout(check, delay);
})();
