"""GraphQL position domain."""
