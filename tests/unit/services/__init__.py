"""Unit tests of the tier services that need no server."""
