"""GraphQL allocation_group domain."""
