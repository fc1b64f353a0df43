"""Everything OBS: a script for OBS's Scripts dialog and an obs-websocket client.

- ``obs_bridge/obs_facestyle.py``: load it in OBS (Tools > Scripts > +). It starts
  ``facestyle live`` in its own process, streaming to a loopback UDP port, adds a Media
  Source named "facestyle" that plays the stream, switches style through facestyle's control
  endpoint, and stops facestyle cleanly when asked or when OBS closes.
- :mod:`obs_bridge.client`: :class:`~obs_bridge.client.ObsBridge` drives a running OBS over
  obs-websocket 5 (``pip install 'facestyle[obs]'``): add or update that Media Source, take a
  screenshot, remove it. ``python -m obs_bridge.client udp://127.0.0.1:9999`` from a shell.
- :mod:`obs_bridge.settings`: the Media Source settings both share (standard library only,
  so OBS's own Python can import it).
"""
