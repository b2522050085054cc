"""Real network services (a private OpenLDAP server) that the test suite runs."""
