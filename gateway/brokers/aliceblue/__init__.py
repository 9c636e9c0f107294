"""Alice Blue ANT API v2 ("A3" Open API, ``open-api/od/v1/``): client, parsing, errors, adapter."""
