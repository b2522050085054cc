"""Pure rules of the appliance: no I/O, no framework."""
