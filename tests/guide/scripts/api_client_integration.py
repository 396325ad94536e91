from dc_api_x import ApiClient, enable_plugins

# Enable plugins to discover custom adapters
enable_plugins()

# Create client with custom adapter
client = ApiClient(
    url="protocol://example.com",
    adapter="custom_protocol",  # Use registered adapter by name
    adapter_options={"key": "value"}  # Pass options to adapter
)

# Use the client with custom protocol
response = client.get("resource")
