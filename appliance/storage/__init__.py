"""The only code that talks SQL: one module per aggregate."""
