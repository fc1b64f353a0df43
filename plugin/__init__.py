"""The public API a host program calls, and the ``facestyle`` command line."""

from plugin.threads import wait_passively

# Before anything below plugin imports torch: OpenMP reads its wait policy once, on load.
wait_passively()
