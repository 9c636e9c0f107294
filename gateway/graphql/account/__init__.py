"""GraphQL account domain."""
