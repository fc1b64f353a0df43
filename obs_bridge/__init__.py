"""Everything OBS: a script for OBS's Scripts dialog and an obs-websocket client."""
