"""Build the images live-tests runs, all one way (see build.py): a recipe hash labels each image,
and an image with the same recipe is reused instead of rebuilt.

- base: the image everything is built FROM (LIVE_TESTS_BASE_IMAGE, else a local Debian base).
- build: recipes, their hash, build-or-reuse, ImageBuildError.
- wheels: the one wheel cache (pip on the host; builds reach no registry).
- demo: the demo connector and fake shop API; pypi: connectors from PyPI; proxy: the mitmproxy image.
"""

from live_tests.images.base import (
    BASE_IMAGE_ENV,
    DEFAULT_BASE_IMAGE,
    LOCAL_BASE_IMAGE,
    base_image_setting,
    build_local_base_image,
    ensure_base_image,
)
from live_tests.images.build import RECIPE_LABEL, ImageBuildError, Recipe, ensure_built, split_reference
from live_tests.images.demo import (
    DEMO_CONNECTOR_REPOSITORY,
    DEMO_VERSIONS,
    FAKE_API_IMAGE,
    FAKE_API_PORT,
    build_demo_images,
    demo_connector_image,
)
from live_tests.images.proxy import ensure_proxy_image, proxy_wheels
from live_tests.images.pypi import build_pypi_connector_image, connector_name_for_package
from live_tests.images.wheels import WheelSet, download_wheels, wheel_cache_dir

__all__ = [
    "BASE_IMAGE_ENV",
    "DEFAULT_BASE_IMAGE",
    "DEMO_CONNECTOR_REPOSITORY",
    "DEMO_VERSIONS",
    "FAKE_API_IMAGE",
    "FAKE_API_PORT",
    "LOCAL_BASE_IMAGE",
    "RECIPE_LABEL",
    "ImageBuildError",
    "Recipe",
    "WheelSet",
    "base_image_setting",
    "build_demo_images",
    "build_local_base_image",
    "build_pypi_connector_image",
    "connector_name_for_package",
    "demo_connector_image",
    "download_wheels",
    "ensure_base_image",
    "ensure_built",
    "ensure_proxy_image",
    "proxy_wheels",
    "split_reference",
    "wheel_cache_dir",
]
