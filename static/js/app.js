// Shell behaviour. No inline script anywhere: the Content-Security-Policy forbids it.
(function () {
  "use strict";

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Theme buttons apply at once and save in the background; without JS the form posts.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-theme-choice]");
    if (!button) return;
    event.preventDefault();
    const theme = button.dataset.themeChoice;
    document.documentElement.dataset.theme = theme;
    document.querySelectorAll("[data-theme-choice]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.themeChoice === theme));
    });
    const body = new URLSearchParams({ theme: theme });
    fetch(button.form.action, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
      credentials: "same-origin",
    });
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });
})();

// Forms marked data-confirm ask before they submit.
document.addEventListener("submit", function (event) {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Workspace avatar colours: set through the CSSOM, which the CSP allows (no style attributes).
function paintAvatars(root) {
  (root || document).querySelectorAll("[data-color]").forEach(function (el) {
    if (/^#[0-9a-fA-F]{6}$/.test(el.dataset.color)) el.style.backgroundColor = el.dataset.color;
  });
}
document.addEventListener("DOMContentLoaded", function () { paintAvatars(); });
document.addEventListener("htmx:afterSwap", function (event) { paintAvatars(event.target); });

// Copy buttons: data-copy-target names the element whose text is copied.
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copyTarget);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    const label = button.textContent;
    button.textContent = "✓";
    setTimeout(function () { button.textContent = label; }, 1200);
  });
});

// A request htmx made that failed (refused, gone, or the server out of reach) is said on the
// page, not only in the browser's console: rename, pin, delete, the keys pages' buttons…
(function () {
  "use strict";
  const gettext = window.gettext || function (text) { return text; };
  const interpolate = window.interpolate || function (format, args) { return format.replace("%s", args[0]); };

  function alertShow(text) {
    let box = document.getElementById("page-alert");
    if (!box) {
      box = document.createElement("div");
      box.id = "page-alert";
      box.className = "page-alert message message-error";
      box.setAttribute("role", "alert");
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  document.addEventListener("htmx:responseError", function (event) {
    const xhr = event.detail.xhr;
    const type = xhr.getResponseHeader("Content-Type") || "";
    const said = type.indexOf("text/plain") === 0 ? xhr.responseText.trim() : "";
    if (said && said.length <= 300) alertShow(said);
    else if (xhr.status === 403) alertShow(gettext("You are not allowed to do that."));
    else if (xhr.status === 404) alertShow(gettext("This is no longer there. Reload the page."));
    else alertShow(interpolate(gettext("That did not work (error %s). Try again."), [xhr.status]));
  });
  document.addEventListener("htmx:sendError", function () {
    alertShow(gettext("The server could not be reached. Check your connection and try again."));
  });
})();
