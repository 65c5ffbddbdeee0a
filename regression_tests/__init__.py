"""The regression suite (pytest): control vs target versions of a connector image, and the target alone.

Run it with `pytest regression_tests --connector-image=… --control-version=… --target-version=…`
or `live-tests regression …`; the options are declared in `conftest.py`.
"""
