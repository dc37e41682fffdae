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
