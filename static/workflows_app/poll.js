// The tracker's poll is a conditional request (docs/pages.md): it sends the ETag of the step
// list it shows (its data-etag) as If-None-Match, and the server answers 304 from one query
// when nothing changed. htmx would swap a 304's empty body in; it must swap nothing.
document.addEventListener("htmx:configRequest", function (event) {
  var tag = event.detail.elt.getAttribute("data-etag");
  if (tag && event.detail.verb === "get") {
    event.detail.headers["If-None-Match"] = tag;
  }
});

document.addEventListener("htmx:beforeSwap", function (event) {
  if (event.detail.xhr.status === 304) {
    event.detail.shouldSwap = false;
    event.detail.isError = false;
  }
});
