"""Test support: real local servers (HTTP on 127.0.0.1, PostgreSQL) for the suite."""
