"""ETNA Trader Web API adapter: client (raw HTTP), auth (tokens), filters (pushed-down filter
expressions), parsing (wire → domain), errors (wire errors → the error tree), adapter."""
