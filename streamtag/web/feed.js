/* The feed client shared by the dashboard and the overlay.
 *
 * It connects to the websocket feed of the server the page was loaded from, parses each JSON message and
 * hands it to the page, and reconnects with exponential backoff (jittered, capped) whenever the connection
 * closes, for instance when the tagger is restarted. It renders nothing; the pages decide what to show.
 *
 * Connection states reported through onState, also the page's `#state` data-state values:
 *   connecting    no connection has been made yet
 *   waiting       connected, but no scores for STALE_AFTER_MS (the tagger is starting, or its source stalled)
 *   live          connected, the latest scores are not silent
 *   silent        connected, the latest scores are flagged silent
 *   source-down   connected, but the tagger's source lost its input and is being reopened (detail.why); from a
 *                 source_down event, or the hello of a feed whose source is down; its source_up means waiting
 *   disconnected  the connection closed; a retry is scheduled (detail.retryAt, a Date.now() time)
 *
 * Classic script, no modules: a module script is refused unless the server sends a JavaScript MIME type, and
 * the pages should not depend on that. Exposes `window.streamtag`.
 */
(function () {
  "use strict";

  const RECONNECT_FIRST_MS = 500;
  const RECONNECT_MAX_MS = 8000;
  const RECONNECT_JITTER = 0.2; // each wait is scaled by a random factor in [1 - j, 1 + j]
  const STALE_AFTER_MS = 5000;
  const FEED_PATH = "/";
  const SCHEMA_VERSION = 3; // streamtag/core/messages.py SCHEMA_VERSION; newer feeds only add fields, so they still render

  // A genre's colour comes from the feed: hello.label_colors (streamtag/core/colours.py), so the terminal, the
  // pages and other apps agree. A label the hello does not colour (an older feed) is neutral grey.
  const NEUTRAL_COLOR = "#9aa4b2";

  function colorFor(label, colors) {
    if (colors && Object.prototype.hasOwnProperty.call(colors, label)) return colors[label];
    return NEUTRAL_COLOR;
  }

  /** A colour for a taste probability, from cool (dislike) to warm (like). */
  function tasteColor(p) {
    return `hsl(${Math.round(210 - 170 * p)} 85% 60%)`;
  }

  /** The feed's URL: the server this page came from, unless `?feed=ws://host:port/` overrides it. */
  function feedUrl() {
    const override = new URLSearchParams(window.location.search).get("feed");
    if (override) return override;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${FEED_PATH}`;
  }

  /** Human names for labels such as "joyful_activation" or "hiphop". */
  function displayName(label) {
    if (label === "hiphop") return "hip-hop";
    return String(label).replace(/_/g, " ");
  }

  function isNumber(x) {
    return typeof x === "number" && Number.isFinite(x);
  }

  /** A fixed-capacity FIFO: pushing onto a full ring drops the oldest item. */
  class Ring {
    constructor(capacity) {
      this.capacity = Math.max(1, Math.floor(capacity));
      this.items = [];
    }
    push(item) {
      this.items.push(item);
      if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
    }
    resize(capacity) {
      this.capacity = Math.max(1, Math.floor(capacity));
      if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
    }
    get length() {
      return this.items.length;
    }
    last() {
      return this.items[this.items.length - 1];
    }
  }

  /**
   * Connect and stay connected. handlers: onHello(msg), onScores(msg), onEvent(msg), onState(state, detail).
   * Returns an object with close(), for tests and for pages that want to stop.
   */
  function connect(handlers) {
    const url = feedUrl();
    let socket = null;
    let retryTimer = null;
    let staleTimer = null;
    let delayMs = RECONNECT_FIRST_MS;
    let attempts = 0;
    let everOpened = false;
    let closed = false;
    let lastState = null;

    function report(state, detail) {
      const info = Object.assign({ url, attempts }, detail || {});
      if (state === lastState && !info.force) return;
      lastState = state;
      if (handlers.onState) handlers.onState(state, info);
    }

    function armStaleTimer() {
      clearTimeout(staleTimer);
      staleTimer = setTimeout(() => report("waiting"), STALE_AFTER_MS);
    }

    // No scores are due while the source is down: "waiting" would say less than this state does.
    function sourceDown(why) {
      clearTimeout(staleTimer);
      report("source-down", { why: typeof why === "string" ? why : "" });
    }

    function open() {
      retryTimer = null;
      attempts += 1;
      if (!everOpened) report("connecting");
      try {
        socket = new WebSocket(url);
      } catch (err) {
        console.warn("streamtag: cannot open the feed", url, err);
        scheduleRetry();
        return;
      }
      socket.onopen = () => {
        everOpened = true;
        report("waiting");
        armStaleTimer();
      };
      socket.onmessage = (event) => {
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch (err) {
          console.warn("streamtag: a feed message is not JSON", err);
          return;
        }
        if (!msg || typeof msg !== "object") return;
        // A message proves the server is really serving: only now is the backoff reset, so a server that
        // accepts and closes at once is still retried at a growing interval.
        delayMs = RECONNECT_FIRST_MS;
        if (msg.type === "hello") {
          if (handlers.onHello) handlers.onHello(msg);
          if (typeof msg.source_down === "string") sourceDown(msg.source_down);
        } else if (msg.type === "scores") {
          armStaleTimer();
          report(msg.silent ? "silent" : "live");
          if (handlers.onScores) handlers.onScores(msg);
        } else if (msg.type === "event") {
          if (msg.kind === "source_down") {
            sourceDown(msg.detail);
          } else if (msg.kind === "source_up") {
            report("waiting");
            armStaleTimer();
          }
          if (handlers.onEvent) handlers.onEvent(msg);
        } else if (msg.type === "ack") {
          if (handlers.onAck) handlers.onAck(msg);
        }
      };
      socket.onerror = () => {
        // Always followed by a close event, where the retry is scheduled.
      };
      socket.onclose = () => {
        socket = null;
        clearTimeout(staleTimer);
        if (!closed) scheduleRetry();
      };
    }

    function scheduleRetry() {
      const jitter = 1 - RECONNECT_JITTER + 2 * RECONNECT_JITTER * Math.random();
      const waitMs = Math.round(delayMs * jitter);
      delayMs = Math.min(delayMs * 2, RECONNECT_MAX_MS);
      report("disconnected", { retryAt: Date.now() + waitMs, force: true });
      retryTimer = setTimeout(open, waitMs);
    }

    open();
    return {
      url,
      /** Send a message (a label); false when the feed is not connected. */
      send(message) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(JSON.stringify(message));
        return true;
      },
      close() {
        closed = true;
        clearTimeout(retryTimer);
        clearTimeout(staleTimer);
        if (socket) socket.close();
      },
    };
  }

  // Where a genre would be shown while none is claimed: silence, or what scores' `state` (schema 3) says plays.
  const NO_GENRE_TEXTS = ["silence", "speech", "unsure"];
  function noGenreText(msg) {
    if (msg.silent) return "silence";
    return msg.state === "speech" || msg.state === "unsure" ? msg.state : "–";
  }

  window.streamtag = {
    SCHEMA_VERSION, STALE_AFTER_MS, NO_GENRE_TEXTS, connect, feedUrl, colorFor, tasteColor, displayName, isNumber,
    noGenreText, Ring,
  };
})();
