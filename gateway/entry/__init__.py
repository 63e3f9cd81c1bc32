"""The proxy's HTTP side: authentication, reading and validating the body, answers and their
headers, client connections, `/metrics`."""
