"""EgoMem's dialog process. Built so far: the `external` mode (MemChunks become a system prompt for the
robot's own dialog stack). The moshi-family runtime and the cascaded mode are not built yet."""
