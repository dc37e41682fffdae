// A page's WebSocket, as the chat and comparison pages keep theirs: JSON frames, the page's
// banner shown while it is down, reconnection with backoff (0.5 s doubling up to 30 s, with
// jitter), and a reload when the server closes it as signed out (4401: the login page).
// `root.dataset.socket` says "open" or "closed" (the browser tests wait on it).
(function () {
  "use strict";
  window.auraxSocket = function (options) {
    // options: root, banner (elements), path() (the path to open, asked at every attempt),
    // onOpen(), onFrame(frame), onClose() (each optional but onFrame).
    let socket = null;
    let attempts = 0;
    function connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + options.path());
      socket.addEventListener("open", function () {
        attempts = 0;
        options.banner.hidden = true;
        options.root.dataset.socket = "open";
        if (options.onOpen) options.onOpen();
      });
      socket.addEventListener("message", function (e) {
        let frame;
        try {
          frame = JSON.parse(e.data);
        } catch (err) {
          return;
        }
        options.onFrame(frame);
      });
      socket.addEventListener("close", function (e) {
        options.root.dataset.socket = "closed";
        if (options.onClose) options.onClose();
        if (e.code === 4401) {
          location.reload();
          return;
        }
        options.banner.hidden = false;
        const delay = Math.min(30000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
        attempts += 1;
        setTimeout(connect, delay);
      });
    }
    connect();
    return {
      // Sends the frame if the socket is open; says whether it did.
      send: function (frame) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
        return true;
      },
    };
  };
})();
