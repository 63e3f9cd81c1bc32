"""The application composed at the top: the app factory, the CLI and the worker put the gateway
and the console together."""
