"""The camera room: a camera message or image file becomes the model's input here, once.

:class:`CameraPipeline` decodes (every standard sensor_msgs encoding, or jpeg/png), crops and
resizes; planner_node and the data importers use the same instance type, so training and
deployment see identical pixels. No ROS imports: messages are read by attribute.
"""
from lewm_ros.camera.crop import CropConfig, crop_and_resize
from lewm_ros.camera.decoding import ImageDecodeError, decoder_name
from lewm_ros.camera.pipeline import CameraPipeline, load_image_file

__all__ = ['CameraPipeline', 'CropConfig', 'ImageDecodeError', 'crop_and_resize', 'decoder_name', 'load_image_file']
