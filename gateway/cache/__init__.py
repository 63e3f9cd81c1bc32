"""The exact-match response cache, and cached answers replayed as streams."""
