"""The ROS 2 side of the package: the only place that imports rclpy and ROS message types."""
