"""The inbound APIs besides chat (`/v1/messages`, `/v1/responses`, `/v1/completions`), translated
onto the chat pipeline."""
