"""lewm_training: MuJoCo tasks, data collection, LeWM training, evaluation and export.

Kept out of the robot runtime: ``lewm_ros`` never imports this package.
"""
