// Staff pages: swap refusals in place. A 400, 403 or 409 answer carries the reason and the
// action panel as it stands now, so the page stays usable (htmx does not swap 4xx by default).
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 400 || status === 403 || status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// After an action swaps the panel, keep the keyboard where the user was: on the panel's
// title, not back at the top of the page. The panel is looked up again because an
// outerHTML swap replaces the element the event was aimed at.
document.addEventListener("htmx:afterSettle", function () {
  var title = document.getElementById("panel-title");
  if (title && document.activeElement === document.body) {
    title.focus();
  }
});
