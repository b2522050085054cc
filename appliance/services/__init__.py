"""Use cases shared by the web API and the command line: domain rules plus storage."""
