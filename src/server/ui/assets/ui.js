// sluice's pages read without this script. With it, parts of a page marked `data-refresh` are
// fetched again when the server says runs changed (Server-Sent Events on /events), and a job's
// log marked `data-log-stream` grows as lines are written. The server escapes all HTML it sends.
(function () {
  "use strict";
  if (!window.EventSource) return;

  // Streams end with the page: a browser allows few connections to one server, and a page kept
  // for going back must not hold one.
  var streams = [];
  window.addEventListener("pagehide", function () {
    streams.forEach(function (stream) { stream.close(); });
  });

  var live = document.querySelectorAll("[data-refresh]");
  if (live.length) {
    var changes = new EventSource("/events");
    streams.push(changes);
    var due = null;
    changes.addEventListener("change", function () {
      if (due) return;
      due = setTimeout(function () {
        due = null;
        document.querySelectorAll("[data-refresh]").forEach(function (part) {
          fetch(part.getAttribute("data-refresh"), { credentials: "same-origin" })
            .then(function (answer) { return answer.ok ? answer.text() : null; })
            .then(function (text) { if (text !== null) part.innerHTML = text; })
            .catch(function () {});
        });
      }, 200);
    });
  }

  var log = document.querySelector("[data-log-stream]");
  if (log) {
    var url = log.getAttribute("data-log-stream") + "?after=" + (log.getAttribute("data-after") || "0");
    var stream = new EventSource(url);
    streams.push(stream);
    stream.addEventListener("chunk", function (event) {
      var follow = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      log.insertAdjacentHTML("beforeend", JSON.parse(event.data));
      if (follow) log.scrollTop = log.scrollHeight;
    });
    stream.addEventListener("end", function () { stream.close(); });
  }
})();
