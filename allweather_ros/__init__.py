"""allweather_ros: language-driven all-in-one adverse weather removal for ROS 2 cameras."""
