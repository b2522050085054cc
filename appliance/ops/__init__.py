"""Day-2 operations: backups, restoration and the checks of `appliance doctor`."""
