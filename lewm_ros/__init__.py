"""lewm_ros: real-robot latent planning with LeWorldModel (LeWM) on ROS 2.

Subpackages: ``model`` (torch modules, loss, checkpoint I/O), ``runtime``
(TensorRT / ONNX Runtime / torch backends), ``planning`` (CEM, MPC) -- none of
them imports ROS -- and ``ros`` (the thin ROS 2 layer).
"""
__version__ = '0.1.0'
