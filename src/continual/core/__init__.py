"""The pure core: types, errors, policy and statistics. Imports no framework."""
