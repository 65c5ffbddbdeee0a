"""The proxy stage: the executions of a run talk to the world through one mitmproxy container.

- settings: how executions are proxied (mode, image, the user's mitmproxy options), checked.
- trust: the run's CA and how a connector image is made to trust it.
- container: the run's proxy container and its networks, a lane per execution, and its dumps.
- addon (+ addon_lanes, addon_recording, addon_har, addon_faults, addon_matching): the mitmdump addon
  that runs inside the proxy container (imports mitmproxy: not re-exported).
- Dockerfile: the default proxy image (built by live_tests.images.proxy).
"""

from live_tests.proxy.container import (
    CAPTURE_FILE,
    FLOWS_FILE,
    HAR_FILE,
    MITM_FILE,
    PROXY_LOG_FILE,
    ProxiedExecution,
    ProxyError,
    RunProxy,
    attach_to_proxy,
    proxy_for_execution,
)
from live_tests.proxy.settings import (
    DEFAULT_OPTIONS,
    DEFAULT_PROXY_IMAGE,
    MITMPROXY_VERSION,
    ProxyMode,
    ProxySettings,
    check_recording,
    parse_proxy_options,
    validate_mitmproxy_options,
)
from live_tests.proxy.trust import PROXY_ALIAS, PROXY_PORT, ImageTrust, ProxySessionCA

__all__ = [
    "CAPTURE_FILE",
    "DEFAULT_OPTIONS",
    "DEFAULT_PROXY_IMAGE",
    "FLOWS_FILE",
    "HAR_FILE",
    "MITMPROXY_VERSION",
    "MITM_FILE",
    "PROXY_ALIAS",
    "PROXY_LOG_FILE",
    "PROXY_PORT",
    "ImageTrust",
    "ProxiedExecution",
    "ProxyError",
    "ProxyMode",
    "ProxySessionCA",
    "ProxySettings",
    "RunProxy",
    "attach_to_proxy",
    "check_recording",
    "parse_proxy_options",
    "proxy_for_execution",
    "validate_mitmproxy_options",
]
