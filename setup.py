"""The one thing pyproject.toml cannot say: which packages go into the wheel.

Everything else (metadata, dependencies, entry point, package data) is declared in pyproject.toml.

The shipped models live in the repository's top-level ``weights/`` folder, where ``mtl_core.control.store``
finds them beside the package (a checkout, an editable install). A wheel has nothing beside the
package, so that folder is installed as the resource package ``mtl_studio_weights``
(``importlib.resources.files("mtl_studio_weights")``). A ``[tool.setuptools.packages.find]`` table
cannot include it: find names a package after its folder, and a ``package-dir`` entry does not bring
in a package that find did not discover (it is silently left out of the wheel).
"""

from setuptools import find_packages, setup

setup(
    # mtl_core and every subpackage it has (a pattern, so new or moved subpackages need no edit here),
    # plus weights/ under the name mtl_studio_weights.
    packages=[*find_packages(include=["mtl_core*"]), "mtl_studio_weights"],
    package_dir={"mtl_studio_weights": "weights"},
)
