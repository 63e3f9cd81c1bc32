"""`steerway demo-data`: a made-up but realistic history written straight into the database."""
