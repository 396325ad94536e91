# tests/test_plugin.py
def test_plugin_adapter():
    """Test the plugin adapter with a mock client."""
    # Create mock client
    mock_client = MagicMock()
    mock_client.make_request.return_value = {"success": True}
    
    # Create adapter with mock client
    adapter = TestableAdapter(client=mock_client)
    
    # Test the adapter
    result = adapter.request("GET", "/test")
    
    # Verify results
    assert result["success"] is True
    mock_client.make_request.assert_called_once_with("GET", "/test")


# --- supplied: the imports the guide leaves out (not part of the guide's text) --------------------
from unittest.mock import MagicMock  # noqa: E402

from testing_plugin.adapter import TestableAdapter  # noqa: E402

TestableAdapter.__test__ = False  # an adapter, not a pytest test class
