"""Audio sources for ``streamtag live``: thin adapters that deliver mono float32 blocks at the model's sample
rate, in order, from ``async for block in source.blocks()``. One concept per module:

* ``base``: ``Source``, what every source is (its counters are ``core.stats.CaptureStats``).
* ``ring``: ``RingBuffer``, between the audio callback's thread and the consumer.
* ``portaudio``: loading PortAudio (sounddevice) and listing its input devices.
* ``pulse``: PulseAudio/PipeWire through ``pactl``: sources, sink monitors, the monitor to record.
* ``device``: ``DeviceSource``, an input device (microphone or loopback) through PortAudio.
* ``loopback``: which input records what the machine plays, on Linux, Windows and macOS.
* ``files``: ``FileSource`` (an audio file) and ``DemoSource`` (the bundled demo recordings, looping).
* ``stdin``: ``StdinSource``, raw PCM from a pipe.
* ``network``: ``NetworkSource``, an audio stream from a URL (Icecast, HLS, RTSP), decoded by PyAV on a thread.
* ``choice``: ``SourceSpec`` and ``open_source``, the command line's choice of source.
"""
