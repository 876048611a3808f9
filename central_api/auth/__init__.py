"""Authentication, authorization and audit: who is calling, and may they do this."""
