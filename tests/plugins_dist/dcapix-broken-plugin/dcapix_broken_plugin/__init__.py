"""Misbehaving dc-api-x test plugins (one module per failure mode)."""
