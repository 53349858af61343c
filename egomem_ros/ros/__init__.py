"""rclpy glue: the only subpackage that imports ROS. Every decision lives in the ROS-free core."""
