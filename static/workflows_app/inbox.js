// Staff pages: swap refusals in place. A 400, 403 or 409 answer carries the reason and the
// action panel as it stands now, so the page stays usable (htmx does not swap 4xx by default).
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 400 || status === 403 || status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
