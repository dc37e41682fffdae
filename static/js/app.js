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
