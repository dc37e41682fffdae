// Under the composer: what sending the typed text (and the files attached) would cost,
// before sending it.
(function () {
  "use strict";
  const gettext = window.gettext || function (text) { return text; };
  const input = document.getElementById("composer-input");
  const output = document.getElementById("composer-estimate");
  if (!input || !output) return;
  let timer = null;
  let sequence = 0;

  function csrf() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function refresh() {
    const text = input.value;
    const files = Array.prototype.map.call(
      document.querySelectorAll("#composer-files [data-attachment-id]"),
      function (chip) { return chip.dataset.attachmentId; },
    );
    if (!text.trim() && !files.length) { sequence++; output.textContent = ""; return; } // (and drop any on its way)
    const chat = document.getElementById("chat");
    const model = document.getElementById("id_model");
    const body = new URLSearchParams({
      content: text,
      model: model ? model.value : "",
      conversation_id: (chat && chat.dataset.conversationId) || "",
      workspace: (chat && chat.dataset.workspace) || "",
    });
    files.forEach(function (id) { body.append("attachments", id); });
    const mine = ++sequence;
    fetch(output.dataset.url, {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf() },
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
      if (!data || mine !== sequence) return;
      const cost = data.cost === null ? gettext("price unknown") : "$" + Number(data.cost).toFixed(4);
      output.textContent = "≈ " + data.tokens + " " + gettext("input tokens") + " · " + cost;
    }).catch(function () {});
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  document.addEventListener("change", function (event) {
    if (event.target.id === "id_model") refresh();
  });
  document.addEventListener("chat:files-changed", refresh);
})();
