"""GraphQL order domain."""
