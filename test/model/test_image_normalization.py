"""Image normalisation, written once over the array API: numpy in -> numpy out (the planner, no
torch), torch in -> torch out on its device (training), the same numbers either way."""
import numpy as np
import pytest
import torch

from lewm_ros.model.image_normalization import IMAGENET_MEAN, IMAGENET_STD, normalize_images


def test_numpy_and_torch_give_the_same_numbers():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    host = normalize_images(images)
    assert isinstance(host, np.ndarray) and host.dtype == np.float32 and host.shape == (2, 3, 8, 8)
    tensor = normalize_images(torch.from_numpy(images))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(host, tensor.numpy())
    want = (images[0, 3, 5, 1] / 255.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]
    assert host[0, 1, 3, 5] == pytest.approx(want, rel=1e-6)


def test_read_only_buffers_and_wrong_inputs():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame.flags.writeable = False                    # e.g. a decoded ROS message buffer
    assert normalize_images(frame).shape == (3, 4, 4)
    for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 3), np.uint8)):
        with pytest.raises(ValueError, match='uint8 RGB'):
            normalize_images(bad)
