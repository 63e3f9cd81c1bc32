"""The configuration: the config file and its sections, the defaults, process settings."""
