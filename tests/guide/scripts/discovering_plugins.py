import dc_api_x as apix

# Discover and load all plugins
apix.enable_plugins()

# Get a specific adapter from a plugin
oracle_adapter = apix.get_adapter("oracle_db")

# Check available adapters
adapters = apix.list_adapters()
print(f"Available adapters: {', '.join(adapters)}")
