"""GraphQL connection domain."""
