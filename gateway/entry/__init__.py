"""The proxy's HTTP side: authentication and keys, errors in OpenAI's shape, body reading and
validation, client connections, `/metrics`."""
