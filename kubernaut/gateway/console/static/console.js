// Kubernaut console: times in the viewer's time zone (UTC stays in the title, shown on hover), after the first
// load and after every htmx swap. No inline script anywhere: the Content-Security-Policy allows only this file
// and htmx from /console/static.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short"
  });

  function localTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      if (node.dataset.local === "1") { continue; }
      var moment = new Date(node.getAttribute("datetime"));
      if (isNaN(moment.getTime())) { continue; }
      node.textContent = format.format(moment);
      node.dataset.local = "1";
    }
  }

  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSettle", function (event) { localTimes(event.target); });
})();
