"""Identity: bearer-token validation (B2C and External ID) and the embedded dev provider."""
