"""The public API a host program calls, and the ``facestyle`` command line."""
