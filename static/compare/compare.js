// The comparison page: one WebSocket (docs/websocket.md, "Comparing models"), one column per
// model, live markdown as each answer streams. No inline script: the CSP forbids it.
(function () {
  "use strict";
  const gettext = window.gettext || function (text) { return text; };
  const interpolate =
    window.interpolate ||
    function (format, values) {
      return format.replace(/%\((\w+)\)s/g, function (_match, name) { return String(values[name]); });
    };

  const root = document.getElementById("compare");
  if (!root) return;
  const form = document.getElementById("compare-form");
  const pickers = document.getElementById("compare-pickers");
  const addButton = document.getElementById("add-model");
  const input = document.getElementById("compare-input");
  const sendButton = document.getElementById("compare-send");
  const stopButton = document.getElementById("compare-stop");
  const errorBox = document.getElementById("compare-error");
  const banner = document.getElementById("compare-banner");
  const questionBox = document.getElementById("compare-question");
  const columns = document.getElementById("compare-columns");
  const columnTemplate = document.getElementById("compare-column");
  const minModels = Number(root.dataset.minModels);
  const maxModels = Number(root.dataset.maxModels);

  let socket = null; // window.auraxSocket's
  let requestCounter = 0;
  // The comparison on screen: { id, columns: [{ el, text, ended }] }; null before the first.
  let current = null;
  let renderQueued = false;
  // The comparison this tab shows, kept across a reload: a new socket takes it up (`resume`).
  const STORED = "aurax.compare";
  function stored(id) {
    try {
      if (id === undefined) return sessionStorage.getItem(STORED);
      if (id) sessionStorage.setItem(STORED, id);
      else sessionStorage.removeItem(STORED);
    } catch (err) {
      return null; // storage refused: a reload loses the comparison
    }
    return null;
  }

  // --- Socket (static/chat/socket.js) --------------------------------------------------------
  // While it is down the answers go on: the next socket takes the comparison up (`resume`).
  function connect() {
    socket = window.auraxSocket({
      root: root,
      banner: banner,
      path: function () { return root.dataset.wsPath; },
      onOpen: function () {
        const id = current ? current.id : stored();
        if (id) socket.send({ type: "resume", comparison_id: id });
      },
      onFrame: function (frame) {
        const handler = handlers[frame.type];
        if (handler) handler(frame);
      },
    });
  }
  function send(frame) {
    if (socket && socket.send(frame)) return true;
    showError(gettext("The connection is down; try again in a moment."));
    return false;
  }
  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  // --- Models ------------------------------------------------------------------------------
  function pickerList() {
    return Array.from(pickers.querySelectorAll(".compare-picker"));
  }
  function pickersUpdate() {
    const list = pickerList();
    list.forEach(function (picker) {
      picker.querySelector("[data-remove-model]").disabled = list.length <= minModels;
    });
    if (addButton) addButton.disabled = list.length >= maxModels;
  }
  if (addButton) {
    addButton.addEventListener("click", function () {
      const list = pickerList();
      if (!list.length || list.length >= maxModels) return;
      const copy = list[list.length - 1].cloneNode(true);
      const select = copy.querySelector("select");
      // The next model the menu offers that is not picked yet, else the same again.
      const taken = new Set(list.map(function (p) { return p.querySelector("select").value; }));
      const free = Array.from(select.options).find(function (o) { return !taken.has(o.value); });
      select.value = free ? free.value : list[list.length - 1].querySelector("select").value;
      pickers.appendChild(copy);
      pickersUpdate();
    });
  }
  pickers.addEventListener("click", function (e) {
    const remove = e.target.closest("[data-remove-model]");
    if (!remove || pickerList().length <= minModels) return;
    remove.closest(".compare-picker").remove();
    pickersUpdate();
  });
  pickersUpdate();

  // --- Asking ------------------------------------------------------------------------------
  function numberOrNull(name) {
    const value = form.elements[name].value.trim();
    return value === "" ? null : Number(value);
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (sendButton.disabled) return;
    const content = input.value;
    if (!content.trim()) return;
    showError("");
    requestCounter += 1;
    const frame = {
      type: "compare",
      request_id: "c" + requestCounter,
      workspace: root.dataset.workspace,
      content: content,
      models: pickerList().map(function (p) { return p.querySelector("select").value; }),
      system_prompt: form.elements.system_prompt.value,
      temperature: numberOrNull("temperature"),
      max_tokens: numberOrNull("max_tokens"),
    };
    if (send(frame)) {
      sendButton.disabled = true;
      root.dataset.asked = content;
    }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  stopButton.addEventListener("click", function () {
    if (current) send({ type: "stop", comparison_id: current.id });
  });
  columns.addEventListener("click", function (e) {
    const column = e.target.closest(".compare-column");
    if (!column || !current) return;
    const slot = Number(column.dataset.slot);
    const copy = e.target.closest(".copy-code");
    if (copy) {
      const code = copy.parentNode.querySelector("code") || copy.parentNode;
      copied(copy, code.textContent);
    } else if (e.target.closest("[data-copy-answer]")) {
      copied(e.target.closest("[data-copy-answer]"), current.columns[slot].text);
    } else if (e.target.closest("[data-stop-one]")) {
      send({ type: "stop", comparison_id: current.id, slot: slot });
    } else if (e.target.closest("[data-keep]")) {
      requestCounter += 1;
      if (send({ type: "keep", comparison_id: current.id, slot: slot, request_id: "k" + requestCounter })) {
        column.dataset.kept = "1";
        columns.querySelectorAll("[data-keep]").forEach(function (b) { b.disabled = true; });
      }
    }
  });

  function running(on) {
    root.dataset.running = on ? "1" : "";
    stopButton.hidden = !on;
    sendButton.disabled = on;
  }

  // --- Drawing -------------------------------------------------------------------------------
  const renderMarkdown = window.auraxMarkdown;
  function renderSoon() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(function () {
      renderQueued = false;
      if (!current) return;
      current.columns.forEach(function (column) {
        if (column.dirty) {
          column.dirty = false;
          const answer = column.el.querySelector(".compare-answer");
          answer.innerHTML = renderMarkdown(column.text);
          if (column.ended) copyButtonsAdd(answer);
        }
      });
    });
  }
  // An ended answer's code blocks get a Copy button, as the chat's do.
  function copyButtonsAdd(answer) {
    answer.querySelectorAll("pre").forEach(function (pre) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code small";
      button.textContent = gettext("Copy");
      pre.appendChild(button);
    });
  }
  function copied(button, text) {
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = gettext("Copied");
      setTimeout(function () { button.textContent = gettext("Copy"); }, 1500);
    });
  }
  function statsText(f) {
    const parts = [];
    if (f.served_model) parts.push(f.served_model);
    if (f.input_tokens !== null && f.input_tokens !== undefined) {
      parts.push(
        interpolate(gettext("%(input)s in, %(output)s out"), { input: f.input_tokens, output: f.output_tokens }, true) +
          (f.tokens_estimated ? " " + gettext("(estimated)") : "")
      );
    }
    if (f.cost !== null && f.cost !== undefined) parts.push(f.cost_text);
    if (f.ttft_ms !== null && f.ttft_ms !== undefined) {
      parts.push(interpolate(gettext("first token %(ms)s ms"), { ms: f.ttft_ms }, true));
    }
    if (f.duration_ms !== null && f.duration_ms !== undefined) {
      parts.push(interpolate(gettext("%(seconds)s s"), { seconds: (f.duration_ms / 1000).toFixed(1) }, true));
    }
    return parts.join(" · ");
  }
  function ended(slot, f) {
    const column = current.columns[slot];
    column.ended = true;
    const el = column.el;
    el.dataset.status = f.status;
    el.querySelector("[data-stop-one]").hidden = true;
    column.dirty = true;
    renderSoon();
    const failure = el.querySelector(".compare-failure");
    if (f.status === "error" || f.error_message) {
      failure.textContent = f.error_message || gettext("Something went wrong.");
      failure.hidden = false;
    } else if (f.status === "stopped") {
      failure.textContent = gettext("Stopped.");
      failure.hidden = false;
    }
    el.querySelector(".compare-stats").textContent = statsText(f);
    column.keepable = f.status !== "error" && column.text.trim() !== "";
    el.querySelector("[data-copy-answer]").hidden = column.text.trim() === "";
  }

  // A comparison's columns, empty: `labels` name the models as the menu does.
  function columnsDraw(id, question, models, labels) {
    current = { id: id, columns: [] };
    columns.replaceChildren();
    questionBox.textContent = question || "";
    questionBox.hidden = !questionBox.textContent;
    models.forEach(function (model, slot) {
      const el = columnTemplate.content.firstElementChild.cloneNode(true);
      el.dataset.slot = String(slot);
      el.querySelector(".compare-model").textContent = labels[slot] || model;
      columns.appendChild(el);
      current.columns.push({ el: el, text: "", ended: false, dirty: false });
    });
  }
  function allEnded() {
    running(false);
    current.columns.forEach(function (column) {
      column.el.querySelector("[data-keep]").hidden = !column.keepable;
    });
  }
  // The answers that did not end, marked stopped where they were (the comparison is gone).
  function lost(text) {
    if (!current) return;
    current.columns.forEach(function (column, slot) {
      if (!column.ended) ended(slot, { status: "stopped", error_message: text });
    });
    running(false);
  }

  const handlers = {
    comparison_started: function (f) {
      const labels = pickerList().map(function (p) {
        const select = p.querySelector("select");
        return select.options[select.selectedIndex] ? select.options[select.selectedIndex].text : select.value;
      });
      columnsDraw(f.comparison_id, root.dataset.asked, f.models, labels);
      stored(f.comparison_id);
      input.value = "";
      running(true);
    },
    // After a reload or a reconnect: where every answer stands, then the rest as it comes.
    comparison_resumed: function (f) {
      const select = pickers.querySelector("select");
      const labels = f.models.map(function (model) {
        const option = select && Array.from(select.options).find(function (o) { return o.value === model; });
        return option ? option.text : model;
      });
      columnsDraw(f.comparison_id, f.question, f.models, labels);
      f.answers.forEach(function (answer) {
        const column = current.columns[answer.slot];
        column.text = answer.text;
        column.dirty = true;
        if (answer.finished) ended(answer.slot, answer.finished);
      });
      renderSoon();
      running(f.running);
      if (!f.running) allEnded();
    },
    comparison_moved: function (f) {
      if (!current || f.comparison_id !== current.id) return;
      stored(null);
      lost(gettext("This comparison went on in another tab."));
      current = null;
      showError(gettext("This comparison went on in another tab."));
    },
    delta: function (f) {
      if (!current || f.comparison_id !== current.id) return;
      const column = current.columns[f.slot];
      column.text += f.text;
      column.dirty = true;
      renderSoon();
    },
    answer_finished: function (f) {
      if (!current || f.comparison_id !== current.id) return;
      ended(f.slot, f);
    },
    comparison_finished: function (f) {
      if (!current || f.comparison_id !== current.id) return;
      allEnded();
    },
    kept: function (f) {
      stored(null);
      location.assign(f.url);
    },
    error: function (f) {
      if (f.request === "resume") {
        // Ended meanwhile (its server restarted, or nobody took it up in time).
        stored(null);
        lost(gettext("The connection was lost: this answer stopped here."));
        return;
      }
      if (f.request === "compare") {
        sendButton.disabled = false;
        if (root.dataset.asked && !input.value) input.value = root.dataset.asked;
      }
      if (f.request === "keep") {
        columns.querySelectorAll("[data-keep]").forEach(function (b) { b.disabled = false; });
        columns.querySelectorAll("[data-kept]").forEach(function (c) { delete c.dataset.kept; });
      }
      showError(f.message || gettext("Something went wrong."));
    },
  };

  connect();
})();
