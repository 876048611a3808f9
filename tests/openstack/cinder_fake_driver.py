"""Cinder's fake volume driver plus the two operations it lacks (loaded by the harness's
cinder-volume).

Why: ``cinder.tests.fake_driver.FakeLoggingVolumeDriver`` (python3-cinder) makes volumes
``available`` and attachable without storage, but it inherits from the LVM driver two
operations that need a real volume group: extending (``FakeBrickLVM.extend_volume`` does not
exist: ``error_extending``) and creating a volume from an image (writes to ``/dev/mapper``:
``error``). Both are part of the Volume kind, so the harness records the extension and
downloads the image from Glance for real into a file standing for the volume.

Runs inside Debian's Cinder (system Python), copied into a directory on cinder-volume's
PYTHONPATH; it imports nothing from this repository.
"""

import os

from cinder.tests.fake_driver import FakeLoggingVolumeDriver
from oslo_config import cfg


class ExtendableFakeDriver(FakeLoggingVolumeDriver):
    """The fake driver, with extend recorded and images really downloaded."""

    def extend_volume(self, volume, new_size):
        pass

    def copy_image_to_volume(self, context, volume, image_service, image_id):
        directory = os.path.join(cfg.CONF.state_path, "volumes")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, volume.id), "wb") as data:
            image_service.download(context, image_id, data=data)
