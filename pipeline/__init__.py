"""The render pipeline: sources, face tracking, alignment, compositing, sinks.

This is the bottom layer; it never imports ``models`` or ``plugin``. A stylizer is known here
only through the small :class:`pipeline.stylizer.Stylizer` protocol.
"""
