"""The HTTP side: thin handlers over the service, problem+json errors, the OpenAPI document."""
