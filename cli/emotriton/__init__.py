"""The emotriton command line."""
