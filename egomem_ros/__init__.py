"""egomem_ros: lifelong memory of people for ROS 2 robots (EgoMem, arXiv 2509.11914).

The core (everything outside `egomem_ros.ros`) is ROS-free and imports no torch at import time.
"""
__version__ = "0.1.0"
