"""The dashboard's SSE parser (static/js/sse.js) run in Chromium on the live-event contract's
wire format, cut into chunks at every offset."""

from __future__ import annotations

import json

from .conftest import Tab

# As sse-starlette writes it: CRLF line ends, a keep-alive comment, ids, JSON data.
WIRE = (
    "id: 17-0\r\nevent: status\r\n"
    'data: {"status": "running", "attempts": 1, "error": null}\r\n\r\n'
    ": keep-alive\r\n\r\n"
    "id: 17-1\r\nevent: metrics\r\n"
    'data: {"points": [{"key": "batch_loss", "step": 1, "value": 2.25, "timestamp": 1.5}]}'
    "\r\n\r\n"
    "retry: 1500\nid: 17-2\nevent: progress\n"
    'data: {"iteration": 5, "total": 10, "iterations_per_second": null, "eta_seconds": null}'
    "\n\n"
    "id: 17-3\revent: end\r"
    'data: {"status": "succeeded", "attempts": 1, "error": null,\r'
    'data:  "metrics": {"test_accuracy": 0.5}}\r\r'
    "event: ignored-without-blank-line\ndata: {}"
)
EXPECTED = [
    {"type": "status", "id": "17-0",
     "data": {"status": "running", "attempts": 1, "error": None}},
    {"type": "metrics", "id": "17-1",
     "data": {"points": [{"key": "batch_loss", "step": 1, "value": 2.25, "timestamp": 1.5}]}},
    {"type": "progress", "id": "17-2",
     "data": {"iteration": 5, "total": 10, "iterations_per_second": None, "eta_seconds": None}},
    {"type": "end", "id": "17-3", "data": {"status": "succeeded", "attempts": 1, "error": None,
                                           "metrics": {"test_accuracy": 0.5}}},
]

PARSE_IN_CHUNKS = """
async ([wire, cut]) => {
  const { SSEParser } = await import("/dashboard/static/js/sse.js");
  const events = [];
  const parser = new SSEParser((e) => events.push({type: e.type, id: e.id,
                                                   data: JSON.parse(e.data)}));
  parser.push(wire.slice(0, cut));
  parser.push(wire.slice(cut));
  parser.finish();
  return {events, retry: parser.retry};
}
"""


def test_the_parser_reads_the_contract_wherever_the_chunks_are_cut(serve, tab: Tab):
    server = serve(env={"DROPNET_WORKERS": "0"})
    tab.page.goto(server.url + "/")
    for cut in range(len(WIRE) + 1):
        parsed = tab.page.evaluate(PARSE_IN_CHUNKS, [WIRE, cut])
        assert parsed["events"] == EXPECTED, f"cut at {cut}: {json.dumps(parsed)}"
        assert parsed["retry"] == 1500


def test_a_byte_at_a_time_and_a_bom(serve, tab: Tab):
    server = serve(env={"DROPNET_WORKERS": "0"})
    tab.page.goto(server.url + "/")
    events = tab.page.evaluate("""async (wire) => {
      const { SSEParser } = await import("/dashboard/static/js/sse.js");
      const events = [];
      const parser = new SSEParser((e) => events.push({type: e.type, id: e.id,
                                                       data: JSON.parse(e.data)}));
      for (const ch of wire) parser.push(ch);
      return events;
    }""", "\ufeff" + WIRE)
    assert events == EXPECTED
