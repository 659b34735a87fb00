"""Objects already in S3: lifecycle rules per tenant, and server-side moves into archive classes."""
