// Server-Sent Events read with fetch(), so that the Authorization header is sent (EventSource
// cannot send headers). SSEParser follows the WHATWG event-stream rules; followEvents
// reconnects with Last-Event-ID until the stream's `end` event.

import { ApiError, authorizedFetch, readError } from "./api.js";

/**
 * Incremental event-stream parser. push() takes text in chunks of any size (a line, a field
 * or a CRLF may be split across chunks); onEvent receives {type, data, id} per event.
 */
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.started = false;
    this.type = "";
    this.data = [];
    this.lastEventId = "";
    this.retry = null;
  }

  push(text) {
    this.buffer += text;
    if (!this.started && this.buffer.length) {
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
      this.started = true;
    }
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    let match;
    while ((match = lineEnd.exec(this.buffer)) !== null) {
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, match.index));
      start = lineEnd.lastIndex;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** The stream ended: a pending CR ends its line; an event without its blank line is dropped. */
  finish() {
    if (this.buffer.endsWith("\r")) this.line(this.buffer.slice(0, -1));
    this.buffer = "";
    this.type = "";
    this.data = [];
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // a comment, e.g. ": keep-alive"
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }

  dispatch() {
    const type = this.type || "message";
    const data = this.data;
    this.type = "";
    this.data = [];
    if (data.length === 0) return;
    this.onEvent({ type, data: data.join("\n"), id: this.lastEventId });
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * Follow an event stream until its `end` event: handlers[type](data, id) for each event, data
 * parsed from JSON. A dropped connection is resumed with Last-Event-ID after `retryMs` (or the
 * server's `retry:`). handlers.open() is called each time the stream opens and
 * handlers.interrupted(error) when it drops; a 4xx answer rejects with ApiError.
 */
export async function followEvents(url, handlers, { signal, retryMs = 2000 } = {}) {
  let lastEventId = "";
  let retry = retryMs;
  while (!signal?.aborted) {
    let ended = false;
    try {
      const headers = { Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await authorizedFetch(url, { headers, signal, cache: "no-store" });
      if (response.status === 204) return; // the Last-Event-ID was the stream's end
      if (!response.ok) throw await readError(response);
      handlers.open?.();
      const parser = new SSEParser((event) => {
        lastEventId = event.id || lastEventId;
        const handle = handlers[event.type];
        if (handle) handle(JSON.parse(event.data), event.id);
        if (event.type === "end") ended = true;
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
      if (ended) await reader.cancel();
      else parser.finish();
      retry = parser.retry ?? retry;
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof ApiError && error.status < 500) throw error;
      handlers.interrupted?.(error);
    }
    if (ended) return;
    await sleep(retry, signal);
  }
}
