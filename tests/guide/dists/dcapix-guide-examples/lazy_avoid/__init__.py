# Avoid - eager import
from .heavy_adapter import HeavyAdapter  # Imported at module load time

def register_adapters(registry):
    registry["heavy"] = HeavyAdapter
