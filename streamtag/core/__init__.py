"""The streaming core: samples in; windows, scores, smoothed decisions and feed messages out.

The rule of this folder: no I/O, no clocks, no threads, and no imports beyond the standard library, numpy and
``streamtag.core`` itself. A model reaches the core through the ``scorer.Scorer`` protocol (``streamtag.engine``
implements it with onnxruntime; the tests with a few lines of numpy), sources and sinks through the arrays and
dicts that these functions take and return.

- ``windows``   sliding-window arithmetic over a growing stream, and which samples a window's new frames read
- ``scorer``    what the core needs of a model: its facts, and a per-stream scorer of consecutive windows
- ``tagger``    samples -> scored windows (``WindowScores``), batched; clip summaries
- ``smoothing`` EMA, hysteresis on the top label, the silence gate
- ``messages``  the feed's messages (hello, scores, event, ack): the schema in docs/feed.schema.json
- ``hops``      one scored window -> the feed messages of that hop (smoothing, events, sequence numbers)
"""
