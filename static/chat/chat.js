// The chat page: one WebSocket per tab (docs/websocket.md), live markdown while an answer
// streams, server-rendered HTML once it is done. No inline script: the CSP forbids it.
(function () {
  "use strict";
  // Translated through Django's JavaScript catalog (loaded by base.html) when present.
  const gettext = window.gettext || function (text) { return text; };
  const interpolate =
    window.interpolate ||
    function (format, values) {
      return format.replace(/%\((\w+)\)s/g, function (_match, name) { return String(values[name]); });
    };

  const root = document.getElementById("chat");
  if (!root) return;
  const thread = document.getElementById("thread");
  const composer = document.getElementById("composer");
  const input = document.getElementById("composer-input");
  const sendButton = document.getElementById("send-button");
  const stopButton = document.getElementById("stop-button");
  const banner = document.getElementById("chat-banner");
  const settingsForm = document.getElementById("chat-settings-form");

  let conversationId = root.dataset.conversationId ? Number(root.dataset.conversationId) : null;
  let socket = null; // window.auraxSocket's
  let streaming = !!thread.querySelector('.msg[data-status="streaming"]');
  // The answer being streamed: its id and the text received so far.
  let live = null;
  let renderQueued = false;
  let requestCounter = 0;
  // When the socket last brought a frame other than `pong` (see the ping timer below).
  let heardAt = Date.now();
  const QUIET_RESUBSCRIBE_MS = 20000;
  // The last `send` until its answer starts (the question is saved then): refused, or with
  // the socket lost before that, its text goes back into the composer if that is empty.
  let pending = null;
  // The files for the next message: { name, state: "uploading" | "ready" | "failed", id, kind,
  // url, error } (see "Files for the next message" below).
  let files = [];

  function urlFor(template, id) {
    return template.replace("/0/", "/" + id + "/");
  }
  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (e) {
      return "";
    }
  }

  // --- Socket (static/chat/socket.js) --------------------------------------------------------
  function connect() {
    socket = window.auraxSocket({
      root: root,
      banner: banner,
      // The page's language goes with the handshake: a socket that finds its user's language
      // changed meanwhile (saved while this tab was reconnecting) says so at once.
      path: function () {
        return root.dataset.wsPath + "?page_language=" + encodeURIComponent(pageLanguage());
      },
      onOpen: function () {
        if (conversationId) send({ type: "subscribe", conversation_id: conversationId });
      },
      onFrame: function (frame) {
        if (frame.type !== "pong") heardAt = Date.now();
        const handler = handlers[frame.type];
        if (handler) handler(frame);
      },
      onClose: function () {
        pendingRestore();
      },
    });
  }
  function pendingRestore(keepFiles) {
    if (pending && !input.value) composerSet(pending.content);
    if (pending && keepFiles !== false && !files.length && pending.files.length) {
      files = pending.files;
      drawFiles();
    }
    pending = null;
  }
  function send(frame) {
    if (socket && socket.send(frame)) return true;
    showError(gettext("The connection is down; try again in a moment."));
    return false;
  }

  // --- Rendering -----------------------------------------------------------------------------
  function nearBottom() {
    return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
  }
  function scrollToEnd() {
    thread.scrollTop = thread.scrollHeight;
  }
  const renderMarkdown = window.auraxMarkdown;
  function decorate(scope) {
    scope.querySelectorAll(".md pre").forEach(function (pre) {
      if (pre.querySelector(".copy-code")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code small";
      button.textContent = gettext("Copy");
      pre.appendChild(button);
    });
  }
  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(function () {
      renderQueued = false;
      if (!live) return;
      const el = document.getElementById("message-" + live.id);
      if (!el) return;
      const body = el.querySelector(".msg-body");
      const stick = nearBottom();
      body.innerHTML = renderMarkdown(live.text);
      decorate(el);
      if (stick) scrollToEnd();
    });
  }
  // The composer's text changed by the page, not typed: what follows typing (the cost
  // estimate under it, the template picker) follows this too.
  function composerSet(text) {
    input.value = text;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function setStreaming(on) {
    streaming = on;
    sendButton.disabled = on || filesUploading();
    stopButton.hidden = !on;
    root.dataset.streaming = on ? "1" : "0";
  }
  // --- Running total -----------------------------------------------------------------------------
  // The conversation's total counts the calls made for its title. Each comes after an answer,
  // with what it used (`conversation_changed.title_usage`, named by its `call_id`), whether or
  // not it changed the title; the total drawn by the server names the calls it holds
  // (`data-title-calls`: a call's ledger row is written just after), and until it names one
  // the page adds that call itself: when its usage comes, and after every redraw of the thread.
  const titleCalls = new Map(); // conversation id → Map(call id → usage)
  const UNITS_PER_DOLLAR = 100000000n; // costs are counted in 1e-8 dollars: no float touches money
  function costUnits(text) {
    const parts = String(text || "0").split(".");
    return BigInt(parts[0] || "0") * UNITS_PER_DOLLAR + BigInt(((parts[1] || "") + "00000000").slice(0, 8));
  }
  function unitsExact(units) {
    const text = units.toString().padStart(9, "0");
    return text.slice(0, -8) + "." + text.slice(-8);
  }
  // As the `usd` template filter draws it: 5 decimals under a cent, else 4, zeros trimmed.
  function usdText(units) {
    if (units === 0n) return "$0";
    const places = units < 1000000n ? 5 : 4;
    const scale = 10n ** BigInt(8 - places);
    let kept = units / scale;
    const twice = (units % scale) * 2n;
    if (twice > scale || (twice === scale && kept % 2n === 1n)) kept += 1n; // half to even
    let text = kept.toString().padStart(places + 1, "0");
    text = (text.slice(0, -places) + "." + text.slice(-places)).replace(/0+$/, "");
    if (places === 4) text = text.replace(/\.$/, "");
    return "$" + text;
  }
  function titleUsageAdd() {
    const total = thread.querySelector(".thread-total");
    const calls = titleCalls.get(conversationId);
    if (!total || !calls) return;
    const counted = new Set((total.dataset.titleCalls || "").split(" ").filter(Boolean));
    calls.forEach(function (usage, callId) {
      if (counted.has(callId)) return;
      const add = function (selector, count) {
        const el = total.querySelector(selector);
        el.textContent = String(Number(el.textContent) + count);
      };
      add("[data-total-input]", usage.input_tokens || 0);
      add("[data-total-output]", usage.output_tokens || 0);
      if (usage.cost !== null && usage.cost !== undefined) {
        const cost = costUnits(total.dataset.cost) + costUnits(usage.cost);
        total.dataset.cost = unitsExact(cost);
        total.querySelector("[data-total-cost]").textContent = usdText(cost);
      }
      if (usage.estimated) total.querySelector("[data-total-estimated]").hidden = false;
      counted.add(callId);
    });
    total.dataset.titleCalls = Array.from(counted).join(" ");
  }

  function reloadThread() {
    if (!conversationId) return Promise.resolve();
    return fetch(urlFor(root.dataset.threadUrl, conversationId), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) {
        const stick = nearBottom();
        thread.innerHTML = html;
        decorate(thread);
        titleUsageAdd();
        if (live) {
          const el = document.getElementById("message-" + live.id);
          if (el && el.dataset.status === "streaming") queueRender();
        }
        if (stick) scrollToEnd();
        document.title = (document.getElementById("thread-title") || {}).textContent + " · AURAX";
      })
      .catch(function () {});
  }
  function showError(message) {
    let box = document.getElementById("chat-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "chat-error";
      box.className = "chat-error";
      box.setAttribute("role", "alert");
      composer.parentNode.insertBefore(box, composer);
    }
    box.textContent = message;
    box.hidden = false;
    setTimeout(function () {
      box.hidden = true;
    }, 8000);
  }
  function sidebarChanged() {
    document.body.dispatchEvent(new CustomEvent("chat:sidebar-changed"));
  }
  // The sidebar's requests name the conversation on screen, which it highlights: a new one
  // gets its id only once its first message is sent.
  function sidebarActiveSet(id) {
    const sidebar = document.getElementById("chat-sidebar");
    if (!sidebar) return;
    sidebar.dataset.activeId = String(id);
    sidebar.querySelectorAll("[hx-get]").forEach(function (el) {
      const url = new URL(el.getAttribute("hx-get"), location.href);
      url.searchParams.set("active", String(id));
      el.setAttribute("hx-get", url.pathname + url.search);
      if (window.htmx) htmx.process(el); // htmx keeps the URL it read; this makes it read again
    });
  }

  // --- Language ------------------------------------------------------------------------------
  const languageNotice = document.getElementById("language-notice");
  let leaving = false; // this tab is going (its own language change reloads it, say)
  window.addEventListener("beforeunload", function () {
    leaving = true;
  });
  window.addEventListener("pageshow", function () {
    leaving = false; // back from the cache, or a leave cancelled
  });
  function pageLanguage() {
    return (document.documentElement.lang || "").toLowerCase();
  }
  function unsavedWork() {
    if (pending || input.value.trim() || files.length) return true;
    if (Array.prototype.some.call(thread.querySelectorAll(".edit-form"), function (form) { return !form.hidden; })) {
      return true;
    }
    const active = document.activeElement;
    return !!(active && active.closest && active.closest("#chat-settings-form"));
  }
  languageNotice.addEventListener("click", function (e) {
    if (e.target.closest("[data-reload]")) location.reload();
  });

  // --- Server → client frames ------------------------------------------------------------------
  const handlers = {
    subscribed: function (f) {
      if (f.streaming_message_id) {
        const el = document.getElementById("message-" + f.streaming_message_id);
        const saved = el ? el.querySelector(".msg-source").content.textContent : "";
        if (!live || live.id !== f.streaming_message_id) live = { id: f.streaming_message_id, text: saved };
        setStreaming(true);
        if (!el) reloadThread();
      } else if (streaming) {
        // The answer ended while we were away.
        live = null;
        setStreaming(false);
        reloadThread();
      }
    },
    conversation_created: function (f) {
      conversationId = f.conversation_id;
      root.dataset.conversationId = String(conversationId);
      history.replaceState(null, "", urlFor(root.dataset.conversationUrl, conversationId));
      sidebarActiveSet(conversationId);
      sidebarChanged();
    },
    generation_started: function (f) {
      if (f.conversation_id !== conversationId) return;
      pending = null;
      live = { id: f.message_id, text: "" };
      setStreaming(true);
      reloadThread();
    },
    delta: function (f) {
      if (f.conversation_id !== conversationId) return;
      if (!live || live.id !== f.message_id) live = { id: f.message_id, text: "" };
      const have = live.text.length;
      if (f.offset > have) {
        // Frames were lost (a slow tab, a server under load): ask once for the whole text,
        // again only if no snapshot came within 2 s; later frames wait for it.
        const now = Date.now();
        if (!live.syncSent || now - live.syncSent > 2000) {
          live.syncSent = now;
          root.dataset.syncs = String(Number(root.dataset.syncs || 0) + 1);
          send({ type: "sync", conversation_id: conversationId });
        }
        return;
      }
      if (f.offset + f.text.length <= have) return; // already have it
      live.text = live.text.slice(0, f.offset) + f.text;
      setStreaming(true);
      queueRender();
    },
    snapshot: function (f) {
      if (f.conversation_id !== conversationId) return;
      if (!live || live.id !== f.message_id || f.text.length >= live.text.length) {
        live = { id: f.message_id, text: f.text };
      } else {
        live.syncSent = 0;
      }
      queueRender();
    },
    generation_finished: function (f) {
      if (f.conversation_id !== conversationId) return;
      live = null;
      setStreaming(false);
      reloadThread();
      sidebarChanged();
    },
    conversation_changed: function (f) {
      sidebarChanged();
      if (f.conversation_id === conversationId) {
        const title = document.getElementById("thread-title");
        if (title) title.textContent = f.title;
        document.title = f.title + " · AURAX";
        if (f.title_usage && f.title_usage.call_id) {
          if (!titleCalls.has(f.conversation_id)) titleCalls.set(f.conversation_id, new Map());
          titleCalls.get(f.conversation_id).set(f.title_usage.call_id, f.title_usage);
          titleUsageAdd();
        }
      }
    },
    error: function (f) {
      if (pending && f.request === "send" && f.request_id === pending.id) {
        pendingRestore(f.code !== "attachment_not_found"); // those files cannot be sent again
      }
      if (!streaming || f.code !== "busy") setStreaming(streaming && f.code === "busy");
      if (f.param) settingRefused(f.param, f.message);
      else showError(f.message || gettext("Something went wrong."));
    },
    language_changed: function (f) {
      // The user chose another language (in another tab): this socket already speaks it; the
      // page's own text is drawn in it by a reload, at once unless that would lose what is
      // being typed here (then a notice offers it).
      if (leaving || !f.language || f.language.toLowerCase() === pageLanguage()) return;
      if (unsavedWork()) languageNotice.hidden = false;
      else location.reload();
    },
    access_lost: function (f) {
      if (f.conversation_id !== conversationId) return;
      live = null;
      setStreaming(false);
      sendButton.disabled = true;
      showError(
        f.reason === "membership_ended"
          ? gettext("You no longer have access to this workspace.")
          : gettext("This conversation is no longer shared with you."),
      );
    },
    pong: function () {},
  };

  // --- Client actions ---------------------------------------------------------------------------
  function settingsValues() {
    const data = new FormData(settingsForm);
    return {
      model: data.get("model") || "",
      system_prompt: data.get("system_prompt") || "",
      temperature: data.get("temperature") === "" ? null : Number(data.get("temperature")),
      max_tokens: data.get("max_tokens") === "" ? null : Number(data.get("max_tokens")),
    };
  }

  // --- The temperature the chosen model takes ----------------------------------------------------
  // Each menu entry carries the range its providers accept (none when they take any value): the
  // input follows the entry chosen, and a value out of it, or out of the 0–2 any conversation
  // may have, is shown invalid with the reason under it and holds the send, rather than the
  // answer failing once sent. It is not saved either (the server would refuse it): the value
  // saved stays until the user types one that fits. Neither is changed behind the user's back:
  // a model chosen that cannot take the temperature saved says so, the settings opened.
  const modelPicker = document.getElementById("id_model");
  const temperature = document.getElementById("id_temperature");
  const temperatureHint = document.getElementById("temperature-hint");
  const temperatureError = document.getElementById("temperature-error");
  const temperaturePageBounds = { min: temperature.min, max: temperature.max };
  const TEMPERATURE_LOW = 0;
  const TEMPERATURE_HIGH = 2;
  function numberText(value) {
    return Number(value).toLocaleString(document.documentElement.lang || undefined);
  }
  function temperatureRange() {
    const option = modelPicker.selectedOptions[0];
    if (!option || option.dataset.temperatureMax === undefined) return null;
    return {
      model: option.textContent.trim(),
      low: Number(option.dataset.temperatureMin),
      high: Number(option.dataset.temperatureMax),
    };
  }
  // Why the value typed cannot be saved (as the server says it), or "".
  function temperatureProblem() {
    const value = temperature.valueAsNumber;
    if (temperature.validity.badInput || (!isNaN(value) && (value < TEMPERATURE_LOW || value > TEMPERATURE_HIGH))) {
      return interpolate(
        gettext("The temperature must be a number from %(low)s to %(high)s."),
        { low: numberText(TEMPERATURE_LOW), high: numberText(TEMPERATURE_HIGH) },
        true,
      );
    }
    const range = temperatureRange();
    if (range && !isNaN(value) && (value < range.low || value > range.high)) {
      return interpolate(
        gettext("The model “%(model)s” accepts a temperature from %(low)s to %(high)s, not %(temperature)s."),
        { model: range.model, low: numberText(range.low), high: numberText(range.high), temperature: numberText(value) },
        true,
      );
    }
    return "";
  }
  function temperatureSay(message) {
    temperature.setCustomValidity(message);
    temperatureError.textContent = message;
    temperatureError.hidden = !message;
  }
  function temperatureCheck() {
    temperatureSay(temperatureProblem());
    return !temperature.validity.customError;
  }
  function settingsOpen() {
    document.getElementById("chat-settings").open = true;
  }
  function temperatureFollowModel() {
    const range = temperatureRange();
    temperature.min = range ? range.low : temperaturePageBounds.min;
    temperature.max = range ? range.high : temperaturePageBounds.max;
    temperatureHint.textContent = range
      ? interpolate(gettext("%(low)s–%(high)s for this model"), { low: numberText(range.low), high: numberText(range.high) }, true)
      : "";
    if (!temperatureCheck()) settingsOpen(); // the temperature saved does not fit this model
  }
  modelPicker.addEventListener("change", temperatureFollowModel);
  temperature.addEventListener("input", temperatureCheck);
  temperatureFollowModel();
  function temperatureRefused() {
    if (!temperature.validity.customError) return false;
    settingsOpen();
    temperature.reportValidity();
    showError(temperature.validationMessage);
    return true;
  }
  // The server refused a setting (nothing was saved): said where it was typed.
  function settingRefused(param, message) {
    settingsOpen();
    if (param === "temperature") {
      temperatureSay(message);
      temperature.reportValidity();
    }
    showError(message);
  }

  // --- Files for the next message (chat.attachments) --------------------------------------------
  // Each is uploaded as soon as it is chosen, dropped or pasted; the message then names them
  // by id. The server says what it accepts and why it refuses a file; the size is checked here
  // first only to spare a long upload.
  const fileInput = document.getElementById("composer-file");
  const fileList = document.getElementById("composer-files");
  function filesUploading() {
    return files.some(function (f) { return f.state === "uploading"; });
  }
  function drawFiles() {
    fileList.replaceChildren();
    files.forEach(function (f, index) {
      const item = document.createElement("li");
      item.className = "composer-file " + f.state;
      item.dataset.state = f.state;
      if (f.state === "ready") item.dataset.attachmentId = String(f.id); // read by estimate.js
      if (f.state === "ready" && f.kind === "image") {
        const img = document.createElement("img");
        img.src = f.url;
        img.alt = "";
        item.appendChild(img);
      }
      const name = document.createElement("span");
      name.className = "file-name";
      name.textContent = f.name;
      item.appendChild(name);
      if (f.state !== "ready") {
        const state = document.createElement("span");
        state.className = "file-state";
        state.textContent = f.state === "uploading" ? gettext("uploading…") : f.error;
        if (f.state === "failed") state.setAttribute("role", "alert");
        item.appendChild(state);
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "small";
      remove.dataset.fileRemove = String(index);
      remove.setAttribute("aria-label", interpolate(gettext("Remove %(name)s"), { name: f.name }, true));
      remove.textContent = "×";
      item.appendChild(remove);
      fileList.appendChild(item);
    });
    fileList.hidden = !files.length;
    sendButton.disabled = streaming || filesUploading();
    document.dispatchEvent(new CustomEvent("chat:files-changed"));
  }
  function fileUpload(file) {
    const entry = { name: file.name || gettext("pasted image"), state: "uploading" };
    files.push(entry);
    if (file.size > Number(composer.dataset.maxBytes)) {
      entry.state = "failed";
      entry.error = gettext("The file is too large.");
      drawFiles();
      return;
    }
    drawFiles();
    const body = new FormData();
    body.append("file", file, entry.name);
    body.append("workspace", root.dataset.workspace);
    fetch(composer.dataset.uploadUrl, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    })
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) throw new Error((data.error && data.error.message) || String(r.status));
          Object.assign(entry, { state: "ready", id: data.id, kind: data.kind, url: data.url });
          if (files.indexOf(entry) < 0) fileDelete(entry); // removed while it was uploading
        });
      })
      .catch(function (err) {
        entry.state = "failed";
        entry.error = err instanceof SyntaxError || err instanceof TypeError
          ? gettext("The upload failed; check the connection and try again.")
          : err.message;
      })
      .then(drawFiles);
  }
  function filesAdd(list) {
    Array.prototype.forEach.call(list, fileUpload);
  }
  document.getElementById("attach-button").addEventListener("click", function () {
    fileInput.click();
  });
  fileInput.addEventListener("change", function () {
    filesAdd(fileInput.files);
    fileInput.value = "";
  });
  fileList.addEventListener("click", function (e) {
    const button = e.target.closest("[data-file-remove]");
    if (!button) return;
    const [removed] = files.splice(Number(button.dataset.fileRemove), 1);
    drawFiles();
    if (removed && removed.id) fileDelete(removed);
    input.focus();
  });
  // Not kept for nothing: an upload taken back is deleted (else it goes after a day).
  function fileDelete(entry) {
    fetch(urlFor(composer.dataset.deleteUrl, entry.id), {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    }).catch(function () {});
  }
  input.addEventListener("paste", function (e) {
    const pasted = e.clipboardData && e.clipboardData.files;
    if (pasted && pasted.length) {
      e.preventDefault();
      filesAdd(pasted);
    }
  });
  composer.addEventListener("dragover", function (e) {
    if (!e.dataTransfer || Array.prototype.indexOf.call(e.dataTransfer.types, "Files") < 0) return;
    e.preventDefault();
    composer.classList.add("dropping");
  });
  composer.addEventListener("dragleave", function () {
    composer.classList.remove("dropping");
  });
  composer.addEventListener("drop", function (e) {
    composer.classList.remove("dropping");
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    filesAdd(e.dataTransfer.files);
  });

  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    const content = input.value;
    const ready = files.filter(function (f) { return f.state === "ready"; });
    if ((!content.trim() && !ready.length) || streaming || temperatureRefused()) return;
    if (filesUploading()) {
      showError(gettext("Wait until the files are uploaded."));
      return;
    }
    const frame = Object.assign({ type: "send", content: content, request_id: ++requestCounter }, settingsValues());
    if (ready.length) frame.attachments = ready.map(function (f) { return f.id; });
    if (conversationId) frame.conversation_id = conversationId;
    else frame.workspace = root.dataset.workspace; // a new conversation lives where the page is
    if (send(frame)) {
      pending = { id: frame.request_id, content: content, files: ready };
      composerSet("");
      files = [];
      drawFiles();
      setStreaming(true);
    }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });
  stopButton.addEventListener("click", function () {
    if (conversationId) send({ type: "stop", conversation_id: conversationId });
  });
  settingsForm.addEventListener("submit", function (e) {
    e.preventDefault();
  });
  function saveSettings() {
    if (!conversationId) return;
    const body = new URLSearchParams();
    const values = settingsValues();
    // A temperature shown invalid is left out: the one saved stays (the field says why).
    if (temperature.validity.customError) delete values.temperature;
    Object.keys(values).forEach(function (k) {
      body.append(k, values[k] === null ? "" : values[k]);
    });
    fetch(urlFor(root.dataset.settingsUrl, conversationId), {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    })
      .then(function (r) {
        if (r.status !== 400) return;
        return r.json().then(function (data) {
          const error = (data && data.error) || {};
          settingRefused(error.param, error.message || gettext("Something went wrong."));
        });
      })
      .catch(function () {});
  }
  document.addEventListener("change", function (e) {
    if (e.target.closest("#chat-settings")) saveSettings();
  });

  thread.addEventListener("click", function (e) {
    const target = e.target.closest("button");
    if (!target) return;
    const message = target.closest(".msg");
    if (target.matches(".copy-code")) {
      const code = target.parentNode.querySelector("code") || target.parentNode;
      navigator.clipboard.writeText(code.textContent).then(function () {
        target.textContent = gettext("Copied");
        setTimeout(function () { target.textContent = gettext("Copy"); }, 1500);
      });
    } else if (target.matches("[data-copy-message]")) {
      navigator.clipboard.writeText(message.querySelector(".msg-source").content.textContent).then(function () {
        target.textContent = gettext("Copied");
        setTimeout(function () { target.textContent = gettext("Copy"); }, 1500);
      });
    } else if (target.matches("[data-regenerate]")) {
      if (streaming) return;
      send({ type: "regenerate", message_id: Number(target.dataset.regenerate) });
      setStreaming(true);
    } else if (target.matches("[data-edit]")) {
      const form = message.querySelector(".edit-form");
      form.hidden = !form.hidden;
      if (!form.hidden) form.querySelector("textarea").focus();
    } else if (target.matches("[data-edit-cancel]")) {
      message.querySelector(".edit-form").hidden = true;
    } else if (target.matches("[data-branch]") && target.dataset.branch) {
      const body = new URLSearchParams({ message_id: target.dataset.branch });
      fetch(urlFor(root.dataset.branchUrl, conversationId), {
        method: "POST",
        body: body,
        headers: { "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
      })
        .then(function (r) {
          if (!r.ok) throw new Error(r.status);
          return r.text();
        })
        .then(function (html) {
          thread.innerHTML = html;
          decorate(thread);
          titleUsageAdd();
        })
        .catch(function () {
          showError(gettext("Cannot switch versions while an answer is being generated."));
        });
    }
  });
  thread.addEventListener("submit", function (e) {
    const form = e.target.closest(".edit-form");
    if (!form) return;
    e.preventDefault();
    if (streaming) return;
    const content = form.querySelector("textarea").value;
    if (!content.trim()) return;
    if (send({ type: "edit", message_id: Number(form.dataset.editForm), content: content })) setStreaming(true);
  });

  // A conversation's menu opens inside the sidebar's scrolling list: brought into view whole
  // (the list may be a few rows high), and the only one open. While one is open, the list is
  // not read again for what happened elsewhere (a title arriving, another tab's chat): that
  // would close the menu under the user, and drop a new title being typed. It is read again
  // when the menu closes. What the menu itself did (rename, pin, delete) shows at once.
  let sidebarStale = false;
  document.addEventListener("toggle", function (e) {
    const menu = e.target;
    if (!menu.matches || !menu.matches(".conversation-menu")) return;
    if (!menu.open) {
      if (sidebarStale && !document.querySelector(".conversation-menu[open]")) {
        sidebarStale = false;
        sidebarChanged();
      }
      return;
    }
    document.querySelectorAll(".conversation-menu[open]").forEach(function (other) {
      if (other !== menu) other.open = false;
    });
    menu.querySelector(".menu").scrollIntoView({ block: "nearest" });
  }, true);
  document.body.addEventListener("htmx:confirm", function (e) {
    if (e.target.id !== "conversation-list") return;
    const cause = e.detail.triggeringEvent;
    const open = document.querySelector(".conversation-menu[open]");
    if (open && cause && cause.type === "chat:sidebar-changed" && !open.contains(cause.target)) {
      e.preventDefault();
      sidebarStale = true;
    }
  });

  // Deleting the conversation on screen leaves it.
  document.body.addEventListener("htmx:afterRequest", function (e) {
    const form = e.target.closest && e.target.closest("[data-delete-conversation]");
    if (form && e.detail.successful && Number(form.dataset.deleteConversation) === conversationId) {
      location.href = "/";
    }
  });

  setInterval(function () {
    if (!socket || !socket.send('{"type":"ping"}')) return;
    // An answer streaming with nothing heard for a while may have ended unseen (its end was
    // published while the channel layer was down, for a tab on another server process):
    // subscribing again says whether it still streams (`subscribed`, then a snapshot).
    if (streaming && conversationId && Date.now() - heardAt > QUIET_RESUBSCRIBE_MS) {
      heardAt = Date.now();
      send({ type: "subscribe", conversation_id: conversationId });
    }
  }, 25000);

  setStreaming(streaming);
  decorate(thread);
  scrollToEnd();
  connect();
})();
